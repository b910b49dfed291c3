import { appendFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { migrate, readMigrations } from '../../src/infra/db/migration-runner';
import { databaseUrlFor, testDbName } from '../support/env';
import { dropTestDatabase } from '../support/test-app';

const realDir = join(__dirname, '..', '..', 'prisma', 'migrations');

function copyOfMigrations(): string {
  const dir = mkdtempSync(join(tmpdir(), 'waybill-migrations-'));
  cpSync(realDir, dir, { recursive: true });
  return dir;
}

describe('migration runner', () => {
  const urls: string[] = [];
  const freshUrl = () => {
    const url = databaseUrlFor(testDbName(`mig${urls.length}_${process.pid}`));
    urls.push(url);
    return url;
  };
  afterAll(async () => {
    for (const url of urls) await dropTestDatabase(url);
  });

  it('creates the database, applies every migration once, then does nothing', async () => {
    const url = freshUrl();
    const all = await readMigrations(realDir);
    const first = await migrate(url, realDir);
    expect(first.applied).toEqual(all.map((m) => m.name));
    const second = await migrate(url, realDir);
    expect(second).toEqual({ applied: [], alreadyApplied: all.length });
    const sql = new Client({ connectionString: url });
    await sql.connect();
    const rows = await sql.query('SELECT migration_name, checksum FROM _prisma_migrations ORDER BY migration_name');
    await sql.end();
    expect(rows.rows).toEqual(all.map((m) => ({ migration_name: m.name, checksum: m.checksum })));
  });

  it('two nodes migrating at once apply each migration exactly once', async () => {
    const url = freshUrl();
    const all = await readMigrations(realDir);
    // Create the database first so both runs race on the lock, not on CREATE DATABASE.
    await migrate(url, mkdtempSync(join(tmpdir(), 'waybill-empty-')));
    const [a, b] = await Promise.all([migrate(url, realDir), migrate(url, realDir)]);
    expect([...a.applied, ...b.applied].sort()).toEqual(all.map((m) => m.name).sort());
    const sql = new Client({ connectionString: url });
    await sql.connect();
    const n = await sql.query('SELECT count(*)::int AS n FROM _prisma_migrations');
    await sql.end();
    expect(n.rows[0].n).toBe(all.length);
  });

  it('refuses a migration changed after it was applied, naming it', async () => {
    const url = freshUrl();
    const dir = copyOfMigrations();
    await migrate(url, dir);
    const [first] = await readMigrations(dir);
    appendFileSync(join(dir, first.name, 'migration.sql'), '\n-- edited later\n');
    await expect(migrate(url, dir)).rejects.toThrow(new RegExp(`${first.name} was changed after it was applied`));
  });

  it('rolls back a failing migration whole and names it', async () => {
    const url = freshUrl();
    const dir = copyOfMigrations();
    await migrate(url, dir);
    const bad = '29991231000000_broken';
    mkdirSync(join(dir, bad));
    writeFileSync(join(dir, bad, 'migration.sql'), 'CREATE TABLE half_done (id int);\nSELECT * FROM no_such_table;\n');
    await expect(migrate(url, dir)).rejects.toThrow(new RegExp(`${bad} failed`));
    const sql = new Client({ connectionString: url });
    await sql.connect();
    const t = await sql.query(`SELECT to_regclass('public.half_done') AS t`);
    const m = await sql.query(`SELECT count(*)::int AS n FROM _prisma_migrations WHERE migration_name = $1`, [bad]);
    await sql.end();
    expect(t.rows[0].t).toBeNull();
    expect(m.rows[0].n).toBe(0);
  });

  it('the daily ping counts start from the stored points of the day, each counted once, backlog or not', async () => {
    const url = freshUrl();
    const dir = copyOfMigrations();
    const all = await readMigrations(dir);
    const daily = all.find((m) => m.name.endsWith('_added_trip_daily_pings'))!;
    rmSync(join(dir, daily.name), { recursive: true });
    await migrate(url, dir);
    const sql = new Client({ connectionString: url });
    await sql.connect();
    try {
      const trip = (
        await sql.query(`
          WITH o AS (INSERT INTO orgs (id, name, updated_at) VALUES (gen_random_uuid(), 'A', now()), (gen_random_uuid(), 'B', now()) RETURNING id),
               u AS (INSERT INTO users (id, phone, name, password_hash, updated_at) VALUES (gen_random_uuid(), '+910000000001', 'D', 'x', now()) RETURNING id),
               tr AS (INSERT INTO trucks (id, org_id, number) SELECT gen_random_uuid(), min(id::text)::uuid, 'T1' FROM o RETURNING id, org_id),
               d AS (INSERT INTO driver_profiles (id, org_id, user_id) SELECT gen_random_uuid(), tr.org_id, u.id FROM tr, u RETURNING id, org_id)
          INSERT INTO trips (id, source_org_id, destination_org_id, truck_id, driver_id, status, start_name, start_lat, start_lng,
                             end_name, end_lat, end_lng, updated_at)
          SELECT gen_random_uuid(), d.org_id, (SELECT max(id::text)::uuid FROM o), tr.id, d.id, 'IN_TRANSIT', 'A', 26.9, 75.8, 'B', 28.6, 77.2, now()
          FROM d, tr RETURNING id`)
      ).rows[0].id as string;
      // Three points today: two already counted into the trip, one still in the backlog; one yesterday.
      // Times from the start of today (UTC), so that the test means the same just after midnight.
      const stored = async (sinceMidnight: string, backlog: boolean) => {
        const at = (
          await sql.query(
            `SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + $1::interval AS at`,
            [sinceMidnight],
          )
        ).rows[0].at as Date;
        await sql.query(`INSERT INTO trip_pings (trip_id, recorded_at, lat, lng) VALUES ($1, $2, 26.9, 75.8)`, [
          trip,
          at,
        ]);
        if (backlog) {
          await sql.query(
            `INSERT INTO trip_ping_backlog (trip_id, recorded_at, lat, lng, speed, heading)
             VALUES ($1, ARRAY[$2::timestamptz], '{26.9}', '{75.8}', '{NULL}', '{NULL}')`,
            [trip, at],
          );
        }
      };
      await stored('1 ms', false);
      await stored('2 ms', false);
      await stored('3 ms', true);
      await stored('-1 hour', false);
      await migrate(url, copyOfMigrations());
      const countToday = async () =>
        Number(
          (
            await sql.query(
              `SELECT coalesce(sum(pings), 0) AS n FROM trip_daily_pings WHERE trip_id = $1 AND day = (now() AT TIME ZONE 'UTC')::date`,
              [trip],
            )
          ).rows[0].n,
        );
      expect(await countToday()).toBe(3);
      // Taking the pending row returns its point and does not count it again.
      const taken = await sql.query(`SELECT * FROM take_trip_ping_backlog($1::uuid[])`, [[trip]]);
      expect(taken.rows).toHaveLength(1);
      expect(await countToday()).toBe(3);
      // A point stored from now on is counted when its backlog is taken.
      await stored('4 ms', true);
      expect(await countToday()).toBe(3);
      await sql.query(`SELECT * FROM take_trip_ping_backlog($1::uuid[])`, [[trip]]);
      expect(await countToday()).toBe(4);
    } finally {
      await sql.end();
    }
  });
});
