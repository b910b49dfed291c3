import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Client } from 'pg';
import { driversPerOrg, ownerPhone, seedBulk } from '../../src/cli/seed-bulk';
import { PasswordHasher } from '../../src/modules/auth/password-hasher';
import { baseConfig } from '../support/env';
import { createTestDatabase, dropTestDatabase } from '../support/test-app';

const ROOT = join(__dirname, '..', '..');

/** `npm run db:seed -- <args>` without npm: the same script, on this file's database. */
function runSeedCli(databaseUrl: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', join(ROOT, 'src', 'cli', 'seed.cli.ts'), ...args],
      { cwd: ROOT, env: { ...process.env, DATABASE_URL: databaseUrl, TS_NODE_PROJECT: join(ROOT, 'tsconfig.json') } },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, out }));
  });
}

describe('data generator (npm run db:seed -- --orgs --trips --pings)', () => {
  let url: string;
  let sql: Client;
  const sizes = { orgs: 3, trips: 20, pings: 500 };

  beforeAll(async () => {
    url = await createTestDatabase();
    sql = new Client({ connectionString: url });
    await sql.connect();
  });
  afterAll(async () => {
    await sql?.end();
    if (url) await dropTestDatabase(url);
  });

  const counts = async () =>
    (
      await sql.query(`SELECT
        (SELECT count(*) FROM orgs)::int AS orgs, (SELECT count(*) FROM users)::int AS users,
        (SELECT count(*) FROM memberships)::int AS memberships, (SELECT count(*) FROM driver_profiles)::int AS drivers,
        (SELECT count(*) FROM trucks)::int AS trucks, (SELECT count(*) FROM trips)::int AS trips,
        (SELECT count(*) FROM trip_pings)::int AS pings, (SELECT count(*) FROM ledger_accounts)::int AS accounts,
        (SELECT count(*) FROM invoices)::int AS invoices, (SELECT count(*) FROM payments)::int AS payments,
        (SELECT count(*) FROM ledger_postings)::int AS postings, (SELECT count(*) FROM ledger_entries)::int AS entries`)
    ).rows[0];

  it('generates the data set through the CLI, then adds nothing when run again with the same sizes', async () => {
    const first = await runSeedCli(url, ['--orgs', '3', '--trips', '20', '--pings', '500']);
    expect(first.out).toMatch(/pings: .*rows\/s/);
    expect(first.code).toBe(0);
    const per = driversPerOrg(sizes.orgs, sizes.trips);
    const after1 = await counts();
    expect(after1).toEqual(
      expect.objectContaining({
        orgs: 3,
        users: 3 + 3 * per,
        memberships: 3 + 3 * per,
        drivers: 3 * per,
        trucks: 3 * per,
        trips: 20,
        pings: 500,
      }),
    );
    expect(after1.invoices).toBeGreaterThan(0);
    expect(after1.postings).toBe(after1.invoices + after1.payments);
    expect(after1.entries).toBe(after1.postings * 2);

    // The second run, in process to read what it added: nothing.
    const passwordHash = await new PasswordHasher(baseConfig.passwordScrypt).hash('waybill-demo');
    const second = await seedBulk(url, { ...sizes, passwordHash }, () => undefined);
    expect(Object.values(second.added).every((n) => n === 0)).toBe(true);
    expect(await counts()).toEqual(after1);

    // And through the CLI once more: it says so.
    const third = await runSeedCli(url, ['--orgs', '3', '--trips', '20', '--pings', '500']);
    expect(third.code).toBe(0);
    expect(third.out).toContain('nothing to add');
    expect(await counts()).toEqual(after1);
  }, 120_000);

  it('made data the service can use: statuses, routes, balances and owners who can log in', async () => {
    const trips = await sql.query(`SELECT status::text, count(*)::int AS n FROM trips GROUP BY 1 ORDER BY 1`);
    expect(trips.rows.map((r) => r.status)).toEqual(expect.arrayContaining(['COMPLETED', 'CANCELLED']));
    // One active trip at most per driver and per truck (the indexes would have refused more).
    const busy = await sql.query(
      `SELECT driver_id FROM trips WHERE status IN ('LOADING', 'IN_TRANSIT', 'ARRIVED') GROUP BY driver_id HAVING count(*) > 1`,
    );
    expect(busy.rowCount).toBe(0);
    // Every trip that moved has its pings, inside the trip's time, the last of them as its latest location.
    const pings = await sql.query(
      `SELECT t.id, t.status::text, t.latest_recorded_at, max(p.recorded_at) AS last, min(p.recorded_at) AS first, t.created_at,
              bool_and(p.lat BETWEEN 6 AND 37 AND p.lng BETWEEN 68 AND 98) AS in_india
       FROM trips t JOIN trip_pings p ON p.trip_id = t.id GROUP BY t.id`,
    );
    expect(pings.rowCount).toBeGreaterThan(0);
    for (const r of pings.rows) {
      expect(r.in_india).toBe(true);
      expect(r.last.getTime()).toBe(r.latest_recorded_at.getTime());
      expect(r.first.getTime()).toBeGreaterThan(r.created_at.getTime());
      expect(r.last.getTime()).toBeLessThanOrEqual(Date.now());
    }
    // The ledger: each account's balance is the sum of org A's entries.
    const ledger = await sql.query(
      `SELECT a.id, a.balance, coalesce(sum(e.amount) FILTER (WHERE e.org_id = a.org_a_id), 0) AS sum_a
       FROM ledger_accounts a LEFT JOIN ledger_entries e ON e.account_id = a.id GROUP BY a.id`,
    );
    for (const r of ledger.rows) expect(String(r.balance)).toBe(String(r.sum_a));
    // Nothing of the generator stays in the schema.
    const helpers = await sql.query(`SELECT proname FROM pg_proc WHERE proname LIKE 'seed\\_%'`);
    expect(helpers.rows).toEqual([]);
    // Owners log in with the demo password.
    const owner = await sql.query(`SELECT password_hash FROM users WHERE phone = $1`, [ownerPhone(0)]);
    expect(owner.rowCount).toBe(1);
    const hasher = new PasswordHasher(baseConfig.passwordScrypt);
    expect(await hasher.verify('waybill-demo', owner.rows[0].password_hash)).toBe(true);
  });
});
