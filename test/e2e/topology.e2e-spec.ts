import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { AppConfig, loadConfig } from '../../src/infra/config/config';
import { tripRoom } from '../../src/infra/realtime/realtime-publisher';
import { baseConfig } from '../support/env';
import { newOrg, newUser, TestOrg } from '../support/factories';
import { until } from '../support/net';
import { PgBouncer } from '../support/pgbouncer';
import { ReplicaCluster } from '../support/replica-cluster';
import { AppNode, connectWatcher, startAnotherNode, Watcher } from '../support/socket-client';
import { Api } from '../support/test-app';
import { activeTrip, newWorld, TripWorld } from '../support/trips-fixtures';

jest.setTimeout(120_000);

/** Connections each app node's primary pool may open (DATABASE_POOL_MAX); the budget is in docs/deployment.md. */
const APP_POOL = 3;
const NODES = 2;
/** PgBouncer's server connections to the primary: every node's pool fits, so no node waits on another's. */
const BOUNCER_POOL = APP_POOL * NODES;
/** PgBouncer's query_timeout in this file (seconds). */
const QUERY_TIMEOUT_S = 3;

/**
 * The production topology on one machine, without containers: a primary and a
 * streaming replica (ReplicaCluster), PgBouncer in transaction mode in front of
 * the primary, and two app nodes sharing Redis. The nodes dial PgBouncer with
 * `?pgbouncer=true` (as docker-compose.yml does) and read from the replica.
 */
