import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DemoOptions, runDemo } from '../../src/cli/fleet-demo';
import { startTestApp, TestApp } from '../support/test-app';

/** Polls (no timed assertion): the demo runs until what the test waits for has happened. */
async function waitFor(what: string, check: () => Promise<boolean>, limitMs = 90_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('fleet simulator (npm run demo) against the real app', () => {
  let t: TestApp;
  let dir: string;
  beforeAll(async () => {
    t = await startTestApp();
    dir = mkdtempSync(join(tmpdir(), 'waybill-demo-test-'));
  });
  afterAll(async () => {
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const options = (): DemoOptions => ({
    url: t.url,
    trucks: 3,
    speedup: 1,
    maxImpliedSpeed: 70,
    intervalSec: 1,
    durationSec: 0,
    headStart: 0.7,
    seed: 42,
    stateFile: join(dir, 'sessions.json'),
  });
  const quiet = { write: () => undefined, tty: false };
  const one = async <T = any>(text: string, params: unknown[] = []): Promise<T> =>
    (await t.sql.query(text, params)).rows[0];

  const demoTrips = (statuses: string[]) =>
    t.sql.query<{ id: string; driver_id: string; status: string; pings: number }>(
      `SELECT t.id, t.driver_id, t.status::text, (SELECT count(*)::int FROM trip_pings p WHERE p.trip_id = t.id) AS pings
       FROM trips t JOIN orgs o ON o.id = t.source_org_id
       WHERE o.name = 'Sharma Traders (demo)' AND t.status::text = ANY($1)`,
      [statuses],
    );

  it('sets up two orgs, trucks and drivers, and drives them: pings (REST and OsmAnd), scans, chat', async () => {
    const stop = { requested: false };
    const run = runDemo(options(), quiet, stop);
    try {
      // Every truck on a trip that has pings: the OsmAnd truck (the third) included.
      await waitFor('three demo trips with pings', async () => {
        const trips = await demoTrips(['LOADING', 'IN_TRANSIT', 'ARRIVED']);
        return trips.rowCount === 3 && trips.rows.every((r) => r.pings > 0);
      });
    } finally {
      stop.requested = true;
    }
    const result = await run;
    expect(result.stats.errors).toBe(0);
    expect(result.stats.osmand).toBeGreaterThan(0);
    expect(result.stats.pings).toBeGreaterThan(0);
    expect(result.stats.rejected).toBe(0);
    expect(result.stats.scans).toBeGreaterThanOrEqual(3); // a LOAD scan per truck
    const orgs = await one<{ n: number }>(`SELECT count(*)::int AS n FROM orgs WHERE name LIKE '%(demo)'`);
    expect(orgs.n).toBe(2);
    const fleet = await one<{ trucks: number; drivers: number; tokens: number }>(
      `SELECT (SELECT count(*)::int FROM trucks t JOIN orgs o ON o.id = t.org_id WHERE o.name = 'Sharma Traders (demo)') AS trucks,
              (SELECT count(*)::int FROM driver_profiles d JOIN orgs o ON o.id = d.org_id WHERE o.name = 'Sharma Traders (demo)') AS drivers,
              (SELECT count(*)::int FROM driver_profiles d JOIN orgs o ON o.id = d.org_id
                WHERE o.name = 'Sharma Traders (demo)' AND d.tracker_token_hash IS NOT NULL) AS tokens`,
    );
    expect(fleet).toEqual({ trucks: 3, drivers: 3, tokens: 3 });
    const chat = await one<{ n: number }>(`SELECT count(*)::int AS n FROM chat_messages`);
    expect(chat.n).toBeGreaterThanOrEqual(3);
  }, 120_000);

  it('runs again on the same server: the same orgs, trucks and drivers, no new logins, old trips closed', async () => {
    const families = await one<{ n: number }>(`SELECT count(*)::int AS n FROM refresh_token_families`);
    const users = await one<{ n: number }>(`SELECT count(*)::int AS n FROM users`);
    const before = (await demoTrips(['LOADING', 'IN_TRANSIT', 'ARRIVED', 'PLANNED'])).rows.map((r) => r.id);
    expect(before).toHaveLength(3);
    const stop = { requested: false };
    const run = runDemo(options(), quiet, stop);
    try {
      await waitFor('three new demo trips', async () => {
        const trips = await demoTrips(['PLANNED', 'LOADING', 'IN_TRANSIT', 'ARRIVED']);
        return trips.rowCount === 3 && trips.rows.every((r) => !before.includes(r.id));
      });
    } finally {
      stop.requested = true;
    }
    const result = await run;
    expect(result.stats.errors).toBe(0);
    // The trips the first run left open were cancelled (or completed) by the second.
    const old = await t.sql.query(`SELECT status::text FROM trips WHERE id = ANY($1)`, [before]);
    for (const r of old.rows) expect(['CANCELLED', 'COMPLETED']).toContain(r.status);
    expect((await one<{ n: number }>(`SELECT count(*)::int AS n FROM orgs WHERE name LIKE '%(demo)'`)).n).toBe(2);
    expect(
      (
        await one<{ n: number }>(
          `SELECT count(*)::int AS n FROM trucks t JOIN orgs o ON o.id = t.org_id WHERE o.name = 'Sharma Traders (demo)'`,
        )
      ).n,
    ).toBe(3);
    expect((await one<{ n: number }>(`SELECT count(*)::int AS n FROM users`)).n).toBe(users.n);
    // Sessions were refreshed from the state file: no login or register made a new session family.
    expect((await one<{ n: number }>(`SELECT count(*)::int AS n FROM refresh_token_families`)).n).toBe(families.n);
  }, 120_000);
});
