import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { PrismaPg } from '@prisma/adapter-pg';
import { Pool, QueryConfig } from 'pg';
import { PrismaClient } from '../../generated/prisma/client';
import { requestContext } from '../../common/context/request-context';
import { APP_CONFIG, AppConfig } from '../config/config';
import { REDIS, RedisClient } from '../redis/redis.module';
import { isDependencyUnavailable } from '../../common/errors/dependency-errors';
import { runThrough } from '../resilience/breaker';
import { RedisBreaker } from '../redis/redis-breaker';
import { PinStore, ReadRouter } from './read-routing';
import { ReplicaReads, withPrimaryFallback } from './replica-reads';

export type DbClient = PrismaClient;
/** The client handed to the callback of an interactive transaction. */
export type DbTx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];

/** Runs statements inside one transaction of `Db.sqlTransaction`: rows as pg returns them. */
export interface SqlTx {
  /** `name` makes it a prepared statement (parsed and planned once per connection): for statements run many times a second. */
  query<R extends object>(text: string, params?: readonly unknown[], name?: string): Promise<R[]>;
  /**
   * Runs `fn` once the transaction has committed (never if it rolls back),
   * before `sqlTransaction` returns: announcements of what it wrote.
   */
  afterCommit(fn: () => void): void;
}

/** Connections of one pg pool right now. */
export interface DbPoolUse {
  db: 'primary' | 'replica' | 'export';
  total: number;
  idle: number;
  waiting: number;
}

/** Timeouts and the name every connection of a pool gets. */
export interface PoolLimits {
  /** How long a checkout waits for a connection (a new one included) before failing; 0: forever. */
  connectTimeoutMs: number;
  /** PostgreSQL `statement_timeout` of each connection (a startup parameter); 0: the server's default. */
  statementTimeoutMs: number;
  /** `application_name`, so a pool's connections can be told apart in pg_stat_activity. */
  applicationName: string;
  /** PostgreSQL `idle_in_transaction_session_timeout`; 0 or unset: the server's default. */
  idleInTransactionTimeoutMs?: number;
  /**
   * The URL leads to a transaction-mode pooler (PgBouncer): the timeouts are not sent as startup
   * parameters (PgBouncer refuses unknown ones, and a session setting would leak between clients);
   * the server gives them instead (`ALTER ROLE ... SET statement_timeout`, docs/deployment.md).
   */
  transactionPooler?: boolean;
}

/** The limits of the primary and replica pools, from the configuration. */
export function poolLimits(config: AppConfig): PoolLimits {
  return {
    connectTimeoutMs: config.databaseConnectTimeoutMs,
    statementTimeoutMs: config.databaseStatementTimeoutMs,
    applicationName: 'waybill',
  };
}

/**
 * A Prisma client on a pg pool of our own (rather than one the adapter
 * creates out of sight), so that the pool's use can be reported.
 */
function makeClient(
  url: string,
  max: number,
  logger: Logger,
  limits: PoolLimits,
): { client: PrismaClient; pool: Pool } {
  const pool = new Pool({
    connectionString: url,
    max,
    // A full pool (or an unreachable server) fails a request after this long instead of queueing it without end.
    connectionTimeoutMillis: limits.connectTimeoutMs,
    // pg sends these as startup parameters: no extra round trip per connection.
    statement_timeout: (!limits.transactionPooler && limits.statementTimeoutMs) || undefined,
    idle_in_transaction_session_timeout:
      (!limits.transactionPooler && limits.idleInTransactionTimeoutMs) || undefined,
    application_name: limits.applicationName,
  });
  // An idle connection that the server ends (restart, failover, DROP DATABASE) is an 'error' on the pool;
  // without a listener it would end the process. The pool replaces it at the next checkout.
  pool.on('error', (err) => logger.warn(`idle database connection lost: ${err.message}`));
  // The pool is ended in onApplicationShutdown (the adapter would only end it if Prisma had connected).
  const client = new PrismaClient({ adapter: new PrismaPg(pool) });
  return { client, pool };
}

/**
 * The export pool's limits. Its `statement_timeout` is the same as the other
 * pools': a CSV statement is many short statements (`DECLARE`, then one
 * `FETCH 2000` after another), each timed alone, so a long stream needs no
 * longer one. What bounds a stalled stream is the idle-write timeout of the
 * export (LedgerService), with PostgreSQL's
 * `idle_in_transaction_session_timeout` behind it in case the node itself
 * stalls: twice that timeout, and never below the statement timeout.
 */
