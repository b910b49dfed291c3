import { Logger } from '@nestjs/common';
import type { Pool } from 'pg';
import { isDependencyUnavailable } from '../../common/errors/dependency-errors';
import type { PrismaClient } from '../../generated/prisma/client';
import { CallBreaker, createCallBreaker, runThrough } from '../resilience/breaker';

export interface ReplicaReadsOptions {
  /** Reads go to the primary while the replica is further behind than this. */
  maxLagMs: number;
  lagPollMs: number;
  breakerTimeoutMs: number;
  breakerResetMs: number;
}

/**
 * How far behind the primary the replica is, in ms. A replica that has
 * replayed all it received is not behind, however old its last replayed
 * commit (an idle primary writes nothing); a server that is not a standby
 * (a replica URL naming the primary) is never behind.
 */
const LAG_SQL = `
  SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
    ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) * 1000, 0)
  END::float8 AS lag_ms`;

/**
 * Whether reads may go to the replica: not while its breaker is open (replica
 * reads failing or timing out: they are served by the primary meanwhile, and
 * after `breakerResetMs` one read or lag poll tries the replica again) nor
 * while it lags more than `maxLagMs` (polled every `lagPollMs` through the
 * same breaker: a poll that cannot reach the replica opens it at once, even
 * without traffic, and a poll is the trial that closes it again).
 */
export class ReplicaReads {
  private readonly logger = new Logger('ReplicaReads');
  readonly breaker: CallBreaker;
  private lagMs = 0;
  private lagging = false;
  private polling = false;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly pool: Pool,
    private readonly options: ReplicaReadsOptions,
  ) {
    this.breaker = createCallBreaker(
      {
        name: 'replica',
        timeoutMs: options.breakerTimeoutMs,
        resetMs: options.breakerResetMs,
        // A query the replica answered with an error (a constraint, a bad cast) says nothing about its health.
        isAnswer: (err) => !isDependencyUnavailable(err),
        openMessage: 'replica unavailable: reads go to the primary until it answers again',
        closeMessage: 'replica is back: reads go to it again',
      },
      this.logger,
    );
  }

  /** Starts the lag poller (unref'd: it never holds the process open). */
  start(): void {
    this.timer = setInterval(() => void this.poll(), this.options.lagPollMs);
    this.timer.unref();
    void this.poll();
  }

  stop(): void {
    clearInterval(this.timer);
    this.breaker.shutdown();
  }

  /** True when reads may go to the replica now (a half-open breaker lets them try). */
  get usable(): boolean {
    return !this.breaker.opened && !this.lagging;
  }

  /** The last lag measured (ms). */
  get lastLagMs(): number {
    return this.lagMs;
  }

  /** Runs a replica query through the breaker. */
  run<T>(query: () => Promise<T>): Promise<T> {
    return runThrough(this.breaker, query);
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const { rows } = await this.run(() => this.pool.query<{ lag_ms: number }>(LAG_SQL));
      this.lagMs = Number(rows[0]?.lag_ms ?? 0);
      const lagging = this.lagMs > this.options.maxLagMs;
      if (lagging !== this.lagging) {
        this.lagging = lagging;
        if (lagging) this.logger.warn(`replica ${Math.round(this.lagMs)} ms behind: reads go to the primary`);
        else this.logger.log('replica caught up: reads go to it again');
      }
    } catch (err) {
      // The poll is a health probe: a replica it cannot reach is down, without waiting for failed reads to add up
      // in the breaker's window. Its state, not the lag, then keeps reads off the replica.
      if (isDependencyUnavailable(err) && (err as { code?: string }).code !== 'EOPENBREAKER') this.breaker.open();
    } finally {
      this.polling = false;
    }
  }
}

type AnyFn = (...args: unknown[]) => Promise<unknown>;

/** The same operation on another client: `Org`/`findMany` on `client.org.findMany`, `$queryRaw` on `client.$queryRaw`. */
function sameOperationOn(client: PrismaClient, model: string | undefined, operation: string, args: unknown) {
  const target = (
    model ? (client as unknown as Record<string, unknown>)[model[0].toLowerCase() + model.slice(1)] : client
  ) as Record<string, AnyFn>;
  return Array.isArray(args) ? target[operation](...(args as unknown[])) : target[operation](args);
}

/**
 * The replica's client as repositories see it: each query runs through the
 * replica breaker, and one that cannot reach the replica (or times out) is
 * run again on the primary, so a replica outage never fails a read. Queries
 * inside a transaction are left alone: they cannot move to another server
 * halfway (see `Db.readTransaction`).
 */
export function withPrimaryFallback(replica: PrismaClient, primary: PrismaClient, reads: ReplicaReads): PrismaClient {
  return replica.$extends({
    query: {
      async $allOperations(params) {
        const { model, operation, args, query } = params;
        // Prisma's own marker of a query inside an interactive or batch transaction.
        const internal = (params as { __internalParams?: { transaction?: unknown } }).__internalParams;
        if (internal?.transaction) return query(args);
        try {
          return await reads.run(() => query(args));
        } catch (err) {
          if (!isDependencyUnavailable(err)) throw err;
          return sameOperationOn(primary, model, operation, args);
        }
      },
    },
  }) as unknown as PrismaClient;
}
