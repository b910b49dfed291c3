import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The one metrics registry of the process. Features register their metrics
 * here; `GET /metrics` (a later issue) renders `metricsRegistry.metrics()`.
 * Metrics are process-wide: two app instances in one process (multi-node
 * tests) share them.
 */
export const metricsRegistry = new Registry();

/** Returns the metric of that name when already registered (hot reload, tests), else registers it. */
function once<T>(name: string, make: () => T): T {
  return (metricsRegistry.getSingleMetric(name) as T | undefined) ?? make();
}

/** Seconds, for steps of the ping path that take from half a millisecond to a few seconds. */
const FAST_STEP_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

// ---- realtime (Socket.IO) ----

export const wsConnections = once(
  'waybill_ws_connections',
  () =>
    new Gauge({
      name: 'waybill_ws_connections',
      help: 'Socket.IO clients connected to this process',
      registers: [metricsRegistry],
    }),
);

export const wsRoomSubscriptions = once(
  'waybill_ws_room_subscriptions',
  () =>
    new Gauge({
      name: 'waybill_ws_room_subscriptions',
      help: 'Room subscriptions held by sockets of this process, by room kind',
      labelNames: ['kind'],
      registers: [metricsRegistry],
    }),
);

export const wsConnectRefused = once(
  'waybill_ws_connect_refused_total',
  () =>
    new Counter({
      name: 'waybill_ws_connect_refused_total',
      help: 'Socket.IO handshakes refused, by error code',
      labelNames: ['code'],
      registers: [metricsRegistry],
    }),
);

export const wsSlowConsumerDisconnects = once(
  'waybill_ws_slow_consumer_disconnects_total',
  () =>
    new Counter({
      name: 'waybill_ws_slow_consumer_disconnects_total',
      help: 'Sockets disconnected because more events waited to be sent to them than REALTIME_MAX_BUFFERED_EVENTS',
      registers: [metricsRegistry],
    }),
);

export const realtimeEventsPublished = once(
  'waybill_realtime_events_published_total',
  () =>
    new Counter({
      name: 'waybill_realtime_events_published_total',
      help: 'Room events published by this process (after coalescing), by event and path (redis or local when Redis is down)',
      labelNames: ['event', 'path'],
      registers: [metricsRegistry],
    }),
);

export const realtimeBroadcastLatency = once(
  'waybill_realtime_broadcast_latency_seconds',
  () =>
    new Histogram({
      name: 'waybill_realtime_broadcast_latency_seconds',
      help: 'From publish (after coalescing) to the local Socket.IO broadcast, by origin (local or remote node)',
      labelNames: ['origin'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [metricsRegistry],
    }),
);

export const realtimeReplays = once(
  'waybill_realtime_replays_total',
  () =>
    new Counter({
      name: 'waybill_realtime_replays_total',
      help: 'subscribe calls with sinceSeq, by outcome (complete or truncated)',
      labelNames: ['outcome'],
      registers: [metricsRegistry],
    }),
);

/** 0 closed, 1 half-open, 2 open. */
export const breakerState = once(
  'waybill_breaker_state',
  () =>
    new Gauge({
      name: 'waybill_breaker_state',
      help: 'Circuit breaker state: 0 closed, 1 half-open, 2 open',
      labelNames: ['breaker'],
      registers: [metricsRegistry],
    }),
);

// ---- HTTP ----

export const httpRequestDuration = once(
  'waybill_http_request_duration_seconds',
  () =>
    new Histogram({
      name: 'waybill_http_request_duration_seconds',
      help: 'HTTP requests from routing to the end of the response, by method, route pattern (unmatched for no route) and status code',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [metricsRegistry],
    }),
);

export const rateLimited = once(
  'waybill_rate_limited_total',
  () =>
    new Counter({
      name: 'waybill_rate_limited_total',
      help: 'Requests refused with 429 by a rate limit, by limit class',
      labelNames: ['class'],
      registers: [metricsRegistry],
    }),
);

/** The 429 counter of one limit class, bound once and present (at 0) from the start. */
export function rateLimitedCounter(limitClass: string): Counter.Internal {
  const counter = rateLimited.labels(limitClass);
  counter.inc(0);
  return counter;
}

// ---- ping ingest ----

export const pingsAccepted = once(
  'waybill_pings_accepted_total',
  () =>
    new Counter({
      name: 'waybill_pings_accepted_total',
      help: 'Ping locations stored (committed by the ping writer)',
      registers: [metricsRegistry],
    }),
);

export const pingsDuplicate = once(
  'waybill_pings_duplicate_total',
  () =>
    new Counter({
      name: 'waybill_pings_duplicate_total',
      help: 'Ping locations not stored because the trip already had a point at that time (stored before, or repeated in the same flush)',
      registers: [metricsRegistry],
    }),
);

export const pingsRejected = once(
  'waybill_pings_rejected_total',
  () =>
    new Counter({
      name: 'waybill_pings_rejected_total',
      help: 'Ping locations rejected by the filters, by reason',
      labelNames: ['reason'],
      registers: [metricsRegistry],
    }),
);

export const pingFlushFailures = once(
  'waybill_ping_flush_failures_total',
  () =>
    new Counter({
      name: 'waybill_ping_flush_failures_total',
      help: 'Ping flushes whose INSERT failed (their requests were answered 503, nothing stored)',
      registers: [metricsRegistry],
    }),
);

export const pingFlushRows = once(
  'waybill_ping_flush_rows',
  () =>
    new Histogram({
      name: 'waybill_ping_flush_rows',
      help: 'Rows in the INSERT of one committed ping flush (after removing repeats within the flush)',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000],
      registers: [metricsRegistry],
    }),
);

