import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { z } from 'zod';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/**
 * Every setting the service reads, with its default. `process.env` is parsed
 * here once at boot; nothing else in the code reads it.
 */
const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: int(0, 65535).default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  /** `?pgbouncer=true` marks a transaction-mode pooler (PgBouncer): no named statements, no session startup parameters. */
  DATABASE_URL: z.url().default('postgresql://postgres@127.0.0.1:5432/waybill'),
  DATABASE_REPLICA_URL: z.url().optional(),
  DATABASE_POOL_MAX: int(1, 1000).default(20),
  /** Named prepared statements for the hottest statements; `false` behind a pooler that cannot track them (PgBouncer < 1.21); off with `?pgbouncer=true`. */
  DATABASE_PREPARED_STATEMENTS: z.enum(['true', 'false']).default('true'),
  REDIS_URL: z.url().default('redis://127.0.0.1:6379'),
  REDIS_KEY_PREFIX: z.string().default('waybill:'),
  PUBLIC_BASE_URL: z.url().default('http://localhost:3000'),
  JWT_SECRET: z.string().min(16).optional(),
  JWT_ACCESS_TTL_SECONDS: int(30, 86_400).default(900),
  REVOCATION_RESYNC_MS: int(100, 3_600_000).default(10_000),
  LEDGER_BATCH_MAX: int(1, 1000).default(64),
  LEDGER_BATCH_IN_FLIGHT: int(1, 16).default(2),
  REFRESH_TOKEN_TTL_DAYS: int(1, 365).default(30),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  BODY_LIMIT_BYTES: int(1024, 100 * 1024 * 1024).default(1024 * 1024),
  READ_YOUR_WRITES_MS: int(0, 600_000).default(5000),
  IDEMPOTENCY_RETENTION_HOURS: int(1, 24 * 365).default(24),
  AUTH_RATE_LIMIT_PER_MINUTE: int(1, 1_000_000).default(20),
  SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(10_000),
  /** How often the org stats materialized view is refreshed (a repeatable Bull job). */
  STATS_REFRESH_MS: int(1000, 86_400_000).default(60_000),
  /** When set, GET /metrics requires `Authorization: Bearer <METRICS_TOKEN>`. */
  METRICS_TOKEN: z.string().min(16).optional(),
  // tracking
  MAX_SPEED_MPS: z.coerce.number().positive().max(1000).default(70),
  ARRIVAL_RADIUS_M: z.coerce.number().positive().max(100_000).default(300),
  OVERSPEED_LIMIT_MPS: z.coerce.number().positive().max(1000).default(25),
  STOPPED_MINUTES: z.coerce
    .number()
    .positive()
    .max(24 * 60)
    .default(15),
  PING_WRITER_WINDOW_MS: int(0, 1000).default(3),
  PING_WRITER_MAX_ROWS: int(1, 50_000).default(5000),
  PING_WRITER_MAX_IN_FLIGHT: int(1, 16).default(2),
  PING_AFTER_FLUSH_SPACING_MS: int(0, 1000).default(20),
  PING_BACKLOG_SWEEP_MS: int(0, 3_600_000).default(10_000),
  TRIP_STATE_CACHE_MS: int(0, 60_000).default(1000),
  TRIP_STATE_CACHE_LIVE_MS: int(0, 3_600_000).default(30_000),
  // realtime (Socket.IO)
  REALTIME_REDIS_ADAPTER: z.enum(['sharded', 'classic']).default('sharded'),
  REALTIME_LOG_MAX_EVENTS: int(10, 1_000_000).default(1000),
  REALTIME_LOG_RETENTION_MS: int(1000, 7 * 86_400_000).default(600_000),
  REALTIME_LOCATION_INTERVAL_MS: int(0, 60_000).default(100),
  REALTIME_REAUTHORIZE_MS: int(100, 86_400_000).default(60_000),
  REALTIME_BREAKER_TIMEOUT_MS: int(10, 60_000).default(500),
  REALTIME_BREAKER_RESET_MS: int(100, 600_000).default(2000),
  REALTIME_MAX_BUFFERED_EVENTS: int(10, 1_000_000).default(1000),
  /** Which peers may set the client address through `X-Forwarded-For`: `false`, a hop count, or IPs/CIDRs. */
  TRUST_PROXY: z.string().default('false').transform(parseTrustProxy),
  /** Logins per phone number per minute, whatever address they come from. */
  AUTH_RATE_LIMIT_PER_PHONE_PER_MINUTE: int(1, 1_000_000).default(10),
  /** Most rate-limit counters a node keeps in memory while Redis is unreachable. */
  RATE_LIMIT_FALLBACK_MAX_KEYS: int(100, 10_000_000).default(100_000),
  /** scrypt cost of password hashes (OWASP minimum N=2^17, r=8, p=1); older hashes are upgraded at login. */
  PASSWORD_SCRYPT_N: int(2, 2 ** 20)
    .refine((n) => (n & (n - 1)) === 0, 'must be a power of 2')
    .default(2 ** 17),
  PASSWORD_SCRYPT_R: int(1, 64).default(8),
  PASSWORD_SCRYPT_P: int(1, 64).default(1),
  /** Browser origins allowed to call the API and Socket.IO across origins (comma-separated); none by default. */
  CORS_ORIGINS: z.string().default('').transform(parseOrigins),
  /** Unknown tracker tokens one client address may send to /tracking/osmand per minute before 429s. */
  OSMAND_UNKNOWN_TOKEN_LIMIT_PER_MINUTE: int(1, 1_000_000).default(30),
  /** Reads go to the primary while the replica is further behind than this (ms). */
  REPLICA_MAX_LAG_MS: int(0, 3_600_000).default(5000),
  /** How often the replica's lag is measured (ms). */
  REPLICA_LAG_POLL_MS: int(50, 600_000).default(1000),
  /** The replica breaker: a replica read slower than the timeout fails (and is served by the primary); an open breaker retries after the reset. */
  REPLICA_BREAKER_TIMEOUT_MS: int(10, 600_000).default(3000),
  REPLICA_BREAKER_RESET_MS: int(100, 600_000).default(5000),
  /** The breaker on the main Redis client's per-request calls (session revocations, read-your-writes pins). */
  REDIS_BREAKER_TIMEOUT_MS: int(10, 60_000).default(500),
  REDIS_BREAKER_RESET_MS: int(100, 600_000).default(2000),
  /** How long a query waits for a pool connection (a new one included) before it fails; 0 waits forever. */
  DATABASE_CONNECT_TIMEOUT_MS: int(0, 600_000).default(5000),
  /** PostgreSQL `statement_timeout` of every app connection (each FETCH of an export counts alone); 0: none. */
  DATABASE_STATEMENT_TIMEOUT_MS: int(0, 86_400_000).default(30_000),
  /** Connections of the separate pool CSV statements stream from (replica if set, else primary). */
  EXPORT_POOL_MAX: int(1, 100).default(4),
  /** CSV statement exports one user may run at once, across nodes (429 beyond). */
  EXPORT_MAX_PER_USER: int(1, 100).default(2),
  /** An export whose client has not taken more data for this long is aborted and its connection freed. */
  EXPORT_IDLE_TIMEOUT_MS: int(100, 3_600_000).default(30_000),
  /** Most points one trip.location event carries (the newest); the rest are counted in `dropped`. */
  REALTIME_LOCATION_MAX_POINTS: int(1, 100_000).default(100),
  /** A room's replay log is also trimmed (oldest first) to about this many bytes of events. */
  REALTIME_LOG_MAX_BYTES: int(1024, 1024 * 1024 * 1024).default(1024 * 1024),
  /** Rooms one socket may hold at once (subscribe beyond: RATE_LIMITED). */
  REALTIME_MAX_ROOMS_PER_SOCKET: int(1, 100_000).default(100),
  /** Subscribes one socket may send per second (beyond: RATE_LIMITED). */
  REALTIME_SUBSCRIBES_PER_SECOND: int(1, 100_000).default(20),
  /** Largest chat attachment in bytes (413 beyond). */
  CHAT_ATTACHMENT_MAX_BYTES: int(1, 1024 * 1024 * 1024).default(10 * 1024 * 1024),
  /** Content types a chat attachment may have, as sniffed from its bytes (415 otherwise), comma-separated. */
  CHAT_ATTACHMENT_TYPES: z
    .string()
    .default('image/png,image/jpeg,image/webp,application/pdf')
    .transform((v) =>
      v
        .split(',')
        .map((t) => t.trim().toLowerCase())
        .filter(Boolean),
    ),
  /** An attachment no message carries after this long is deleted (bytes and row). */
  CHAT_ATTACHMENT_ORPHAN_MS: int(60_000, 365 * 86_400_000).default(86_400_000),
  /** How often the orphan sweep runs. */
  CHAT_ATTACHMENT_SWEEP_MS: int(1000, 86_400_000).default(3_600_000),
  /** Where attachment bytes live: `local` (a folder) or `s3` (any S3-compatible store). */
  STORAGE_DRIVER: z.enum(['local', 's3']).default('local'),
  /** The folder of the `local` storage driver. */
  STORAGE_DIR: z.string().min(1).default('./data/attachments'),
  /** A storage call slower than this fails and counts against the storage breaker. */
  STORAGE_TIMEOUT_MS: int(100, 600_000).default(30_000),
  /** How long an open storage breaker fails fast before trying again. */
  STORAGE_BREAKER_RESET_MS: int(100, 600_000).default(10_000),
  /** The bucket of the `s3` storage driver. */
  S3_BUCKET: z.string().default(''),
  S3_REGION: z.string().default('us-east-1'),
  /** An S3-compatible endpoint (MinIO, R2...); empty for AWS itself. */
  S3_ENDPOINT: z.string().default(''),
  S3_ACCESS_KEY_ID: z.string().default(''),
  S3_SECRET_ACCESS_KEY: z.string().default(''),
  /** Path-style bucket addressing (MinIO needs it). */
  S3_FORCE_PATH_STYLE: z.enum(['true', 'false']).default('false'),
  /** An access-code session not refreshed for this long ends and frees its seat (keep it above JWT_ACCESS_TTL_SECONDS). */
  ACCESS_CODE_SESSION_IDLE_MS: int(1000, 30 * 86_400_000).default(30 * 60_000),
  /** How often the idle sweep of access-code sessions runs (one run per interval across all nodes). */
  ACCESS_CODE_IDLE_SWEEP_MS: int(1000, 86_400_000).default(60_000),
  /** Idle access-code sessions ended per statement of the sweep. */
  ACCESS_CODE_IDLE_BATCH: int(1, 100_000).default(500),
  /** Processes `npm start` runs (node:cluster, one port); 0 = one per core. 1 = no cluster. */
  WEB_CONCURRENCY: int(0, 256).default(1),
  /** Bytes of rendered QR images kept in each node's in-memory LRU. */
  QR_IMAGE_CACHE_BYTES: int(0, 1024 * 1024 * 1024).default(16 * 1024 * 1024),
  /** Seconds a public tag page's summary stays in Redis (dropped at once on disable). */
  QR_PUBLIC_CACHE_TTL_SECONDS: int(1, 86_400).default(60),
  /** Items a QR batch may carry. */
  QR_BATCH_MAX_ITEMS: int(1, 100_000).default(10_000),
  /** Tags a batch job inserts per statement. */
  QR_BATCH_CHUNK: int(1, 10_000).default(500),
  /** Public tag page (`GET /q/:code`) requests per client address per minute (429 with Retry-After above it). */
  QR_PUBLIC_RATE_LIMIT_PER_MINUTE: int(1, 10_000_000).default(600),
  // rate limits per user, queues, admin
  /** Ping requests per driver per minute (POST /tracking/ping and the OsmAnd endpoint together). */
  PING_RATE_LIMIT_PER_MINUTE: int(1, 10_000_000).default(600),
  /** Authenticated GET requests under /api/v1 per user per minute. */
  READ_RATE_LIMIT_PER_MINUTE: int(1, 10_000_000).default(1200),
  /** Code logins per access code per minute, whatever address they come from. */
  AUTH_RATE_LIMIT_PER_CODE_PER_MINUTE: int(1, 1_000_000).default(10),
  /** Completed jobs kept per queue (older ones are trimmed). */
  QUEUE_COMPLETED_JOBS_KEPT: int(0, 1_000_000).default(100),
  /** Failed (dead) jobs kept per queue for inspection; 0 keeps every one. */
  QUEUE_FAILED_JOBS_KEPT: int(0, 10_000_000).default(1000),
  /** When set, Bull Board is served at /admin/queues to `Authorization: Bearer <ADMIN_TOKEN>` (or basic, any user); unset: 404. */
  ADMIN_TOKEN: z.string().min(16).optional(),
  /** Seconds an object stays in the shared Redis cache (org, roles, trip detail, access code); writes drop it at once. */
  CACHE_TTL_SECONDS: int(1, 86_400).default(300),
  /** Spread of every cache TTL, as a fraction (0.1: each entry lives 90 %..110 % of its TTL), so entries do not expire together. */
  CACHE_TTL_JITTER: z.coerce.number().min(0).max(0.9).default(0.1),
  /** Milliseconds an object stays in a node's in-memory LRU in front of Redis (0: no local tier). */
  CACHE_LOCAL_TTL_MS: int(0, 3_600_000).default(10_000),
  /** Objects each node's in-memory LRU holds at most. */
  CACHE_LOCAL_MAX_ENTRIES: int(1, 10_000_000).default(20_000),
  /** Bytes (of JSON) each node's in-memory LRU holds at most. */
  CACHE_LOCAL_MAX_BYTES: int(1024, 1024 * 1024 * 1024).default(32 * 1024 * 1024),
  /** How long a node that found a cold key locked by another node waits for that node's value before loading itself. */
  CACHE_LOCK_WAIT_MS: int(0, 10_000).default(300),
  /** Key (64 hex chars or 44 base64 chars = 32 bytes) that encrypts webhook secrets at rest; required in production, derived from JWT_SECRET elsewhere. */
  WEBHOOK_SECRET_KEY: z.string().optional(),
  /** Allows webhook URLs whose host is (or resolves to) a private, loopback or link-local address. */
  WEBHOOK_ALLOW_PRIVATE: z.enum(['true', 'false']).default('false'),
  /** A webhook delivery attempt that has no full answer within this time fails (and is retried). */
  WEBHOOK_TIMEOUT_MS: int(100, 120_000).default(10_000),
  /** First retry delay; each later one doubles, with full jitter. */
  WEBHOOK_RETRY_FIRST_DELAY_MS: int(10, 86_400_000).default(10_000),
  /** No retry is scheduled later than this after the event. */
  WEBHOOK_RETRY_WINDOW_MS: int(1000, 30 * 86_400_000).default(86_400_000),
  /** An endpoint failing without a single success for this long is disabled. */
  WEBHOOK_DISABLE_AFTER_MS: int(1000, 30 * 86_400_000).default(86_400_000),
  /** How often the outbox relay looks for new events (it is also woken right after a commit on this node). */
  WEBHOOK_RELAY_INTERVAL_MS: int(50, 600_000).default(1000),
  /** `POST /orgs/:orgId/webhooks/:webhookId/test` requests per org per minute. */
  WEBHOOK_TEST_RATE_LIMIT_PER_MINUTE: int(1, 100_000).default(10),
});

