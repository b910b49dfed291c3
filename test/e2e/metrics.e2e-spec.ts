import { QUEUES } from '../../src/infra/queue/queue.module';
import Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { metricsRegistry } from '../../src/infra/observability/metrics';
import { PingWriter } from '../../src/modules/tracking/ping-writer';
import { Scrape } from '../support/prometheus';
import { newUser } from '../support/factories';
import { AppNode, PrivateRedis, startAnotherNode } from '../support/socket-client';
import { Api, startTestApp, TestApp } from '../support/test-app';
import { activeTrip, newWorld, TripWorld } from '../support/trips-fixtures';

/** A point on a straight road north from Jaipur, `s` seconds after `t0`, moving about 11 m/s. */
function pt(t0: number, s: number) {
  return { latitude: 26.9 + s * 0.0001, longitude: 75.8, timestamp: new Date(t0 + s * 1000).toISOString() };
}

const PING_ROUTE = { method: 'POST', route: '/api/v1/tracking/ping', status_code: '200' };

/**
 * Metrics are per process and this file's app shares them with nothing else
 * in it, but the tests still compare scrapes taken before and after, never
 * absolute values.
 */
describe('GET /metrics', () => {
  let t: TestApp;
  beforeAll(async () => {
    // A trip-state cache that outlives the test: its hits and misses are then exact.
    t = await startTestApp({ tripStateCacheMs: 60_000, tripStateCacheLiveMs: 60_000 });
  });
  afterAll(() => t.close());

  async function scrape(root: Api = t.root, token?: string): Promise<Scrape> {
    const res = await root.get<string>('/metrics', { token });
    if (res.status !== 200) throw new Error(`scrape: ${res.status} ${JSON.stringify(res.body)}`);
    return Scrape.parse(res.body);
  }

  async function world(): Promise<{ w: TripWorld; trip: { id: string } }> {
    const w = await newWorld(t.api);
    const trip = await activeTrip(t.api, w);
    // Fixes may not be older than the trip: let it have been created two hours ago.
    await t.sql.query(`UPDATE trips SET created_at = now() - interval '2 hours' WHERE id = $1`, [trip.id]);
    return { w, trip };
  }

  it('is raw Prometheus text at the root, outside /api/v1 and the envelope', async () => {
    const res = await t.root.get<string>('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(metricsRegistry.contentType);
    expect(typeof res.body).toBe('string');
    expect(res.body).toMatch(/^# HELP /);
    expect((await t.api.get('/metrics')).status).toBe(404);

    const s = Scrape.parse(res.body);
    for (const [name, type] of [
      ['waybill_http_request_duration_seconds', 'histogram'],
      ['waybill_pings_accepted_total', 'counter'],
      ['waybill_pings_duplicate_total', 'counter'],
      ['waybill_pings_rejected_total', 'counter'],
      ['waybill_ping_flush_rows', 'histogram'],
      ['waybill_ping_flush_requests', 'histogram'],
      ['waybill_ping_flush_duration_seconds', 'histogram'],
      ['waybill_ping_commit_wait_seconds', 'histogram'],
      ['waybill_cache_requests_total', 'counter'],
      ['waybill_db_pool_connections', 'gauge'],
      ['waybill_queue_jobs', 'gauge'],
      ['waybill_ws_connections', 'gauge'],
      ['waybill_realtime_broadcast_latency_seconds', 'histogram'],
      ['waybill_breaker_state', 'gauge'],
      // process metrics
      ['nodejs_eventloop_lag_seconds', 'gauge'],
      ['nodejs_heap_size_used_bytes', 'gauge'],
      ['nodejs_gc_duration_seconds', 'histogram'],
    ])
      expect([name, s.types.get(name)]).toEqual([name, type]);
    // Every reject reason has its series from the start.
    expect(s.labelValues('waybill_pings_rejected_total', 'reason')).toEqual([
      'BEFORE_TRIP_START',
      'FUTURE_TIMESTAMP',
      'INVALID',
      'NULL_ISLAND',
      'OUT_OF_RANGE',
      'SPEED_JUMP',
    ]);
  });

  it('counts accepted, duplicate and rejected pings, flushes and cache lookups by exactly what was posted', async () => {
    const { w, trip } = await world();
    const t0 = Date.now() - 3600_000;
    const ping = (locations: unknown[]) =>
      t.api.post('/tracking/ping', { tripId: trip.id, locations }, { token: w.driver.accessToken });
    const before = await scrape();

    const answers = [
      // 3 stored
      await ping([pt(t0, 0), pt(t0, 5), pt(t0, 10)]),
      // a retry with one more: 1 stored, 3 already stored
      await ping([pt(t0, 0), pt(t0, 5), pt(t0, 10), pt(t0, 15)]),
      // 2 stored, 1 repeated within the batch, 4 rejected
      await ping([
        pt(t0, 20),
        pt(t0, 20),
        { latitude: 95, longitude: 75.8, timestamp: new Date(t0 + 21_000).toISOString() },
        { latitude: 0, longitude: 0, timestamp: new Date(t0 + 22_000).toISOString() },
        { latitude: 26.9, timestamp: new Date(t0 + 23_000).toISOString() },
        { latitude: 27.9, longitude: 75.8, timestamp: new Date(t0 + 25_000).toISOString() }, // 110 km in 5 s
        pt(t0, 30),
      ]),
      // nothing left for the writer
      await ping([{ latitude: 0, longitude: 0, timestamp: new Date(t0 + 40_000).toISOString() }]),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(answers.map((a) => [a.body.data.accepted, a.body.data.duplicates, a.body.data.rejected.length])).toEqual([
      [3, 0, 0],
      [1, 3, 0],
      [2, 1, 4],
      [0, 0, 1],
    ]);
    await t.app.get(PingWriter).drain();
    const latest = await t.api.get(`/tracking/trips/${trip.id}/latest`, { token: w.source.owner.accessToken });
    expect(latest.status).toBe(200);
    const after = await scrape();

    expect(after.delta(before, 'waybill_pings_accepted_total')).toBe(6);
    expect(after.delta(before, 'waybill_pings_duplicate_total')).toBe(4);
    const rejected = Object.fromEntries(
      after
        .labelValues('waybill_pings_rejected_total', 'reason')
        .map((reason) => [reason, after.delta(before, 'waybill_pings_rejected_total', { reason })]),
    );
    expect(rejected).toEqual({
      INVALID: 1,
      OUT_OF_RANGE: 1,
      NULL_ISLAND: 2,
      SPEED_JUMP: 1,
      FUTURE_TIMESTAMP: 0,
      BEFORE_TRIP_START: 0,
    });

    // Requests awaited one by one: one flush each for the three that had rows to write.
    expect(after.delta(before, 'waybill_ping_flush_requests_count')).toBe(3);
    expect(after.delta(before, 'waybill_ping_flush_requests_sum')).toBe(3);
    expect(after.delta(before, 'waybill_ping_flush_rows_count')).toBe(3);
    // Rows in the INSERTs: 3, then 4 (3 of them already stored), then 2 (the repeat removed before the INSERT).
    expect(after.delta(before, 'waybill_ping_flush_rows_sum')).toBe(9);
    expect(after.delta(before, 'waybill_ping_flush_rows_bucket', { le: '2' })).toBe(1);
    expect(after.delta(before, 'waybill_ping_flush_rows_bucket', { le: '5' })).toBe(3);
    expect(after.delta(before, 'waybill_ping_flush_duration_seconds_count')).toBe(3);
    expect(after.delta(before, 'waybill_ping_flush_duration_seconds_sum')).toBeGreaterThan(0);
    expect(after.delta(before, 'waybill_ping_commit_wait_seconds_count')).toBe(3);
    expect(after.value('waybill_ping_flush_failures_total')).toBe(before.value('waybill_ping_flush_failures_total'));

    // The trip's ingest state: read for the first ping (after the status changes dropped it), reused after.
    expect(after.delta(before, 'waybill_cache_requests_total', { cache: 'trip_state', result: 'miss' })).toBe(1);
    expect(after.delta(before, 'waybill_cache_requests_total', { cache: 'trip_state', result: 'hit' })).toBe(3);
    // The latest location was in Redis once the after-flush work was done.
    expect(after.delta(before, 'waybill_cache_requests_total', { cache: 'trip_latest', result: 'hit' })).toBe(1);
    expect(after.delta(before, 'waybill_cache_requests_total', { cache: 'trip_latest', result: 'miss' })).toBe(0);
    expect(after.labelValues('waybill_cache_requests_total', 'cache')).toEqual([
      'access_code',
      'chat_thread',
      'driver',
      'member_roles',
      'org',
      'qr_public',
      'qr_tag',
      'trip_access',
      'trip_detail',
      'trip_latest',
      'trip_state',
    ]);

    // Latency by route pattern: never an id in a label.
    expect(after.delta(before, 'waybill_http_request_duration_seconds_count', PING_ROUTE)).toBe(4);
    expect(
      after.delta(before, 'waybill_http_request_duration_seconds_count', {
        method: 'GET',
        route: '/api/v1/tracking/trips/:tripId/latest',
        status_code: '200',
      }),
    ).toBe(1);
    expect(after.samples.filter((s) => Object.values(s.labels).some((v) => v.includes(trip.id)))).toEqual([]);
  });

  it('labels latency by route pattern, status code and method; requests matching no route as unmatched', async () => {
    const before = await scrape();
    const missingTrip = await t.api.get(`/trips/${randomUUID()}`);
    expect(missingTrip.status).toBe(401);
    const noRoute = await t.api.get(`/no/such/${randomUUID()}`);
    expect(noRoute.status).toBe(404);
    expect((await t.root.get('/health/live')).status).toBe(200);
    expect((await fetch(`${t.url}/health/live`, { method: 'HEAD' })).status).toBe(200);
    const after = await scrape();

    const count = (labels: Record<string, string>) =>
      after.delta(before, 'waybill_http_request_duration_seconds_count', labels);
    expect(count({ method: 'GET', route: '/api/v1/trips/:tripId', status_code: '401' })).toBe(1);
    expect(count({ method: 'GET', route: 'unmatched', status_code: '404' })).toBe(1);
    // Fastify's HEAD twin of a GET route: its own series, each request counted once.
    expect(count({ method: 'GET', route: '/health/live', status_code: '200' })).toBe(1);
    expect(count({ method: 'HEAD', route: '/health/live', status_code: '200' })).toBe(1);
    // The scrape before this one is counted once it is answered.
    expect(count({ method: 'GET', route: '/metrics', status_code: '200' })).toBe(1);
    const routes = after.labelValues('waybill_http_request_duration_seconds_count', 'route');
    expect(routes.filter((r) => r !== 'unmatched' && !r.startsWith('/'))).toEqual([]);
    expect(routes.filter((r) => r.includes('/no/such'))).toEqual([]);

    // Buckets from 1 ms to 5 s.
    const les = after
      .series('waybill_http_request_duration_seconds_bucket', {
        method: 'GET',
        route: '/health/live',
        status_code: '200',
      })
      .map((s) => s.labels.le);
    expect(les).toEqual([
      '0.001',
      '0.0025',
      '0.005',
      '0.01',
      '0.025',
      '0.05',
      '0.1',
      '0.25',
      '0.5',
      '1',
      '2.5',
      '5',
      '+Inf',
    ]);
  });

  it('reports the database pools and the queue depths at scrape time', async () => {
    await newUser(t.api); // a connection in the pool (idle ones close after 10 s)
    const s = await scrape();
    for (const db of ['primary', 'replica'])
      for (const state of ['total', 'idle', 'waiting'])
        expect(s.series('waybill_db_pool_connections', { db, state })).toHaveLength(1);
    // None left waiting between requests.
    expect(s.value('waybill_db_pool_connections', { db: 'primary', state: 'total' })).toBeGreaterThan(0);
    expect(s.value('waybill_db_pool_connections', { db: 'primary', state: 'waiting' })).toBe(0);
    expect(s.value('waybill_db_pool_connections', { db: 'primary', state: 'total' })).toBeLessThanOrEqual(
      t.config.databasePoolMax,
    );

    expect(s.labelValues('waybill_queue_jobs', 'queue')).toEqual(Object.values(QUEUES).sort());
    expect(s.labelValues('waybill_queue_jobs', 'state')).toEqual([
      'active',
      'completed',
      'delayed',
      'failed',
      'paused',
      'waiting',
    ]);
  });

  describe('with METRICS_TOKEN set', () => {
    const token = 'metrics-token-0123456789abcdef';
    let node: AppNode;
    beforeAll(async () => {
      node = await startAnotherNode(t, { metricsToken: token });
    });
    afterAll(() => node.close());

    it('requires it as a bearer token (401 in the envelope otherwise)', async () => {
      const root = new Api(node.url);
      const none = await root.get('/metrics');
      expect(none.status).toBe(401);
      expect(none.body).toMatchObject({ success: false, error: { code: 'UNAUTHENTICATED' } });
      const wrong = await root.get('/metrics', { token: 'metrics-token-0123456789abcdeX' });
      expect(wrong.status).toBe(401);
      expect(wrong.body).toMatchObject({ success: false, error: { code: 'INVALID_TOKEN' } });
      expect(JSON.stringify(wrong.body)).not.toContain(token);
      const basic = await root.get('/metrics', { headers: { authorization: `Basic ${token}` } });
      expect(basic.status).toBe(401);

      const s = await scrape(root, token);
      expect(s.types.get('waybill_pings_accepted_total')).toBe('counter');
      // The node without a token stays open.
      expect((await t.root.get('/metrics')).status).toBe(200);
    });
  });

  describe('when Redis stops answering', () => {
    let redis: PrivateRedis;
    let node: AppNode;
    beforeAll(async () => {
      // A second node on a redis-server of its own, which the test pauses.
      redis = await PrivateRedis.start();
      node = await startAnotherNode(t, { redisUrl: redis.url });
    });
    afterAll(async () => {
      await node?.close();
      await redis?.stop();
    });

    it('still answers at once, leaving out the queue it cannot read and counting the failure', async () => {
      const root = new Api(node.url);
      const up = await scrape(root);
      // Redis takes no command from anyone for 2.5 s (then resumes by itself): the node's queue cannot be read.
      // Pausing rather than stopping the server keeps every client's connection, so closing the node stays quick.
      const admin = new Redis(redis.url);
      await admin.call('CLIENT', 'PAUSE', '2500', 'ALL');
      admin.disconnect();
      const started = Date.now();
      const down = await scrape(root);
      // Not a wait for Redis: at most the 1 s bound on reading a queue, with room for a busy machine.
      expect(Date.now() - started).toBeLessThan(3000);
      // Metrics are per process: both nodes' stats queues were read, now only the first node's is.
      expect(down.delta(up, 'waybill_queue_scrape_failures_total', { queue: 'stats' })).toBe(1);
      expect(down.labelValues('waybill_queue_jobs', 'queue')).toEqual(Object.values(QUEUES).sort());
      expect(down.series('waybill_db_pool_connections', { db: 'primary', state: 'total' })).toHaveLength(1);
    });
  });
});