function exportPoolLimits(config: AppConfig): PoolLimits {
  return {
    ...poolLimits(config),
    applicationName: 'waybill-export',
    idleInTransactionTimeoutMs: Math.max(config.exportIdleTimeoutMs * 2, config.databaseStatementTimeoutMs),
  };
}

/** Pins in Redis, behind the Redis breaker: with Redis down the router's fallback (the primary) comes at once. */
class RedisPinStore implements PinStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly breaker: RedisBreaker,
  ) {}
  async isPinned(userId: string): Promise<boolean> {
    return (await this.breaker.run(() => this.redis.exists(`ryw:${userId}`))) === 1;
  }
  async pin(userId: string, ms: number): Promise<void> {
    await this.breaker.run(() => this.redis.set(`ryw:${userId}`, '1', 'PX', ms));
  }
}

/** Options of an interactive transaction (as `$transaction` takes them). */
type TxOptions = Parameters<PrismaClient['$transaction']>[1];

/**
 * The two database clients. Repositories write through `write` (the primary)
 * and read through `read`, which is the replica unless this request's user
 * wrote in the last few seconds (see ReadRouter), the replica is unreachable
 * or lags too far behind (see ReplicaReads).
 */
@Injectable()
export class Db implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(Db.name);
  readonly primary: PrismaClient;
  /** The replica, each query falling back to the primary when the replica cannot answer. */
  readonly replica: PrismaClient | undefined;
  /** The replica's own client, for transactions (which cannot move between servers halfway). */
  private readonly replicaBase: PrismaClient | undefined;
  readonly replicaReads: ReplicaReads | undefined;
  readonly router: ReadRouter;
  private readonly pools: { db: DbPoolUse['db']; pool: Pool }[] = [];
  private readonly primaryPool: Pool;
  private readonly preparedStatements: boolean;

  constructor(@Inject(APP_CONFIG) config: AppConfig, @Inject(REDIS) redis: RedisClient, redisBreaker: RedisBreaker) {
    const pooled = config.databaseTransactionPooler;
    const primary = makeClient(config.databaseUrl, config.databasePoolMax, this.logger, {
      ...poolLimits(config),
      transactionPooler: pooled,
    });
    this.primary = primary.client;
    this.pools.push({ db: 'primary', pool: primary.pool });
    this.primaryPool = primary.pool;
    // A transaction-mode pooler hands each transaction to any server connection: a statement prepared on one is unknown on the next.
    this.preparedStatements = config.databasePreparedStatements && !pooled;
    if (config.databaseReplicaUrl) {
      const replica = makeClient(config.databaseReplicaUrl, config.databasePoolMax, this.logger, poolLimits(config));
      this.replicaBase = replica.client;
      this.replicaReads = new ReplicaReads(replica.pool, {
        maxLagMs: config.replicaMaxLagMs,
        lagPollMs: config.replicaLagPollMs,
        breakerTimeoutMs: config.replicaBreakerTimeoutMs,
        breakerResetMs: config.replicaBreakerResetMs,
      });
      this.replica = withPrimaryFallback(replica.client, this.primary, this.replicaReads);
      this.pools.push({ db: 'replica', pool: replica.pool });
    }
    this.router = new ReadRouter(new RedisPinStore(redis, redisBreaker), config.readYourWritesMs, !!this.replica);
    const exports = makeClient(config.databaseReplicaUrl ?? config.databaseUrl, config.exportPoolMax, this.logger, {
      ...exportPoolLimits(config),
      transactionPooler: !config.databaseReplicaUrl && pooled,
    });
    this.exportClient = exports.client;
    this.exportPool = exports.pool;
  }

  onModuleInit(): void {
    this.replicaReads?.start();
  }

  // ------------------------------------------------------------ export pool

  /**
   * The client of the export pool: CSV statements stream through it, so a
   * client that reads slowly (or not at all) holds one of its
   * `EXPORT_POOL_MAX` connections, never one the API needs.
   */
  readonly exportClient: PrismaClient;
  private readonly exportPool: Pool;

  /** A transaction on the export pool (a CSV statement's snapshot). */
  exportTransaction<T>(fn: (tx: DbTx) => Promise<T>, options?: TxOptions): Promise<T> {
    return this.exportClient.$transaction(fn, options);
  }

  /** The export pool's connections right now. */
  exportPoolUse(): DbPoolUse {
    const p = this.exportPool;
    return { db: 'export', total: p.totalCount, idle: p.idleCount, waiting: p.waitingCount };
  }

  // ----------------------------------------------------------------------

  get write(): PrismaClient {
    this.markWrite();
    return this.primary;
  }

  /** Records that the current request writes to the primary (its later reads stay there: read-your-writes). */
  markWrite(): void {
    const ctx = requestContext.current();
    if (ctx) ctx.wrote = true;
  }

  get read(): PrismaClient {
    if (!this.replica || !this.replicaReads!.usable || this.router.readsFromPrimary(requestContext.current()))
      return this.primary;
    return this.replica;
  }

  /**
   * An interactive transaction for reads (one consistent snapshot) where
   * `read` would go. When the replica cannot even start it, it runs on the
   * primary instead; a replica lost once `fn` has begun fails it.
   */
  async readTransaction<T>(fn: (tx: DbTx) => Promise<T>, options?: TxOptions): Promise<T> {
    const client = this.read === this.replica ? this.replicaBase! : this.primary;
    if (client === this.primary) return this.primary.$transaction(fn, options);
    let began = false;
    try {
      return await this.replicaBase!.$transaction((tx) => {
        began = true;
        return fn(tx);
      }, options);
    } catch (err) {
      if (began || !isDependencyUnavailable(err)) throw err;
      // Counted against the replica like any failed read (the breaker has no other way to hear of it).
      await runThrough(this.replicaReads!.breaker, () => Promise.reject(err)).catch(() => undefined);
      return this.primary.$transaction(fn, options);
    }
  }

  /**
   * A transaction on the primary through pg itself (raw SQL, same pool), for
   * background work that runs many times a second: Prisma's interactive
   * transaction costs about 1 ms of CPU each, this about 0.25 ms
   * (docs/performance-tracking.md). Rolled back if `fn` throws.
   */
  async sqlTransaction<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T> {
    const client = await this.primaryPool.connect();
    let broken: Error | undefined;
    const committed: (() => void)[] = [];
    let result: T;
    try {
      await client.query('BEGIN');
      result = await fn({
        query: async <R extends object>(text: string, params?: readonly unknown[], name?: string) =>
          (await client.query<R>(this.statement(text, params, name))).rows,
        afterCommit: (after) => void committed.push(after),
      });
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => (broken = e));
      throw err;
    } finally {
      // A connection that could not even roll back is closed rather than reused.
      client.release(broken);
    }
    for (const after of committed) after();
    return result;
  }

  /**
   * One statement on the primary through pg itself (same pool), for the ping
   * writer's flush: Prisma's raw query converts every element of the array
   * parameters on the way (docs/performance-tracking.md, "CPU per point").
   */
  async sql<R extends object>(text: string, params?: readonly unknown[], name?: string): Promise<R[]> {
    return (await this.primaryPool.query<R>(this.statement(text, params, name))).rows;
  }

  /**
   * A named statement is prepared: parsed and planned once per connection, not
   * at every call. Names are passed on only where prepared statements are on
   * (DATABASE_PREPARED_STATEMENTS).
   */
  private statement(text: string, params: readonly unknown[] | undefined, name: string | undefined): QueryConfig {
    return { text, values: params as unknown[] | undefined, name: this.preparedStatements ? name : undefined };
  }

  /** One `SELECT 1` on the pool itself (a health check needs no ORM in its way). */
  async ping(which: 'primary' | 'replica'): Promise<void> {
    const pool = this.pools.find((p) => p.db === which)?.pool ?? this.primaryPool;
    await pool.query('SELECT 1');
  }

  /** Open, idle and waiting connections of each pool (no replica pool when reads go to the primary). */
  poolUse(): DbPoolUse[] {
    const use: DbPoolUse[] = this.pools.map(({ db, pool }) => ({
      db,
      total: pool.totalCount,
      idle: pool.idleCount,
      waiting: pool.waitingCount,
    }));
    return [...use, this.exportPoolUse()];
  }

  async onApplicationShutdown(): Promise<void> {
    this.replicaReads?.stop();
    await Promise.all([this.primary.$disconnect(), this.replicaBase?.$disconnect(), this.exportClient.$disconnect()]);
    await Promise.all(this.pools.map(({ pool }) => (pool.ended ? undefined : pool.end())));
    if (!this.exportPool.ended) await this.exportPool.end();
    this.logger.log('database clients closed');
  }
}
