import { getQueueToken } from '@nestjs/bull';
import type { Queue } from 'bull';
import { QUEUES } from '../../src/infra/queue/queue.module';
import { REFRESH_STATS_JOB, StatsScheduler } from '../../src/modules/stats/stats.processor';
import { newMember, newOrg, newUser, TestOrg } from '../support/factories';
import { startTestApp, TestApp } from '../support/test-app';

describe('org stats', () => {
  let t: TestApp;
  let seller: TestOrg;
  let buyer: TestOrg;
  let queue: Queue;

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
    // A trip between them with two pings today and one yesterday.
    const truck = await t.sql.query(
      `INSERT INTO trucks (id, org_id, number) VALUES (gen_random_uuid(), $1, 'RJ14 1') RETURNING id`,
      [seller.id],
    );
    const u = await newUser(t.api);
    const driver = await t.sql.query(
      `INSERT INTO driver_profiles (id, org_id, user_id) VALUES (gen_random_uuid(), $1, $2) RETURNING id`,
      [seller.id, u.id],
    );
    const trip = await t.sql.query(
      `INSERT INTO trips (id, source_org_id, destination_org_id, truck_id, driver_id, status, start_name, start_lat, start_lng,
                          end_name, end_lat, end_lng, updated_at)
       VALUES (gen_random_uuid(), $1, $2, $3, $4, 'IN_TRANSIT', 'A', 26.9, 75.8, 'B', 28.6, 77.2, now()) RETURNING id`,
      [seller.id, buyer.id, truck.rows[0].id, driver.rows[0].id],
    );
    await t.sql.query(
      `INSERT INTO trip_pings (trip_id, recorded_at, lat, lng) VALUES
         ($1, now() - interval '1 second', 26.9, 75.8), ($1, now(), 26.91, 75.81), ($1, now() - interval '2 days', 26.9, 75.8)`,
      [trip.rows[0].id],
    );
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
    expect(s.body.data.pingsToday).toBeGreaterThanOrEqual(1);
    expect(s.body.data.pingsToday).toBeLessThanOrEqual(2);
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
