import { newOrg, newUser } from '../support/factories';
import { Scrape } from '../support/prometheus';
import { AppNode, PrivateRedis, startAnotherNode } from '../support/socket-client';
import { Api, ApiResponse, startTestApp, TestApp } from '../support/test-app';
import { activeTrip, newWorld, TripWorld } from '../support/trips-fixtures';

const PING_LIMIT = 3;
const READ_LIMIT = 4;
const CODE_LIMIT = 2;

function expectLimited(res: ApiResponse): void {
  expect(res.status).toBe(429);
  expect(res.body).toEqual({
    success: false,
    error: { code: 'RATE_LIMITED', message: expect.any(String), requestId: expect.any(String) },
  });
  const retryAfter = Number(res.headers.get('retry-after'));
  expect(retryAfter).toBeGreaterThan(0);
  expect(retryAfter).toBeLessThanOrEqual(60);
}

describe('rate limits per driver, per user and per code, across two nodes', () => {
  let t: TestApp;
  let other: AppNode;
  let otherApi: Api;
  beforeAll(async () => {
    t = await startTestApp({
      pingRateLimitPerMinute: PING_LIMIT,
      readRateLimitPerMinute: READ_LIMIT,
      authRateLimitPerCodePerMinute: CODE_LIMIT,
      trustProxy: 1,
    });
    other = await startAnotherNode(t);
    otherApi = new Api(`${other.url}/api/v1`);
  });
  afterAll(async () => {
    await other.close();
    await t.close();
  });

  /** Each node in turn: the first node, the other, the first... */
  const nodes = () => [t.api, otherApi];
  const via = (i: number) => nodes()[i % 2];

  async function drivingWorld(): Promise<{ w: TripWorld; tripId: string }> {
    const w = await newWorld(t.api);
    const trip = await activeTrip(t.api, w);
    await t.sql.query(`UPDATE trips SET created_at = now() - interval '2 hours' WHERE id = $1`, [trip.id]);
    return { w, tripId: trip.id };
  }
  let seq = 0;
  const point = () => ({
    latitude: 26.9,
    longitude: 75.8,
    timestamp: new Date(Date.now() - 3_600_000 + ++seq * 1000).toISOString(),
  });
  const ping = (api: Api, w: TripWorld, tripId: string) =>
    api.post('/tracking/ping', { tripId, locations: [point()] }, { token: w.driver.accessToken });
  const osmand = (url: string, w: TripWorld) => {
    const p = point();
    const q = new URLSearchParams({ id: w.trackerToken, lat: '26.9', lon: '75.8', timestamp: p.timestamp });
    return fetch(`${url}/api/v1/tracking/osmand?${q}`, { headers: { 'x-forwarded-for': `127.0.7.${seq}` } }).then(
      async (r) => ({ status: r.status, body: (r.status === 200 ? null : await r.json()) as any, headers: r.headers }),
    );
  };

  it('pings: a driver gets PING_RATE_LIMIT_PER_MINUTE requests over both nodes, then 429; another driver is not affected', async () => {
    const a = await drivingWorld();
    const b = await drivingWorld();
    for (let i = 0; i < PING_LIMIT; i++) expect((await ping(via(i), a.w, a.tripId)).status).toBe(200);
    expectLimited(await ping(t.api, a.w, a.tripId));
    expectLimited(await ping(otherApi, a.w, a.tripId));
    // Nothing of the refused requests was stored.
    const stored = await t.sql.query(`SELECT count(*)::int AS n FROM trip_pings WHERE trip_id = $1`, [a.tripId]);
    expect(stored.rows[0].n).toBe(PING_LIMIT);
    // The same driver's reads are another budget; another driver's pings another key.
    expect((await t.api.get(`/tracking/trips/${a.tripId}/latest`, { token: a.w.driver.accessToken })).status).not.toBe(
      429,
    );
    expect((await ping(t.api, b.w, b.tripId)).status).toBe(200);
  });

  it('pings: the OsmAnd endpoint spends the same driver budget as POST /tracking/ping', async () => {
    const c = await drivingWorld();
    expect((await ping(t.api, c.w, c.tripId)).status).toBe(200);
    for (let i = 1; i < PING_LIMIT; i++) expect((await osmand(i % 2 ? other.url : t.url, c.w)).status).toBe(200);
    const limited = await osmand(t.url, c.w);
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('RATE_LIMITED');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expectLimited(await ping(otherApi, c.w, c.tripId));
  });

  it('reads: a user gets READ_RATE_LIMIT_PER_MINUTE GETs over both nodes, then 429; writes and other users are not counted', async () => {
    const x = await newUser(t.api, 'Reader X');
    const y = await newUser(t.api, 'Reader Y');
    for (let i = 0; i < READ_LIMIT; i++) expect((await via(i).get('/me', { token: x.accessToken })).status).toBe(200);
    expectLimited(await t.api.get('/me', { token: x.accessToken }));
    expectLimited(await otherApi.get('/me', { token: x.accessToken }));
    // A write is not a read.
    expect(
      (await t.api.post('/orgs', { name: 'Verma Logistics', city: 'Pune' }, { token: x.accessToken })).status,
    ).toBe(201);
    expect((await otherApi.get('/me', { token: y.accessToken })).status).toBe(200);

    const scrape = Scrape.parse(String((await t.root.get('/metrics')).body));
    expect(scrape.value('waybill_rate_limited_total', { class: 'read-user' })).toBeGreaterThanOrEqual(2);
    expect(scrape.value('waybill_rate_limited_total', { class: 'ping-driver' })).toBeGreaterThanOrEqual(1);
  });

  it('reads sent at once (one Redis call for the batch) still stop at exactly the limit', async () => {
    const z = await newUser(t.api, 'Reader Z');
    const statuses = await Promise.all(
      Array.from({ length: 3 * READ_LIMIT }, (_, i) =>
        via(i)
          .get('/me', { token: z.accessToken })
          .then((r) => r.status),
      ),
    );
    expect(statuses.filter((s) => s === 200)).toHaveLength(READ_LIMIT);
    expect(statuses.filter((s) => s === 429)).toHaveLength(2 * READ_LIMIT);
  });

  it('code logins: limited per code whatever the address, and per address as logins are', async () => {
    const owner = await newOrg(t.api);
    const res = await t.api.post(
      `/orgs/${owner.id}/access-codes`,
      { label: 'Gate crew', role: 'STAFF', maxSessions: 5 },
      { token: owner.owner.accessToken },
    );
    expect(res.status).toBe(201);
    const code = res.body.data.code as string;
    const from = (address: string) => ({ headers: { 'x-forwarded-for': address } });
    const login = (api: Api, c: string, address: string) =>
      api.post('/auth/code-login', { code: c, name: 'Ramesh' }, from(address));
    expect((await login(t.api, code, '10.9.0.1')).status).toBe(201);
    expect((await login(otherApi, code, '10.9.0.2')).status).toBe(201);
    expectLimited(await login(t.api, code, '10.9.0.3'));
    // Another code from the same addresses is its own budget (unknown: 401, not 429).
    expect((await login(otherApi, 'BBBBBBBBBBBBBBBBBBBBBB', '10.9.0.3')).status).toBe(401);
  });
});

describe('rate limits with Redis down', () => {
  let redis: PrivateRedis;
  let t: TestApp;
  beforeAll(async () => {
    redis = await PrivateRedis.start();
    t = await startTestApp({ redisUrl: redis.url, readRateLimitPerMinute: READ_LIMIT });
  });
  afterAll(async () => {
    await t.close();
    await redis.stop();
  });

  it('count in the node’s memory: the same limit, never a 5xx', async () => {
    const x = await newUser(t.api, 'Reader X');
    expect((await t.api.get('/me', { token: x.accessToken })).status).toBe(200);
    await redis.stop();
    const statuses: number[] = [];
    for (let i = 0; i < READ_LIMIT + 2; i++) statuses.push((await t.api.get('/me', { token: x.accessToken })).status);
    // The first hit went to Redis; the node's own count takes over from there (per node, at most the limit).
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    expect(statuses.slice(0, READ_LIMIT)).toEqual(Array(READ_LIMIT).fill(200));
    expect(statuses.slice(READ_LIMIT)).toEqual([429, 429]);
  });
});
