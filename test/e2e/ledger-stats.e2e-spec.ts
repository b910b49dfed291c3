import { getQueueToken } from '@nestjs/bull';
import type { Queue } from 'bull';
import { QUEUES } from '../../src/infra/queue/queue.module';
import { REFRESH_STATS_JOB, StatsScheduler } from '../../src/modules/stats/stats.processor';
import { PingWriter } from '../../src/modules/tracking/ping-writer';
import { newMember, newOrg, newUser, TestOrg } from '../support/factories';
import { startTestApp, TestApp } from '../support/test-app';
import { activeTrip, newWorld, TripWorld } from '../support/trips-fixtures';

describe('org stats', () => {
  let t: TestApp;
  let seller: TestOrg;
  let buyer: TestOrg;
  let queue: Queue;

  let world: TripWorld;
  let trip: { id: string };
  let posted: { latitude: number; longitude: number; timestamp: string }[];

  /** A fix `i` steps along a road north from Jaipur (about 11 m a step), at `ms`. */
  const point = (ms: number, i: number) => ({
    latitude: 26.9 + i * 0.0001,
    longitude: 75.8,
    timestamp: new Date(ms).toISOString(),
  });
  const ping = (locations: unknown[]) =>
    t.api.post('/tracking/ping', { tripId: trip.id, locations }, { token: world.driver.accessToken });
  /** How many of these fixes fall on today's UTC date. */
  const today = (fixes: { timestamp: string }[]) =>
    fixes.filter((f) => f.timestamp.slice(0, 10) === new Date().toISOString().slice(0, 10)).length;

  const refreshed = async () => {
    // The repeatable job's worker runs the refresh; wait for this run to finish.
    const job = await queue.add(REFRESH_STATS_JOB, {});
    await job.finished();
  };

  beforeAll(async () => {
    t = await startTestApp();
    queue = t.app.get<Queue>(getQueueToken(QUEUES.stats));
    seller = await newOrg(t.api);
    buyer = await newOrg(t.api);
    const acc = await t.api.post(
      `/orgs/${seller.id}/accounts`,
      { counterpartyOrgId: buyer.id },
      { token: seller.owner.accessToken },
    );
    await t.api.post(
      `/ledger/accounts/${acc.body.data.id}/invoices`,
      { number: 'S-1', amount: 12_345 },
      { token: seller.owner.accessToken },
    );
    // A trip between them, started three days ago, with two points today and one two days ago,
    // posted by its driver like any ping.
    world = await newWorld(t.api, { source: seller, destination: buyer });
    trip = await activeTrip(t.api, world);
    await t.sql.query(`UPDATE trips SET created_at = now() - interval '3 days' WHERE id = $1`, [trip.id]);
    const now = Date.now();
    posted = [point(now - 2 * 86_400_000, 0), point(now - 2000, 1), point(now - 1000, 2)];
    expect((await ping(posted)).body.data).toMatchObject({ accepted: 3 });
    await t.app.get(PingWriter).drain();
  });
  afterAll(() => t.close());

  it('serves trips by status, pings today and receivables/payables, with the figures age', async () => {
    await refreshed();
    const s = await t.api.get(`/orgs/${seller.id}/stats`, { token: seller.owner.accessToken });
    expect(s.status).toBe(200);
    expect(s.body.data).toMatchObject({
      orgId: seller.id,
      tripsByStatus: { IN_TRANSIT: 1 },
      pingsToday: expect.any(Number),
      receivables: { INR: 12_345 },
      payables: { INR: 0 },
    });
    expect(s.body.data.pingsToday).toBe(today(posted));
    expect(typeof s.body.data.refreshedAt).toBe('string');
    expect(s.body.data.ageSeconds).toBeGreaterThanOrEqual(0);
    const b = await t.api.get(`/orgs/${buyer.id}/stats`, { token: buyer.owner.accessToken });
    expect(b.body.data).toMatchObject({
      tripsByStatus: { IN_TRANSIT: 1 },
      receivables: { INR: 0 },
      payables: { INR: 12_345 },
    });
  });

  it('is a snapshot: new postings show after the next refresh', async () => {
    const acc = await t.api.get(`/orgs/${seller.id}/accounts`, { token: seller.owner.accessToken });
    const before = (await t.api.get(`/orgs/${seller.id}/stats`, { token: seller.owner.accessToken })).body.data;
    await t.api.post(
      `/ledger/accounts/${acc.body.data[0].id}/payments`,
      { amount: 345, method: 'UPI' },
      { token: seller.owner.accessToken },
    );
    const stale = (await t.api.get(`/orgs/${seller.id}/stats`, { token: seller.owner.accessToken })).body.data;
    expect(stale.receivables).toEqual(before.receivables);
    await refreshed();
    const fresh = (await t.api.get(`/orgs/${seller.id}/stats`, { token: seller.owner.accessToken })).body.data;
    expect(fresh.receivables).toEqual({ INR: 12_000 });
    expect(new Date(fresh.refreshedAt) >= new Date(before.refreshedAt)).toBe(true);
  });

  it('counts each stored point once, on its UTC day: retried points and other days are not counted today', async () => {
    const before = (await t.api.get(`/orgs/${seller.id}/stats`, { token: seller.owner.accessToken })).body.data;
    const more = [point(Date.now() - 500, 3)];
    // The retried batch's three points are duplicates: stored once, counted once.
    const res = await ping([...posted, ...more]);
    expect(res.body.data).toMatchObject({ accepted: 1, duplicates: 3 });
    await t.app.get(PingWriter).drain();
    await refreshed();
    const after = (await t.api.get(`/orgs/${seller.id}/stats`, { token: seller.owner.accessToken })).body.data;
    expect(after.pingsToday).toBe(today([...posted, ...more]));
    expect(after.pingsToday).toBe(before.pingsToday + today(more));
    // The buyer's side of the same trip counts the same points.
    const b = (await t.api.get(`/orgs/${buyer.id}/stats`, { token: buyer.owner.accessToken })).body.data;
    expect(b.pingsToday).toBe(after.pingsToday);
    const days = await t.sql.query(
      `SELECT to_char(day, 'YYYY-MM-DD') AS day, pings::int AS pings FROM trip_daily_pings WHERE trip_id = $1 ORDER BY day`,
      [trip.id],
    );
    const expected = new Map<string, number>();
    for (const f of [...posted, ...more])
      expected.set(f.timestamp.slice(0, 10), (expected.get(f.timestamp.slice(0, 10)) ?? 0) + 1);
    expect(days.rows).toEqual([...expected].sort().map(([day, pings]) => ({ day, pings })));
  });

  it('the refresh is scheduled as a repeatable job', async () => {
    await t.app.get(StatsScheduler).scheduled;
    const repeatable = await queue.getRepeatableJobs();
    expect(repeatable).toEqual([expect.objectContaining({ name: REFRESH_STATS_JOB, every: t.config.statsRefreshMs })]);
  });

  it('any member sees trip figures; money only for ledger roles; non-members 404', async () => {
    const staff = await newMember(t.api, seller, 'STAFF');
    const s = await t.api.get(`/orgs/${seller.id}/stats`, { token: staff.accessToken });
    expect(s.status).toBe(200);
    expect(s.body.data).toMatchObject({ tripsByStatus: { IN_TRANSIT: 1 }, receivables: null, payables: null });
    const stranger = await newUser(t.api);
    expect((await t.api.get(`/orgs/${seller.id}/stats`, { token: stranger.accessToken })).status).toBe(404);
    const fresh = await newOrg(t.api);
    const empty = await t.api.get(`/orgs/${fresh.id}/stats`, { token: fresh.owner.accessToken });
    expect(empty.body.data).toMatchObject({ tripsByStatus: {}, pingsToday: 0, receivables: {}, payables: {} });
  });
});