export type Env = z.input<typeof envSchema>;

/** Every variable the service reads. */
export const CONFIG_VARIABLES = Object.keys(envSchema.shape);

export interface AppConfig {
  env: 'development' | 'production' | 'test';
  port: number;
  host: string;
  databaseUrl: string;
  databaseReplicaUrl: string | undefined;
  databasePoolMax: number;
  databasePreparedStatements: boolean;
  /**
   * DATABASE_URL is a transaction-mode pooler (`?pgbouncer=true`, removed from the URL): the primary's
   * connections carry no named statements and no startup parameters beyond `application_name`.
   */
  databaseTransactionPooler: boolean;
  redisUrl: string;
  redisKeyPrefix: string;
  publicBaseUrl: string;
  jwtSecret: string;
  accessTokenTtlSeconds: number;
  /** How often each node reloads the revoked-session list beside the published changes. */
  revocationResyncMs: number;
  /** Most postings in one `ledger_post_many` statement. */
  ledgerBatchMax: number;
  /** Posting statements running at once per process. */
  ledgerBatchInFlight: number;
  refreshTokenTtlDays: number;
  logLevel: string;
  bodyLimitBytes: number;
  readYourWritesMs: number;
  idempotencyRetentionHours: number;
  authRateLimitPerMinute: number;
  shutdownTimeoutMs: number;
  statsRefreshMs: number;
  /** Bearer token GET /metrics requires; undefined leaves it open (keep it off the public network then). */
  metricsToken: string | undefined;
  /** Implied speed between two fixes above which the later one is rejected. */
  maxSpeedMps: number;
  /** Distance from the end point within which an IN_TRANSIT trip has arrived. */
  arrivalRadiusM: number;
  overspeedLimitMps: number;
  /** How long an IN_TRANSIT truck may stand still before a STOPPED event. */
  stoppedMinutes: number;
  /** Group commit of pings: how long the first queued row waits, and the most rows per flush. */
  pingWriterWindowMs: number;
  pingWriterMaxRows: number;
  /** How many ping flushes may be committing at once (the next batch collects while one commits). */
  /** Least time between the starts of two after-flush rounds (trip updates, Redis, room events). */
  pingAfterFlushSpacingMs: number;
  /** Every this long, stored points left uncounted for this long (a node died before its round) are counted; 0: never. */
  pingBacklogSweepMs: number;
  pingWriterMaxInFlight: number;
  /** How long a node reuses a trip's ingest state while it does not hear the cluster bus; 0 reads it every time. */
  tripStateCacheMs: number;
  /** How long a trip's ingest state is reused while the node hears the cluster bus (status changes drop it at once). */
  tripStateCacheLiveMs: number;
  /** Socket.IO Redis adapter: sharded pub/sub (Redis 7) or the classic one. */
  realtimeRedisAdapter: 'sharded' | 'classic';
  /** Replay log of each room: at most this many events, none older than the retention. */
  realtimeLogMaxEvents: number;
  realtimeLogRetentionMs: number;
  /** At most one trip.location event per trip per interval (points in between are merged). */
  realtimeLocationIntervalMs: number;
  /** How often subscribed rooms are re-authorized (a user removed from an org stops receiving). */
  realtimeReauthorizeMs: number;
  /** The realtime Redis breaker: a call slower than the timeout fails; an open breaker retries after the reset. */
  realtimeBreakerTimeoutMs: number;
  realtimeBreakerResetMs: number;
  /** A socket with more events than this waiting to be sent (a client that stopped reading) is disconnected. */
  realtimeMaxBufferedEvents: number;
  /** Fastify `trustProxy`: false (the socket's peer is the client), a hop count, or the proxies' IPs/CIDRs. */
  trustProxy: TrustProxy;
  /** Logins per phone number per minute, across all addresses. */
  authRateLimitPerPhonePerMinute: number;
  /** Most counters each node keeps while rate limits are counted locally (Redis unreachable). */
  rateLimitFallbackMaxKeys: number;
  /** scrypt parameters new password hashes are made with; weaker stored hashes are rehashed at login. */
  passwordScrypt: { N: number; r: number; p: number };
  /** Origins (scheme://host[:port]) allowed cross-origin on HTTP and Socket.IO; empty: same origin only. */
  corsOrigins: string[];
  /** Unknown tracker tokens one client address may send to /tracking/osmand per minute (then 429 with Retry-After). */
  osmandUnknownTokenLimitPerMinute: number;
  /** Reads go to the primary while the replica is further behind than this (ms). */
  replicaMaxLagMs: number;
  /** How often the replica's lag is measured (ms). */
  replicaLagPollMs: number;
  /** The replica breaker: a slower read fails and is served by the primary; an open breaker retries after the reset. */
  replicaBreakerTimeoutMs: number;
  replicaBreakerResetMs: number;
  /** The breaker on per-request Redis calls (session revocations, read-your-writes pins): timeout and reset (ms). */
  redisBreakerTimeoutMs: number;
  redisBreakerResetMs: number;
  /** How long a query waits for a pool connection before it fails (pg `connectionTimeoutMillis`); 0: forever. */
  databaseConnectTimeoutMs: number;
  /** `statement_timeout` of every app connection; 0: none. */
  databaseStatementTimeoutMs: number;
  /** Size of the separate pool CSV statement exports use. */
  exportPoolMax: number;
  /** Concurrent CSV exports per user, across nodes. */
  exportMaxPerUser: number;
  /** An export blocked this long by a client that does not read is aborted. */
  exportIdleTimeoutMs: number;
  /** Most points in one trip.location event (the newest kept, the rest counted in `dropped`). */
  realtimeLocationMaxPoints: number;
  /** A room's replay log is trimmed to about this many bytes as well as REALTIME_LOG_MAX_EVENTS. */
  realtimeLogMaxBytes: number;
  /** Rooms one socket may hold at once. */
  realtimeMaxRoomsPerSocket: number;
  /** Subscribes one socket may send per second. */
  realtimeSubscribesPerSecond: number;
  /** Largest chat attachment in bytes. */
  chatAttachmentMaxBytes: number;
  /** Content types a chat attachment may have (sniffed). */
  chatAttachmentTypes: string[];
  /** Age after which an attachment no message carries is deleted. */
  chatAttachmentOrphanMs: number;
  /** Interval of the orphan attachment sweep. */
  chatAttachmentSweepMs: number;
  /** Attachment storage: the driver and its settings. */
  storage: {
    driver: 'local' | 's3';
    dir: string;
    timeoutMs: number;
    breakerResetMs: number;
    s3: {
      bucket: string;
      region: string;
      endpoint: string;
      accessKeyId: string;
      secretAccessKey: string;
      forcePathStyle: boolean;
    };
  };
  /** An access-code session not refreshed for this long (ms) ends and frees its seat. */
  accessCodeSessionIdleMs: number;
  /** Interval (ms) of the idle sweep of access-code sessions. */
  accessCodeIdleSweepMs: number;
  /** Idle access-code sessions ended per statement of the sweep. */
  accessCodeIdleBatch: number;
  /** Processes main.ts runs (node:cluster workers sharing the port); 0 = one per core. */
  webConcurrency: number;
  /** Bytes of rendered QR images kept in each node's in-memory LRU. */
  qrImageCacheBytes: number;
  /** Seconds a public tag page's summary stays in Redis. */
  qrPublicCacheTtlSeconds: number;
  /** Items a QR batch may carry. */
  qrBatchMaxItems: number;
  /** Tags a batch job inserts per statement. */
  qrBatchChunk: number;
  /** Public tag page requests per client address per minute. */
  qrPublicRateLimitPerMinute: number;
  /** Ping requests per driver per minute (both ingest endpoints). */
  pingRateLimitPerMinute: number;
  /** Authenticated GETs under /api/v1 per user per minute. */
  readRateLimitPerMinute: number;
  /** Code logins per access code per minute. */
  authRateLimitPerCodePerMinute: number;
  queueCompletedJobsKept: number;
  /** 0: every failed job is kept. */
  queueFailedJobsKept: number;
  /** Bull Board's credential; undefined: the board is off (404). */
  adminToken: string | undefined;
  /** Seconds an object stays in the Redis tier of the Cache. */
  cacheTtlSeconds: number;
  /** Spread of every cache TTL (fraction, both ways). */
  cacheTtlJitter: number;
  /** Milliseconds an object stays in a node's in-memory tier (0: none). */
  cacheLocalTtlMs: number;
  cacheLocalMaxEntries: number;
  cacheLocalMaxBytes: number;
  /** How long a node waits for another node loading the same cold key. */
  cacheLockWaitMs: number;
  webhooks: {
    /** 32 bytes: the AES-256-GCM key of the endpoints' secrets. */
    secretKey: Buffer;
    allowPrivate: boolean;
    timeoutMs: number;
    retryFirstDelayMs: number;
    retryWindowMs: number;
    disableAfterMs: number;
    relayIntervalMs: number;
    testRateLimitPerMinute: number;
  };
}