export const pingFlushRequests = once(
  'waybill_ping_flush_requests',
  () =>
    new Histogram({
      name: 'waybill_ping_flush_requests',
      help: 'Requests (writes) served by one committed ping flush',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500],
      registers: [metricsRegistry],
    }),
);

export const pingFlushDuration = once(
  'waybill_ping_flush_duration_seconds',
  () =>
    new Histogram({
      name: 'waybill_ping_flush_duration_seconds',
      help: 'INSERT and commit of one ping flush (successful flushes)',
      buckets: FAST_STEP_BUCKETS_S,
      registers: [metricsRegistry],
    }),
);

export const pingCommitWait = once(
  'waybill_ping_commit_wait_seconds',
  () =>
    new Histogram({
      name: 'waybill_ping_commit_wait_seconds',
      help: 'From a request handing its rows to the ping writer to their commit (window, queueing behind other flushes, INSERT)',
      buckets: FAST_STEP_BUCKETS_S,
      registers: [metricsRegistry],
    }),
);

// ---- caches ----

export const cacheRequests = once(
  'waybill_cache_requests_total',
  () =>
    new Counter({
      name: 'waybill_cache_requests_total',
      help: 'Lookups in the caches of this process (trip_state, trip_access), Redis (trip_latest) and the two-tier Cache (org, member_roles, trip_detail, qr_public, access_code), by cache and result: hit or miss; the Cache also counts local_hit (this node\'s LRU) and bypass (Redis down: the loader answered)',
      labelNames: ['cache', 'result'],
      registers: [metricsRegistry],
    }),
);

/** The hit and miss counters of one cache, bound once so that counting allocates nothing. */
export function cacheCounters(cache: string): { hit: Counter.Internal; miss: Counter.Internal } {
  const hit = cacheRequests.labels(cache, 'hit');
  const miss = cacheRequests.labels(cache, 'miss');
  // Both series exist from the start: rate() of a hit ratio needs them before the first miss.
  hit.inc(0);
  miss.inc(0);
  return { hit, miss };
}

/** The counters of one two-tier Cache (src/infra/cache), bound once. */
export function tieredCacheCounters(cache: string): {
  localHit: Counter.Internal;
  hit: Counter.Internal;
  miss: Counter.Internal;
  bypass: Counter.Internal;
} {
  const { hit, miss } = cacheCounters(cache);
  const localHit = cacheRequests.labels(cache, 'local_hit');
  const bypass = cacheRequests.labels(cache, 'bypass');
  localHit.inc(0);
  bypass.inc(0);
  return { localHit, hit, miss, bypass };
}

// ---- database pools and queues, read at scrape time ----

export interface PoolUse {
  /** primary or replica */
  db: string;
  total: number;
  idle: number;
  /** Queries waiting for a connection. */
  waiting: number;
}

