import { newOrg, newUser, TestOrg, TestUser } from '../support/factories';
import { until } from '../support/net';
import { Scrape } from '../support/prometheus';
import { ReplicaCluster } from '../support/replica-cluster';
import { activeTrip, newWorld } from '../support/trips-fixtures';
import { PrivateRedis } from '../support/socket-client';
import { Api, startTestApp, TestApp } from '../support/test-app';

jest.setTimeout(120_000);

const breakerState = async (root: Api, breaker: string) =>
  Scrape.parse((await root.get('/metrics')).body).value('waybill_breaker_state', { breaker });

describe('Redis down', () => {
  let redis: PrivateRedis;
  let t: TestApp;

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    t = await startTestApp({ redisUrl: redis.url, redisBreakerResetMs: 1000, redisBreakerTimeoutMs: 300 });
  });
  afterAll(async () => {
    await redis?.start().catch(() => undefined); // closing is quicker with Redis up
    await t?.close();
    await redis?.stop();
  });

  it('authenticated requests answer through the open breaker; logout is a 503 to retry, never a 500', async () => {
    const user: TestUser = await newUser(t.api);
    const org: TestOrg = await newOrg(t.api, user);
    expect(await breakerState(t.root, 'redis')).toBe(0);

    await redis.stop();
    // Each request checks the session's revocation and its read-your-writes pin in Redis: both fall back.
    for (let i = 0; i < 10; i++) {
      expect((await t.api.get('/me', { token: user.accessToken })).status).toBe(200);
      expect((await t.api.get(`/orgs/${org.id}`, { token: user.accessToken })).status).toBe(200);
    }
    // Open (2), or half-open (1) for the one trial call after each reset: never closed while Redis is down.
    expect(await breakerState(t.root, 'redis')).toBeGreaterThan(0);

    // The session is revoked in the database first; announcing it needs Redis.
    const logout = await t.api.post('/auth/logout', { refreshToken: user.refreshToken });
    expect(logout.status).toBe(503);
    expect(logout.body).toMatchObject({ success: false, error: { code: 'DEPENDENCY_UNAVAILABLE' } });
    expect(typeof logout.body.error.requestId).toBe('string');
    // It has ended all the same: the refresh token is refused, and so is the access token on this node.
    expect((await t.api.post('/auth/refresh', { refreshToken: user.refreshToken })).status).toBe(401);
    expect((await t.api.get('/me', { token: user.accessToken })).status).toBe(401);

    await redis.start();
    const other = await newUser(t.api);
    await until(
      'the Redis breaker to close again',
      async () => {
        await t.api.get('/me', { token: other.accessToken });
        return (await breakerState(t.root, 'redis')) === 0;
      },
      20_000,
    );
    // The retried logout stores and announces the revocation.
    expect((await t.api.post('/auth/logout', { refreshToken: user.refreshToken })).status).toBe(204);
  });

  it("a trip's latest location is read from the trip row through the open breaker, never after a Redis timeout each", async () => {
    const w = await newWorld(t.api);
    const trip = await activeTrip(t.api, w);
    const at = new Date().toISOString();
    const ping = await t.api.post(
      '/tracking/ping',
      { tripId: trip.id, locations: [{ latitude: 26.95, longitude: 75.8, timestamp: at }] },
      { token: w.driver.accessToken },
    );
    expect(ping.body.data).toMatchObject({ accepted: 1 });
    const latest = () => t.api.get(`/tracking/trips/${trip.id}/latest`, { token: w.source.owner.accessToken });
    await until('the point counted on the trip row', async () => (await latest()).body.data?.recordedAt === at, 10_000);

    await redis.stop();
    try {
      // Thirty reads: each waiting the Redis command timeout would outlast the test's own limit.
      for (let i = 0; i < 30; i++) {
        const res = await latest();
        expect(res.status).toBe(200);
        expect(res.body.data).toMatchObject({ lat: 26.95, lng: 75.8, recordedAt: at });
      }
    } finally {
      await redis.start();
    }
  }, 30_000);
});

describe('database down', () => {
  let cluster: ReplicaCluster;
  let t: TestApp;

  beforeAll(async () => {
    cluster = await ReplicaCluster.start();
    t = await startTestApp({ databaseUrl: cluster.primaryUrl, databaseReplicaUrl: cluster.replicaUrl });
  });
  afterAll(async () => {
    await t?.close();
    await cluster?.teardown();
  });

  it('reads and writes answer 503 DEPENDENCY_UNAVAILABLE in the envelope, and work again once it is back', async () => {
    const org = await newOrg(t.api);
    const token = org.owner.accessToken;
    expect((await t.api.get(`/orgs/${org.id}`, { token })).status).toBe(200);

    await cluster.replica.stop();
    await cluster.primary.stop();
    // The org and the caller's role were cached by the read above: nothing can change them while the database
    // is down, so that read still answers, from the cache.
    const cached = await t.api.get(`/orgs/${org.id}`, { token });
    expect(cached.status).toBe(200);
    expect(cached.body.data).toMatchObject({ id: org.id, name: org.name });
    const responses = [
      await t.api.get(`/orgs/${org.id}/members`, { token }),
      await t.api.get('/me', { token }),
      await t.api.post('/orgs', { name: 'Down Traders', city: 'Jaipur' }, { token }),
      await t.api.patch(`/orgs/${org.id}`, { name: 'Renamed' }, { token }),
    ];
    for (const res of responses) {
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({
        success: false,
        error: { code: 'DEPENDENCY_UNAVAILABLE', message: expect.any(String), requestId: expect.any(String) },
      });
      expect(JSON.stringify(res.body)).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|prisma/i);
    }
    const ready = await t.root.get('/health/ready');
    expect(ready.status).toBe(503);
    expect(ready.body.error.message).toMatch(/primary.*replica|replica.*primary/);

    await cluster.primary.start();
    await cluster.replica.start();
    expect((await t.api.get(`/orgs/${org.id}`, { token })).status).toBe(200);
  });
});
