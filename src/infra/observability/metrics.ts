import { Counter, Gauge, Histogram, Registry } from 'prom-client';

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