describe('topology: PgBouncer (transaction mode), primary + replica, two app nodes', () => {
  let cluster: ReplicaCluster;
  let bouncer: PgBouncer;
  let config: AppConfig;
  const nodes: AppNode[] = [];
  let api1: Api;
  let api2: Api;
  const watchers: Watcher[] = [];

  beforeAll(async () => {
    // The primary is migrated directly (never through PgBouncer), before the replica is cloned from it.
    cluster = await ReplicaCluster.start();
    bouncer = await PgBouncer.start({
      host: cluster.primary.host,
      port: cluster.primary.port,
      database: cluster.database,
      poolSize: BOUNCER_POOL,
      // The app sends no statement_timeout through a transaction pooler: PgBouncer's query_timeout stands in.
      queryTimeoutS: QUERY_TIMEOUT_S,
    });
    // The settings as a deployment gives them: environment variables through loadConfig.
    const env = loadConfig({
      ...process.env,
      NODE_ENV: 'test',
      DATABASE_URL: bouncer.url,
      DATABASE_REPLICA_URL: cluster.replicaUrl,
      DATABASE_POOL_MAX: String(APP_POOL),
      EXPORT_POOL_MAX: '1',
    });
    config = {
      ...baseConfig,
      env: 'test',
      port: 0,
      host: '127.0.0.1',
      databaseUrl: env.databaseUrl,
      databaseReplicaUrl: env.databaseReplicaUrl,
      databasePoolMax: env.databasePoolMax,
      databasePreparedStatements: env.databasePreparedStatements,
      databaseTransactionPooler: env.databaseTransactionPooler,
      exportPoolMax: env.exportPoolMax,
      redisKeyPrefix: `test:${randomBytes(6).toString('hex')}:`,
      logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
      authRateLimitPerMinute: 100_000,
      authRateLimitPerPhonePerMinute: 100_000,
      // Reads go to the replica as soon as it has replayed (no read-your-writes window) in this file.
      readYourWritesMs: 0,
      replicaLagPollMs: 100,
    };
    for (let i = 0; i < NODES; i++) nodes.push(await startAnotherNode({ config }));
    api1 = new Api(`${nodes[0].url}/api/v1`);
    api2 = new Api(`${nodes[1].url}/api/v1`);
  });

  afterAll(async () => {
    for (const w of watchers) w.close();
    for (const n of nodes) await n.close().catch(() => undefined);
    await bouncer?.stop();
    await cluster?.teardown();
  });

  it('reads ?pgbouncer=true: the flag is off the URL, named statements are off, and the nodes are ready', async () => {
    expect(config.databaseTransactionPooler).toBe(true);
    expect(config.databasePreparedStatements).toBe(false);
    expect(config.databaseUrl).not.toContain('pgbouncer=');
    expect(new URL(config.databaseUrl).port).toBe(String(bouncer.port));
    for (const n of nodes) {
      const ready = await new Api(n.url).get('/health/ready');
      expect(ready.status).toBe(200);
    }
    // A statement longer than PgBouncer's query_timeout is cut off, as statement_timeout would.
    const c = new Client({ connectionString: config.databaseUrl });
    c.on('error', () => undefined);
    await c.connect();
    try {
      await expect(c.query(`SELECT pg_sleep(${QUERY_TIMEOUT_S * 3})`)).rejects.toThrow(/query.timeout/);
    } finally {
      await c.end().catch(() => undefined);
    }
    // PgBouncer dropped that server connection, but its backend sleeps on until PostgreSQL next writes to the
    // client: ended here, so that the connection budget below counts only connections PgBouncer holds.
    await cluster.primary.query(
      'postgres',
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'SELECT pg_sleep(%'`,
      [cluster.database],
    );
  });

  let owner: TestOrg;
  let w: TripWorld;
  let tripId: string;

  it('register and login on one node, the session works on the other', async () => {
    const user = await newUser(api1);
    const login = await api2.post('/auth/login', { phone: user.phone, password: user.password });
    expect(login.status).toBe(200);
    // This file's nodes have no read-your-writes window: /me reads the replica once it has the new account.
    await cluster.waitForReplay();
    const me = await api1.get('/me', { token: login.body.data.accessToken });
    expect(me.status).toBe(200);
    expect(me.body.data.user.id).toBe(user.id);
    owner = await newOrg(api2, user);
    expect(owner.id).toBeTruthy();
  });

  it('a trip created and started on node 1; pings posted on both nodes reach a watcher on node 2', async () => {
    w = await newWorld(api1);
    const trip = await activeTrip(api1, w);
    tripId = trip.id;
    // Fixes may not be older than the trip: let it have been created an hour ago.
    await cluster.primary.query(
      cluster.database,
      `UPDATE trips SET created_at = now() - interval '1 hour' WHERE id = $1`,
      [tripId],
    );

    const watcher = await connectWatcher(nodes[1].url, w.source.owner.accessToken);
    watchers.push(watcher);
    expect(await watcher.request('subscribe', { room: tripRoom(tripId) })).toEqual({ ok: true });

    // Many small batches at once from both nodes: each transaction may land on any of PgBouncer's server
    // connections, which a named (prepared) statement would not survive.
    const t0 = Date.now() - 60_000;
    const point = (s: number) => ({
      latitude: 26.9 + s * 0.0001,
      longitude: 75.8,
      timestamp: new Date(t0 + s * 1000).toISOString(),
    });
    const results = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        (i % 2 ? api2 : api1).post(
          '/tracking/ping',
          { tripId, locations: [point(i)] },
          { token: w.driver.accessToken },
        ),
      ),
    );
    for (const r of results) expect(r.status).toBe(200);
    expect(results.reduce((n, r) => n + (r.body.data.accepted as number), 0)).toBe(24);

    // One more point posted on node 1 only: its trip.location reaches the watcher on node 2 through Redis.
    const last = point(30);
    const only1 = await api1.post('/tracking/ping', { tripId, locations: [last] }, { token: w.driver.accessToken });
    expect(only1.status).toBe(200);
    expect(only1.body.data.accepted).toBe(1);
    const lastAt = new Date(last.timestamp).getTime();
    await watcher.waitFor(
      (x) =>
        x
          .inRoom(tripRoom(tripId), 'trip.location')
          .some((e) => (e.points as { recordedAt: string }[]).some((p) => new Date(p.recordedAt).getTime() === lastAt)),
      'the trip.location of the point posted on node 1, on node 2',
    );
    const [row] = await cluster.primary.query<{ n: number }>(
      cluster.database,
      'SELECT count(*)::int AS n FROM trip_pings WHERE trip_id = $1',
      [tripId],
    );
    expect(row.n).toBe(25);
  });

  it('ledger posting through PgBouncer: an invoice on node 2, the balance read on node 1', async () => {
    const acct = await api1.post(
      `/orgs/${w.source.id}/accounts`,
      { counterpartyOrgId: w.destination.id },
      { token: w.source.owner.accessToken },
    );
    expect(acct.status).toBe(201);
    const accountId = acct.body.data.id as string;
    const inv = await api2.post(
      `/ledger/accounts/${accountId}/invoices`,
      { number: 'TOPO-1', amount: 125_000, tripId },
      { token: w.source.owner.accessToken },
    );
    expect(inv.status).toBe(201);
    expect(inv.body.data.entries).toHaveLength(2);
    await cluster.waitForReplay();
    const view = await api1.get(`/ledger/accounts/${accountId}`, { token: w.destination.owner.accessToken });
    expect(view.status).toBe(200);
    expect(view.body.data).toMatchObject({ balance: -125_000, entryCount: 1 });
  });

  it('reads are served by the replica', async () => {
    await cluster.waitForReplay();
    const scans = async () => {
      const [row] = await cluster.replica.query<{ n: string }>(
        cluster.database,
        `SELECT (coalesce(idx_scan, 0) + coalesce(seq_scan, 0))::text AS n FROM pg_stat_user_tables WHERE relname = 'trucks'`,
      );
      return Number(row.n);
    };
    const before = await scans();
    // The replica's statistics are flushed about once a second: read until a scan shows up there. The truck
    // list is read from the replica and never cached (the org itself comes from the cache).
    await until(
      'a truck list read served by the replica',
      async () => {
        const res = await api1.get(`/orgs/${owner.id}/trucks`, { token: owner.owner.accessToken });
        expect(res.status).toBe(200);
        return (await scans()) > before;
      },
      20_000,
    );
  });

  it('stays within the connection budget: the primary sees at most PgBouncer pool connections from the app', async () => {
    const rows = await cluster.primary.query<{ n: number }>(
      'postgres',
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'waybill'`,
      [cluster.database],
    );
    expect(rows[0].n).toBeGreaterThan(0);
    expect(rows[0].n).toBeLessThanOrEqual(BOUNCER_POOL);
  });
});