export interface QueueDepthSource {
  name: string;
  /** Jobs by state; rejects (or times out) when Redis is unreachable. */
  counts(): Promise<Record<string, number>>;
}

/**
 * Live sources of the scrape-time gauges. Every app instance of the process
 * (multi-node tests run two) adds its own and removes them when it closes;
 * the gauges report the sum over them.
 */
const poolSources = new Set<() => readonly PoolUse[]>();
const queueSources = new Set<QueueDepthSource>();

export function watchDbPools(read: () => readonly PoolUse[]): () => void {
  poolSources.add(read);
  return () => poolSources.delete(read);
}

export function watchQueue(source: QueueDepthSource): () => void {
  queueSources.add(source);
  return () => queueSources.delete(source);
}

export const dbPoolConnections = once(
  'waybill_db_pool_connections',
  () =>
    new Gauge({
      name: 'waybill_db_pool_connections',
      help: 'Connections of the pg pools by database (primary, replica) and state: total open, idle, and waiting (queries queued for a connection)',
      labelNames: ['db', 'state'],
      registers: [metricsRegistry],
      collect() {
        this.reset();
        for (const read of poolSources) {
          for (const p of read()) {
            this.inc({ db: p.db, state: 'total' }, p.total);
            this.inc({ db: p.db, state: 'idle' }, p.idle);
            this.inc({ db: p.db, state: 'waiting' }, p.waiting);
          }
        }
      },
    }),
);

interface QueueRead {
  name: string;
  /** Undefined when the queue could not be read. */
  counts: Record<string, number> | undefined;
}

let queueRead: Promise<QueueRead[]> | null = null;

/**
 * One read of every queue per scrape, shared by the metrics that report it:
 * the registry collects all metrics at once, so the failure counter waits for
 * the same read as the depths and a failure shows in the scrape that met it.
 */
function readQueues(): Promise<QueueRead[]> {
  queueRead ??= Promise.all(
    [...queueSources].map((q) =>
      q.counts().then(
        (counts): QueueRead => ({ name: q.name, counts }),
        (): QueueRead => {
          queueScrapeFailures.inc({ queue: q.name });
          return { name: q.name, counts: undefined };
        },
      ),
    ),
  ).finally(() => {
    queueRead = null;
  });
  return queueRead;
}

export const queueScrapeFailures = once(
  'waybill_queue_scrape_failures_total',
  () =>
    new Counter({
      name: 'waybill_queue_scrape_failures_total',
      help: 'Scrapes that could not read a queue depth (Redis down or slow), by queue',
      labelNames: ['queue'],
      registers: [metricsRegistry],
      async collect() {
        await readQueues();
      },
    }),
);

export const queueJobs = once(
  'waybill_queue_jobs',
  () =>
    new Gauge({
      name: 'waybill_queue_jobs',
      help: 'Bull jobs by queue and state (waiting, active, delayed, paused, completed and failed kept); a queue whose Redis does not answer is left out',
      labelNames: ['queue', 'state'],
      registers: [metricsRegistry],
      async collect() {
        const read = await readQueues();
        this.reset();
        for (const { name, counts } of read) {
          if (!counts) continue;
          for (const [state, n] of Object.entries(counts)) this.inc({ queue: name, state }, n);
        }
      },
    }),
);

// ---- webhooks ----

export const webhookDeliveries = once(
  'waybill_webhook_deliveries_total',
  () =>
    new Counter({
      name: 'waybill_webhook_deliveries_total',
      help: 'Webhook delivery attempts by outcome (success, http_error, timeout, network_error, refused)',
      labelNames: ['outcome'],
      registers: [metricsRegistry],
    }),
);

export const webhookDeliverySeconds = once(
  'waybill_webhook_delivery_seconds',
  () =>
    new Histogram({
      name: 'waybill_webhook_delivery_seconds',
      help: 'Latency of webhook delivery attempts, from the request to the end of the answer',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [metricsRegistry],
    }),
);

/**
 * Process metrics (event loop lag, GC, heap, CPU, handles), once per process
 * however many app instances start in it.
 */
export function collectProcessMetrics(): void {
  if (metricsRegistry.getSingleMetric('nodejs_eventloop_lag_seconds')) return;
  collectDefaultMetrics({ register: metricsRegistry });
}
