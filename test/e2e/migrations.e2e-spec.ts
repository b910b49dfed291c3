import { cpSync, mkdtempSync, mkdirSync, writeFileSync, appendFileSync } from 'node:fs';
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
});
