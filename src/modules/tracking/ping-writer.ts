import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { DomainError } from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { PingRow } from './ping-filters';
import { PingKey, TrackingRepository } from './tracking.repository';

export interface WriteResult {
  /** Rows of this write that the flush inserted. */
  accepted: number;
  /** Rows of this write already stored, or repeated within the write or by an earlier write of the same flush. */
  duplicates: number;
}

/** What to do with the rows a flush committed, grouped by trip, before the writers are answered. */
export type FlushListener = (insertedByTrip: Map<string, PingRow[]>) => Promise<void>;

interface PendingWrite {
  rows: readonly PingRow[];
  result: WriteResult;
  resolve: (r: WriteResult) => void;
  reject: (e: unknown) => void;
}

const keyOf = (tripId: string, ms: number) => `${tripId}|${ms}`;

/**
 * Group commit of pings, one per process. Rows of all requests arriving
 * within a short window (or until a row limit) go to PostgreSQL in one
 * INSERT ... ON CONFLICT DO NOTHING; each request's promise resolves only
 * after its own rows are committed, with its own exact counts. A failed flush
 * fails only its own requests (503), and since it is one statement nothing of
 * it is stored. Flushes run one after another, so the per-trip work after a
 * flush (latest location, distance, events) sees every earlier flush applied.
 */
@Injectable()
export class PingWriter implements OnApplicationShutdown {
  private readonly logger = new Logger(PingWriter.name);
  private queue: PendingWrite[] = [];
  private queuedRows = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private listener: FlushListener | undefined;
  private readonly windowMs: number;
  private readonly maxRows: number;
  /** Test and benchmark hook: replaces the INSERT. */
  insert: (rows: readonly PingRow[]) => Promise<PingKey[]>;

  /** Figures since start, for metrics and benchmarks. */
  readonly stats = { flushes: 0, rows: 0, inserted: 0, failedFlushes: 0 };

  constructor(
    private readonly repo: TrackingRepository,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.windowMs = config.pingWriterWindowMs;
    this.maxRows = config.pingWriterMaxRows;
    this.insert = (rows) => this.repo.insertPings(rows);
  }

  onFlush(listener: FlushListener): void {
    this.listener = listener;
  }

  /** Queues the rows; resolves once they are committed (and the trips updated). */
  write(rows: readonly PingRow[]): Promise<WriteResult> {
    if (rows.length === 0) return Promise.resolve({ accepted: 0, duplicates: 0 });
    return new Promise<WriteResult>((resolve, reject) => {
      this.queue.push({ rows, result: { accepted: 0, duplicates: 0 }, resolve, reject });
      this.queuedRows += rows.length;
      this.schedule();
    });
  }

  /** Writes everything queued now and waits for it (and any flush under way). */
  async drain(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.running || this.queue.length) {
      if (!this.running) this.start();
      await this.running;
    }
  }

  /**
   * HTTP is closed by now (Nest closes the server before this hook), so every
   * request that queued rows has been answered; anything left is written.
   */
  async onApplicationShutdown(): Promise<void> {
    await this.drain();
  }

  private schedule(): void {
    if (this.running) return; // the running loop takes the queue when it is done
    if (this.queuedRows >= this.maxRows || this.windowMs === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.start();
      return;
    }
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        if (!this.running) this.start();
      }, this.windowMs);
    }
  }

  private start(): void {
    this.running = this.loop();
  }

  private async loop(): Promise<void> {
    try {
      while (this.queue.length) await this.flush(this.take());
    } finally {
      // Runs in the same tick as the last emptiness check: no write can slip in between.
      this.running = null;
      if (this.queue.length) this.schedule();
    }
  }

  /** Whole requests, up to the row limit (at least one). */
  private take(): PendingWrite[] {
    let n = 0;
    let i = 0;
    while (i < this.queue.length && (i === 0 || n + this.queue[i].rows.length <= this.maxRows)) {
      n += this.queue[i].rows.length;
      i++;
    }
    const batch = this.queue.slice(0, i);
    this.queue = this.queue.slice(i);
    this.queuedRows -= n;
    return batch;
  }

  private async flush(batch: PendingWrite[]): Promise<void> {
    // The first occurrence of a (trip, time) in the flush owns it; later ones are its writers' duplicates.
    const owners = new Map<string, PendingWrite>();
    const unique: PingRow[] = [];
    for (const w of batch) {
      for (const row of w.rows) {
        const key = keyOf(row.tripId, row.recordedAt.getTime());
        if (owners.has(key)) {
          w.result.duplicates++;
          continue;
        }
        owners.set(key, w);
        unique.push(row);
      }
    }
    let inserted: PingKey[];
    try {
      inserted = await this.insert(unique);
    } catch (err) {
      this.stats.failedFlushes++;
      this.logger.error(`ping flush of ${unique.length} rows failed: ${(err as Error).message}`);
      const failure = new DomainError(ErrorCode.SERVICE_UNAVAILABLE, 'Storing the locations failed; nothing was stored, retry');
      for (const w of batch) w.reject(failure);
      return;
    }
    this.stats.flushes++;
    this.stats.rows += unique.length;
    this.stats.inserted += inserted.length;

    const insertedKeys = new Set(inserted.map((k) => keyOf(k.tripId, k.ms)));
    const byTrip = new Map<string, PingRow[]>();
    for (const row of unique) {
      const key = keyOf(row.tripId, row.recordedAt.getTime());
      const owner = owners.get(key)!;
      if (insertedKeys.has(key)) {
        owner.result.accepted++;
        const list = byTrip.get(row.tripId);
        if (list) list.push(row);
        else byTrip.set(row.tripId, [row]);
      } else {
        owner.result.duplicates++;
      }
    }
    if (this.listener && byTrip.size > 0) {
      // The rows are committed whatever happens here: a failure is logged, not returned to the writers.
      await this.listener(byTrip).catch((err: Error) => this.logger.error(`after-flush work failed: ${err.stack ?? err.message}`));
    }
    for (const w of batch) w.resolve(w.result);
  }
}