export type TrustProxy = false | number | string[];

/** proxy-addr's named ranges, accepted beside IPs and CIDRs. */
const PROXY_RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function parseTrustProxy(value: string, ctx: z.RefinementCtx): TrustProxy {
  const v = value.trim().toLowerCase();
  if (v === 'false' || v === '0') return false;
  if (/^\d+$/.test(v)) return Number(v);
  const entries = v.split(',').map((e) => e.trim());
  for (const entry of entries) {
    const [ip, prefix, extra] = entry.split('/');
    const family = isIP(ip);
    const prefixOk = prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= (family === 6 ? 128 : 32));
    if (PROXY_RANGE_NAMES.has(entry) || (family !== 0 && prefixOk && extra === undefined)) continue;
    ctx.addIssue({ code: 'custom', message: `"${entry}" is not false, a hop count, an IP or a CIDR` });
    return z.NEVER;
  }
  return entries;
}

function parseOrigins(value: string, ctx: z.RefinementCtx): string[] {
  const origins = value
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  for (const origin of origins) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      /* reported below */
    }
    if (!parsed || parsed.origin !== origin.replace(/\/+$/, '')) {
      ctx.addIssue({ code: 'custom', message: `"${origin}" is not an origin such as https://app.example.com` });
      return z.NEVER;
    }
  }
  return origins.map((o) => o.replace(/\/+$/, ''));
}

