import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { settleApart, Settled } from '../../common/batching/group-runner';
import { requestContext } from '../../common/context/request-context';
import { clientDatabaseError, statementRefused } from '../../common/errors/database-errors';
import { DomainError } from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import {
  pingCommitWait,
  pingFlushDuration,
  pingFlushFailures,
  pingFlushRequests,
  pingFlushRows,
  pingsAccepted,
  pingsDuplicate,
} from '../../infra/observability/metrics';
import { PingRow } from './ping-filters';
import { PingKey, TrackingRepository } from './tracking.repository';

export interface WriteResult {
  /** Rows of this write that the flush inserted. */
  accepted: number;
  /** Rows of this write already stored, or repeated within the write or by an earlier write of the same flush. */
  duplicates: number;
}

/**
 * What to do with committed rows, grouped by trip (latest location, distance,
 * detectors, events). Runs behind the answers, one call at a time, in commit
 * order; rows of flushes that committed while a call ran are merged into the next call.
 */
export type FlushListener = (insertedByTrip: Map<string, PingRow[]>) => Promise<void>;

/** Told synchronously of each flush's inserted rows, after the commit and before any writer is answered. */
export type CommitListener = (insertedByTrip: Map<string, PingRow[]>) => void;

interface PendingWrite {
  rows: readonly PingRow[];
  /** Its counts in the statement that stored its rows. */
  result: WriteResult;
  /** performance.now() when the rows were handed over. */
  queuedAt: number;
  resolve: (r: WriteResult) => void;
  reject: (e: unknown) => void;
}

const keyOf = (tripId: string, ms: number) => `${tripId}|${ms}`;

/** Key order of the INSERT: concurrent flushes touching the same keys take their locks in one order (no deadlock). */
const byKey = (a: PingRow, b: PingRow) =>
  a.tripId < b.tripId ? -1 : a.tripId > b.tripId ? 1 : a.recordedAt.getTime() - b.recordedAt.getTime();

/**
 * Group commit of pings, one per process. Rows of all requests arriving
 * within a short window (or until a row limit) go to PostgreSQL in one
 * INSERT ... ON CONFLICT DO NOTHING; each request's promise resolves as soon
 * as its own rows are committed, with its own exact counts. A flush is one
 * statement, so a failed one stores nothing: one that PostgreSQL refused is
 * written again in halves until only the request that caused it fails; one
 * whose connection failed fails its own requests (503), and only those. Up to `pingWriterMaxInFlight` flushes run at once (the next
 * batch collects while the previous one commits).
 *
 * The per-trip work after a commit (latest location, distance, detectors,
 * events) runs behind the answers through the flush listener, strictly one
 * call at a time in commit order, so it always sees the previous call applied.
 * `drain()` (and shutdown) waits for it too, so a deploy loses none of it.
 */
@Injectable()
export class PingWriter implements OnApplicationShutdown {
  private readonly logger = new Logger(PingWriter.name);
  private queue: PendingWrite[] = [];
  private queuedRows = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly flushing = new Set<Promise<void>>();
  private listener: FlushListener | undefined;
  private commitListener: CommitListener | undefined;
  private afterQueue: Map<string, PingRow[]>[] = [];
  private afterRunning: Promise<void> | null = null;
  private lastRoundAt = 0;
  private readonly afterFlushSpacingMs: number;
  private readonly windowMs: number;
  private readonly maxRows: number;
  private readonly maxInFlight: number;
  /** Test and benchmark hook: replaces the INSERT. */
  insert: (rows: readonly PingRow[]) => Promise<PingKey[]>;

  /** Figures since start, for metrics and benchmarks. */
  readonly stats = { flushes: 0, rows: 0, inserted: 0, failedFlushes: 0, afterFlushCalls: 0, retriedApart: 0 };

