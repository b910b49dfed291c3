import { Client } from 'pg';
import { newOrg, newUser, TestOrg } from '../support/factories';
import { until } from '../support/net';
import { Scrape } from '../support/prometheus';
import { ReplicaCluster } from '../support/replica-cluster';
import { startAnotherNode } from '../support/socket-client';
import { Api, startTestApp, TestApp } from '../support/test-app';

jest.setTimeout(120_000);

/**
 * Reads with the replica stopped, restarted and lagging: a primary and a
 * streaming replica of this file's own (ReplicaCluster), the app on both.
 */
describe('reads survive the replica', () => {
  let cluster: ReplicaCluster;
  let t: TestApp;
  let org: TestOrg;

  beforeAll(async () => {
    cluster = await ReplicaCluster.start();
    t = await startTestApp({
      databaseUrl: cluster.primaryUrl,
      databaseReplicaUrl: cluster.replicaUrl,
      // No read-your-writes window: reads go to the replica whenever it is usable.
      readYourWritesMs: 0,
      replicaLagPollMs: 100,
      replicaMaxLagMs: 1000,
      replicaBreakerTimeoutMs: 2000,
      replicaBreakerResetMs: 1000,
    });
    org = await newOrg(t.api, await newUser(t.api));
    await cluster.waitForReplay();
  });
  afterAll(async () => {
    await t?.close();
    await cluster?.teardown();
  });

  const replicaState = async () =>
    Scrape.parse((await t.root.get('/metrics')).body).value('waybill_breaker_state', { breaker: 'replica' });
  /**
   * Scans of `trucks` on the replica: grow only when the app reads trucks there. The truck list is
   * read from the replica and never cached (the org itself is served from the cache).
   */
  const truckScansOnReplica = async () => {
    const [row] = await cluster.replica.query<{ n: string }>(
      cluster.database,
      `SELECT (coalesce(idx_scan, 0) + coalesce(seq_scan, 0))::text AS n FROM pg_stat_user_tables WHERE relname = 'trucks'`,
    );
    return Number(row.n);
  };
  const readOrg = () => t.api.get(`/orgs/${org.id}`, { token: org.owner.accessToken });
  const readTrucks = () => t.api.get(`/orgs/${org.id}/trucks`, { token: org.owner.accessToken });

  /** Reads the trucks until one of the reads shows up in the replica's statistics (flushed about once a second). */
  async function expectReadsOnReplica(): Promise<void> {
    const before = await truckScansOnReplica();
    await until(
      'a truck list read served by the replica',
      async () => {
        expect((await readTrucks()).status).toBe(200);
        return (await truckScansOnReplica()) > before;
      },
      20_000,
    );
  }

  it('with the replica stopped reads answer from the primary, /health/ready names the replica, and it recovers by itself', async () => {
    expect((await readOrg()).status).toBe(200);
    await expectReadsOnReplica();

    await cluster.replica.stop();
    for (let i = 0; i < 5; i++) {
      const res = await readOrg();
      expect(res.status).toBe(200);
      expect(res.body.data.id).toBe(org.id);
      expect((await readTrucks()).status).toBe(200);
    }
    // Other reads too: a list, and the signed-in user.
    expect((await t.api.get(`/orgs/${org.id}/members`, { token: org.owner.accessToken })).status).toBe(200);
    expect((await t.api.get('/me', { token: org.owner.accessToken })).status).toBe(200);
    await until('the replica breaker to open', async () => (await replicaState()) === 2, 10_000);
    expect((await readOrg()).status).toBe(200);
    expect((await readTrucks()).status).toBe(200);

    const ready = await t.root.get('/health/ready');
    expect(ready.status).toBe(503);
    expect(ready.body.error.message).toContain('replica');
    expect(ready.body.error.details).toEqual(
      expect.arrayContaining([
        { path: 'replica', message: 'down' },
        { path: 'primary', message: 'up' },
      ]),
    );

    await cluster.replica.start();
    await cluster.waitForStreaming();
    await until('the replica breaker to close again', async () => (await replicaState()) === 0, 20_000);
    await expectReadsOnReplica();
    expect((await t.root.get('/health/ready')).status).toBe(200);
  });

  it('while the replica lags more than REPLICA_MAX_LAG_MS, reads go to the primary and see the latest writes', async () => {
    await cluster.pauseReplay();
    try {
      const number = `RJ14 LAG ${Date.now()}`;
      const created = await t.api.post(`/orgs/${org.id}/trucks`, { number }, { token: org.owner.accessToken });
      expect(created.status).toBe(201);
      // The replica has not replayed the insert.
      const onReplica = await cluster.replica.query(cluster.database, 'SELECT 1 FROM trucks WHERE id = $1', [
        created.body.data.id,
      ]);
      expect(onReplica).toHaveLength(0);

      // Once the lag poller sees the replica more than a second behind, the list is read from the primary.
      const listed = async () =>
        ((await readTrucks()).body.data as { number: string }[]).some((truck) => truck.number === number);
      await until('the new truck in the list', listed, 20_000);
      for (let i = 0; i < 3; i++) expect(await listed()).toBe(true);
    } finally {
      await cluster.resumeReplay();
    }
    await cluster.waitForReplay();
    await expectReadsOnReplica();
  });

  it('a user who has just registered reads their own account at once, the replica behind', async () => {
    // A node with the default read-your-writes window (this file's first node has none).
    const node = await startAnotherNode(t, { readYourWritesMs: 5000 });
    const pinning = new Api(`${node.url}/api/v1`);
    await cluster.waitForReplay();
    await expectReadsOnReplica();
    await cluster.pauseReplay();
    try {
      const user = await newUser(pinning, 'Fresh Driver');
      const me = await pinning.get('/me', { token: user.accessToken });
      expect(me.status).toBe(200);
      expect(me.body.data.user.id).toBe(user.id);
      // The replica has not replayed the registration: the read was the primary's.
      expect(await cluster.replica.query(cluster.database, 'SELECT 1 FROM users WHERE id = $1', [user.id])).toHaveLength(
        0,
      );
    } finally {
      await cluster.resumeReplay();
      await node.close();
    }
    await cluster.waitForReplay();
  });

  it('waitForReplay covers a commit acknowledged before the primary wrote its WAL (synchronous_commit off)', async () => {
    // The WAL writer writes an asynchronous commit out at its next round: rounds 2 s apart leave the
    // commit inserted but not yet written when the wait starts.
    await cluster.primary.query('postgres', `ALTER SYSTEM SET wal_writer_delay = '2s'`);
    await cluster.primary.query('postgres', 'SELECT pg_reload_conf()');
    const client = new Client({ connectionString: cluster.primaryUrl });
    await client.connect();
    try {
      await client.query(`SET synchronous_commit = off`);
      const renamed = `Async ${Date.now()}`;
      await client.query('UPDATE orgs SET name = $2 WHERE id = $1', [org.id, renamed]);
      await cluster.waitForReplay();
      const [onReplica] = await cluster.replica.query<{ name: string }>(
        cluster.database,
        'SELECT name FROM orgs WHERE id = $1',
        [org.id],
      );
      expect(onReplica?.name).toBe(renamed);
    } finally {
      await client.end();
      await cluster.primary.query('postgres', 'ALTER SYSTEM RESET wal_writer_delay');
      await cluster.primary.query('postgres', 'SELECT pg_reload_conf()');
    }
  });
});