/**
 * Reads and removes `pgbouncer=true` from a database URL (the flag Prisma's own
 * engine reads; pg ignores it): the URL leads to a pooler in transaction mode.
 */
export function transactionPoolerUrl(raw: string): { url: string; transactionPooler: boolean } {
  const url = new URL(raw);
  const flag = url.searchParams.get('pgbouncer');
  if (flag === null) return { url: raw, transactionPooler: false };
  url.searchParams.delete('pgbouncer');
  return { url: url.toString(), transactionPooler: flag === 'true' || flag === '1' };
}

export class ConfigError extends Error {}

/** A development-only signing key; production refuses to start without JWT_SECRET. */
const DEV_JWT_SECRET = 'waybill-development-secret-do-not-use-in-production';

export function loadConfig(source: Record<string, string | undefined>): AppConfig {
  // Empty strings mean "unset", as in most .env files.
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const e = parsed.data;
  const pooler = transactionPoolerUrl(e.DATABASE_URL);
  if (e.NODE_ENV === 'production' && !e.JWT_SECRET) {
    throw new ConfigError('Invalid configuration:\n  JWT_SECRET: required when NODE_ENV=production');
  }
  return {
    env: e.NODE_ENV,
    port: e.PORT,
    host: e.HOST,
    databaseUrl: pooler.url,
    databaseReplicaUrl: e.DATABASE_REPLICA_URL,
    databasePoolMax: e.DATABASE_POOL_MAX,
    databasePreparedStatements: e.DATABASE_PREPARED_STATEMENTS === 'true' && !pooler.transactionPooler,
    databaseTransactionPooler: pooler.transactionPooler,
    redisUrl: e.REDIS_URL,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    publicBaseUrl: e.PUBLIC_BASE_URL.replace(/\/+$/, ''),
    jwtSecret: e.JWT_SECRET ?? DEV_JWT_SECRET,
    accessTokenTtlSeconds: e.JWT_ACCESS_TTL_SECONDS,
    revocationResyncMs: e.REVOCATION_RESYNC_MS,
    ledgerBatchMax: e.LEDGER_BATCH_MAX,
    ledgerBatchInFlight: e.LEDGER_BATCH_IN_FLIGHT,
    refreshTokenTtlDays: e.REFRESH_TOKEN_TTL_DAYS,
    logLevel: e.LOG_LEVEL,
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    readYourWritesMs: e.READ_YOUR_WRITES_MS,
    idempotencyRetentionHours: e.IDEMPOTENCY_RETENTION_HOURS,
    authRateLimitPerMinute: e.AUTH_RATE_LIMIT_PER_MINUTE,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    statsRefreshMs: e.STATS_REFRESH_MS,
    metricsToken: e.METRICS_TOKEN,
    maxSpeedMps: e.MAX_SPEED_MPS,
    arrivalRadiusM: e.ARRIVAL_RADIUS_M,
    overspeedLimitMps: e.OVERSPEED_LIMIT_MPS,
    stoppedMinutes: e.STOPPED_MINUTES,
    pingWriterWindowMs: e.PING_WRITER_WINDOW_MS,
    pingWriterMaxRows: e.PING_WRITER_MAX_ROWS,
    pingWriterMaxInFlight: e.PING_WRITER_MAX_IN_FLIGHT,
    pingAfterFlushSpacingMs: e.PING_AFTER_FLUSH_SPACING_MS,
    pingBacklogSweepMs: e.PING_BACKLOG_SWEEP_MS,
    tripStateCacheMs: e.TRIP_STATE_CACHE_MS,
    tripStateCacheLiveMs: e.TRIP_STATE_CACHE_LIVE_MS,
    realtimeRedisAdapter: e.REALTIME_REDIS_ADAPTER,
    realtimeLogMaxEvents: e.REALTIME_LOG_MAX_EVENTS,
    realtimeLogRetentionMs: e.REALTIME_LOG_RETENTION_MS,
    realtimeLocationIntervalMs: e.REALTIME_LOCATION_INTERVAL_MS,
    realtimeReauthorizeMs: e.REALTIME_REAUTHORIZE_MS,
    realtimeBreakerTimeoutMs: e.REALTIME_BREAKER_TIMEOUT_MS,
    realtimeBreakerResetMs: e.REALTIME_BREAKER_RESET_MS,
    realtimeMaxBufferedEvents: e.REALTIME_MAX_BUFFERED_EVENTS,
    trustProxy: e.TRUST_PROXY,
    authRateLimitPerPhonePerMinute: e.AUTH_RATE_LIMIT_PER_PHONE_PER_MINUTE,
    rateLimitFallbackMaxKeys: e.RATE_LIMIT_FALLBACK_MAX_KEYS,
    passwordScrypt: { N: e.PASSWORD_SCRYPT_N, r: e.PASSWORD_SCRYPT_R, p: e.PASSWORD_SCRYPT_P },
    corsOrigins: e.CORS_ORIGINS,
    osmandUnknownTokenLimitPerMinute: e.OSMAND_UNKNOWN_TOKEN_LIMIT_PER_MINUTE,
    replicaMaxLagMs: e.REPLICA_MAX_LAG_MS,
    replicaLagPollMs: e.REPLICA_LAG_POLL_MS,
    replicaBreakerTimeoutMs: e.REPLICA_BREAKER_TIMEOUT_MS,
    replicaBreakerResetMs: e.REPLICA_BREAKER_RESET_MS,
    redisBreakerTimeoutMs: e.REDIS_BREAKER_TIMEOUT_MS,
    redisBreakerResetMs: e.REDIS_BREAKER_RESET_MS,
    databaseConnectTimeoutMs: e.DATABASE_CONNECT_TIMEOUT_MS,
    databaseStatementTimeoutMs: e.DATABASE_STATEMENT_TIMEOUT_MS,
    exportPoolMax: e.EXPORT_POOL_MAX,
    exportMaxPerUser: e.EXPORT_MAX_PER_USER,
    exportIdleTimeoutMs: e.EXPORT_IDLE_TIMEOUT_MS,
    realtimeLocationMaxPoints: e.REALTIME_LOCATION_MAX_POINTS,
    realtimeLogMaxBytes: e.REALTIME_LOG_MAX_BYTES,
    realtimeMaxRoomsPerSocket: e.REALTIME_MAX_ROOMS_PER_SOCKET,
    realtimeSubscribesPerSecond: e.REALTIME_SUBSCRIBES_PER_SECOND,
    chatAttachmentMaxBytes: e.CHAT_ATTACHMENT_MAX_BYTES,
    chatAttachmentTypes: e.CHAT_ATTACHMENT_TYPES,
    chatAttachmentOrphanMs: e.CHAT_ATTACHMENT_ORPHAN_MS,
    chatAttachmentSweepMs: e.CHAT_ATTACHMENT_SWEEP_MS,
    storage: {
      driver: e.STORAGE_DRIVER,
      dir: e.STORAGE_DIR,
      timeoutMs: e.STORAGE_TIMEOUT_MS,
      breakerResetMs: e.STORAGE_BREAKER_RESET_MS,
      s3: {
        bucket: e.S3_BUCKET,
        region: e.S3_REGION,
        endpoint: e.S3_ENDPOINT,
        accessKeyId: e.S3_ACCESS_KEY_ID,
        secretAccessKey: e.S3_SECRET_ACCESS_KEY,
        forcePathStyle: e.S3_FORCE_PATH_STYLE === 'true',
      },
    },
    accessCodeSessionIdleMs: e.ACCESS_CODE_SESSION_IDLE_MS,
    accessCodeIdleSweepMs: e.ACCESS_CODE_IDLE_SWEEP_MS,
    accessCodeIdleBatch: e.ACCESS_CODE_IDLE_BATCH,
    webConcurrency: e.WEB_CONCURRENCY,
    qrImageCacheBytes: e.QR_IMAGE_CACHE_BYTES,
    qrPublicCacheTtlSeconds: e.QR_PUBLIC_CACHE_TTL_SECONDS,
    qrBatchMaxItems: e.QR_BATCH_MAX_ITEMS,
    qrBatchChunk: e.QR_BATCH_CHUNK,
    qrPublicRateLimitPerMinute: e.QR_PUBLIC_RATE_LIMIT_PER_MINUTE,
    pingRateLimitPerMinute: e.PING_RATE_LIMIT_PER_MINUTE,
    readRateLimitPerMinute: e.READ_RATE_LIMIT_PER_MINUTE,
    authRateLimitPerCodePerMinute: e.AUTH_RATE_LIMIT_PER_CODE_PER_MINUTE,
    queueCompletedJobsKept: e.QUEUE_COMPLETED_JOBS_KEPT,
    queueFailedJobsKept: e.QUEUE_FAILED_JOBS_KEPT,
    adminToken: e.ADMIN_TOKEN,
    cacheTtlSeconds: e.CACHE_TTL_SECONDS,
    cacheTtlJitter: e.CACHE_TTL_JITTER,
    cacheLocalTtlMs: e.CACHE_LOCAL_TTL_MS,
    cacheLocalMaxEntries: e.CACHE_LOCAL_MAX_ENTRIES,
    cacheLocalMaxBytes: e.CACHE_LOCAL_MAX_BYTES,
    cacheLockWaitMs: e.CACHE_LOCK_WAIT_MS,
    webhooks: {
      secretKey: webhookSecretKey(e.WEBHOOK_SECRET_KEY, e.NODE_ENV, e.JWT_SECRET ?? DEV_JWT_SECRET),
      allowPrivate: e.WEBHOOK_ALLOW_PRIVATE === 'true',
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      retryFirstDelayMs: e.WEBHOOK_RETRY_FIRST_DELAY_MS,
      retryWindowMs: e.WEBHOOK_RETRY_WINDOW_MS,
      disableAfterMs: e.WEBHOOK_DISABLE_AFTER_MS,
      relayIntervalMs: e.WEBHOOK_RELAY_INTERVAL_MS,
      testRateLimitPerMinute: e.WEBHOOK_TEST_RATE_LIMIT_PER_MINUTE,
    },
  };
}

/**
 * The key of the webhook secrets: WEBHOOK_SECRET_KEY (32 bytes, hex or
 * base64), required in production; elsewhere derived from the JWT secret so
 * development and tests need no extra setting.
 */
function webhookSecretKey(value: string | undefined, env: string, jwtSecret: string): Buffer {
  // An empty value (`WEBHOOK_SECRET_KEY=` as .env.example has it) counts as unset.
  if (value === undefined || value === '') {
    if (env === 'production') {
      throw new ConfigError('Invalid configuration:\n  WEBHOOK_SECRET_KEY: required when NODE_ENV=production');
    }
    return createHash('sha256').update(`waybill-webhook-secrets:${jwtSecret}`).digest();
  }
  const key = /^[0-9a-fA-F]{64}$/.test(value) ? Buffer.from(value, 'hex') : Buffer.from(value, 'base64');
  if (key.length !== 32) {
    throw new ConfigError(
      'Invalid configuration:\n  WEBHOOK_SECRET_KEY: must be 32 bytes (64 hex or 44 base64 characters)',
    );
  }
  return key;
}

/** Injection token for the parsed configuration. */
export const APP_CONFIG = Symbol('APP_CONFIG');