  constructor(
    private readonly repo: TrackingRepository,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.windowMs = config.pingWriterWindowMs;
    this.afterFlushSpacingMs = config.pingAfterFlushSpacingMs;
    this.maxRows = config.pingWriterMaxRows;
    this.maxInFlight = Math.max(1, config.pingWriterMaxInFlight ?? 1);
    this.insert = (rows) => this.repo.insertPings(rows);
  }

  onFlush(listener: FlushListener): void {
    this.listener = listener;
  }

  onCommit(listener: CommitListener): void {
    this.commitListener = listener;
  }

  /** Queues the rows; resolves once they are committed. */
  write(rows: readonly PingRow[]): Promise<WriteResult> {
    if (rows.length === 0) return Promise.resolve({ accepted: 0, duplicates: 0 });
    return new Promise<WriteResult>((resolve, reject) => {
      this.queue.push({ rows, result: { accepted: 0, duplicates: 0 }, queuedAt: performance.now(), resolve, reject });
      this.queuedRows += rows.length;
      this.schedule();
    });
  }

  /** Writes everything queued now and waits for it, for any flush under way and for all after-flush work. */
  async drain(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.queue.length || this.flushing.size || this.afterRunning) {
      while (this.queue.length && this.flushing.size < this.maxInFlight) this.startFlush();
      await Promise.all([...this.flushing, this.afterRunning]);
    }
  }

  /**
   * HTTP is closed by now (Nest closes the server before this hook), so every
   * request that queued rows has been answered; anything left is written, and
   * the after-flush work of every commit is done.
   */
  async onApplicationShutdown(): Promise<void> {
    await this.drain();
  }

  private schedule(): void {
    if (this.flushing.size >= this.maxInFlight) return; // a finishing flush takes the queue
    if (this.queuedRows >= this.maxRows || this.windowMs === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.startFlush();
      return;
    }
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        if (this.queue.length && this.flushing.size < this.maxInFlight) this.startFlush();
      }, this.windowMs);
    }
  }

  private startFlush(): void {
    // A flush serves many requests: its logs and database use belong to none of them.
    requestContext.outside(() => this.startFlushDetached());
  }

  private startFlushDetached(): void {
    const batch = this.take();
    const running: Promise<void> = this.flush(batch)
      .catch((err: Error) => {
        // Not a database error (flush answers those itself): never leave a writer waiting.
        this.logger.error(`ping flush failed unexpectedly: ${err.stack ?? err.message}`);
        const failure = new DomainError(ErrorCode.SERVICE_UNAVAILABLE, 'Storing the locations failed; retry');
        for (const w of batch) w.reject(failure);
      })
      .finally(() => {
        // Same tick as the removal: no write can slip in between and wait for a window nobody runs.
        this.flushing.delete(running);
        if (this.queue.length) {
          // These rows already waited for a whole flush: no further window.
          clearTimeout(this.timer);
          this.timer = undefined;
          this.startFlush();
        }
      });
    this.flushing.add(running);
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

  /**
   * One INSERT for the whole batch. If PostgreSQL refuses it (a value it cannot
   * take), nothing of it is stored and its requests are written again in
   * halves (`settleApart`), so only the request that caused it fails: with a
   * 4xx when its own input was at fault, else 503. A connection failure (the
   * outcome unknown) fails every request of the batch with a 503; their
   * clients retry, and a repeat is a duplicate, never stored twice.
   */
  private async flush(batch: PendingWrite[]): Promise<void> {
    const outcomes = await settleApart(
      batch,
      (part) => this.insertPart(part, this.maxInFlight > 1 || part.length < batch.length),
      statementRefused,
      (n, err) => {
        this.stats.retriedApart += n;
        this.logger.warn(
          `a ping flush of ${n} requests was refused, writing its halves apart: ${(err as Error).message}`,
        );
      },
    );
    outcomes.forEach((o, i) => {
      if (!o.ok) batch[i].reject(clientDatabaseError(o.error) ? o.error : this.unavailable());
    });
  }

  private unavailable(): DomainError {
    return new DomainError(ErrorCode.SERVICE_UNAVAILABLE, 'Storing the locations failed; nothing was stored, retry');
  }

  /**
   * Inserts the rows of these requests in one statement and answers each of
   * them once it is committed, with its own counts. `sort` puts the rows in key
   * order, for when other statements may run at the same time.
   */
  private async insertPart(part: PendingWrite[], sort: boolean): Promise<Settled<WriteResult>[]> {
    // The first occurrence of a (trip, time) in the statement owns it; later ones are its writers' duplicates.
    const owners = new Map<string, PendingWrite>();
    const unique: PingRow[] = [];
    for (const w of part) {
      w.result = { accepted: 0, duplicates: 0 }; // counted afresh if a refused batch is written again apart
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
    if (sort) unique.sort(byKey);
    let inserted: PingKey[];
    const started = performance.now();
    try {
      inserted = await this.insert(unique);
    } catch (err) {
      this.stats.failedFlushes++;
      pingFlushFailures.inc();
      this.logger.error(`ping flush of ${unique.length} rows failed: ${(err as Error).message}`);
      throw err;
    }
    const committed = performance.now();
    this.stats.flushes++;
    this.stats.rows += unique.length;
    this.stats.inserted += inserted.length;
    pingFlushDuration.observe((committed - started) / 1000);
    pingFlushRows.observe(unique.length);
    pingFlushRequests.observe(part.length);

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
    if (byTrip.size > 0) {
      try {
        this.commitListener?.(byTrip);
      } catch (err) {
        this.logger.error(`commit listener failed: ${(err as Error).message}`);
      }
      this.enqueueAfterFlush(byTrip);
    }
    // Every row of the part is now either inserted or a duplicate (repeated in the statement or already stored).
    let accepted = 0;
    let duplicates = 0;
    for (const w of part) {
      accepted += w.result.accepted;
      duplicates += w.result.duplicates;
    }
    pingsAccepted.inc(accepted);
    pingsDuplicate.inc(duplicates);
    // The rows are committed: answer now; the after-flush work follows behind.
    for (const w of part) {
      pingCommitWait.observe((committed - w.queuedAt) / 1000);
      w.resolve(w.result);
    }
    return part.map((w): Settled<WriteResult> => ({ ok: true, value: w.result }));
  }

  private enqueueAfterFlush(byTrip: Map<string, PingRow[]>): void {
    if (!this.listener) return;
    this.afterQueue.push(byTrip);
    if (!this.afterRunning) this.afterRunning = this.runAfterFlush();
  }

  private async runAfterFlush(): Promise<void> {
    try {
      while (this.afterQueue.length) {
        // Rounds start at least afterFlushSpacingMs apart: under load, the flushes in between merge into one
        // round (one read, one UPDATE, one Redis pipeline for all their trips) instead of one round each.
        const wait = this.lastRoundAt + this.afterFlushSpacingMs - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        this.lastRoundAt = Date.now();
        const merged = mergeByTrip(this.afterQueue.splice(0));
        this.stats.afterFlushCalls++;
        // The rows are committed whatever happens here: a failure is logged, never returned to anyone.
        await this.listener!(merged).catch((err: Error) =>
          this.logger.error(`after-flush work failed: ${err.stack ?? err.message}`),
        );
      }
    } finally {
      // Same tick as the last emptiness check: a commit after it starts a new run.
      this.afterRunning = null;
    }
  }
}

/** Several flushes' rows as one, per trip in commit order. */
function mergeByTrip(parts: Map<string, PingRow[]>[]): Map<string, PingRow[]> {
  if (parts.length === 1) return parts[0];
  const merged = new Map<string, PingRow[]>();
  for (const part of parts) {
    for (const [tripId, rows] of part) {
      const list = merged.get(tripId);
      if (list) list.push(...rows);
      else merged.set(tripId, [...rows]);
    }
  }
  return merged;
}
