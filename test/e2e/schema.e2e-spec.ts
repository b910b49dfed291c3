import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { createTestDatabase, dropTestDatabase } from '../support/test-app';
import { schemaDifferences } from '../support/schema-drift';

const schemaPath = join(__dirname, '..', '..', 'prisma', 'schema.prisma');

/**
 * Indexes that migrations add beyond what Prisma's schema language can say
 * (partial or expression indexes). Each needs a reason.
 */
const INDEXES_OUTSIDE_PRISMA: string[] = [
  // At most one active (LOADING/IN_TRANSIT/ARRIVED) trip per driver and per truck: partial unique indexes.
  'trips_one_active_per_driver',
  'trips_one_active_per_truck',
  // Open access-code sessions only: the idle sweep by last use, and a code's open sessions when it is disabled.
  'access_code_sessions_idle_idx',
  'access_code_sessions_open_by_code_idx',
];

describe('the migrated database matches schema.prisma', () => {
  let url: string;
  let sql: Client;
  const datamodel = readFileSync(schemaPath, 'utf8');

  beforeAll(async () => {
    url = await createTestDatabase();
    sql = new Client({ connectionString: url });
    await sql.connect();
  });
  afterAll(async () => {
    await sql.end();
    await dropTestDatabase(url);
  });

  it('has no differences', async () => {
    expect(await schemaDifferences(datamodel, sql, { ignoreIndexes: INDEXES_OUTSIDE_PRISMA })).toEqual([]);
  });

  it('records the migrations as prisma migrate deploy would', async () => {
    const rows = await sql.query(
      `SELECT migration_name, checksum, finished_at, applied_steps_count, rolled_back_at FROM _prisma_migrations ORDER BY migration_name`,
    );
    expect(rows.rows.length).toBeGreaterThan(0);
    for (const r of rows.rows) {
      expect(r.checksum).toMatch(/^[0-9a-f]{64}$/);
      expect(r.finished_at).toBeInstanceOf(Date);
      expect(r.applied_steps_count).toBe(1);
      expect(r.rolled_back_at).toBeNull();
    }
  });

  describe('catches drift', () => {
    // Each case changes one side inside a transaction that is rolled back.
    async function withDatabaseChange(change: string): Promise<string[]> {
      await sql.query('BEGIN');
      try {
        await sql.query(change);
        return await schemaDifferences(datamodel, sql, { ignoreIndexes: INDEXES_OUTSIDE_PRISMA });
      } finally {
        await sql.query('ROLLBACK');
      }
    }

    it.each([
      [
        'an extra column',
        'ALTER TABLE users ADD COLUMN nickname text',
        /users\.nickname: in database but not in schema/,
      ],
      ['a dropped column', 'ALTER TABLE orgs DROP COLUMN city', /orgs\.city: missing in database/],
      ['a changed type', 'ALTER TABLE trucks ALTER COLUMN capacity_kg TYPE bigint', /trucks\.capacity_kg: type bigint/],
      ['nullability', 'ALTER TABLE users ALTER COLUMN name DROP NOT NULL', /users\.name: nullable in database/],
      ['a default', "ALTER TABLE orgs ALTER COLUMN city SET DEFAULT 'Delhi'", /orgs\.city: default/],
      ['a dropped index', 'DROP INDEX memberships_user_id_idx', /memberships_user_id_idx on memberships: missing/],
      [
        'a unique index made plain',
        'DROP INDEX users_phone_key; CREATE INDEX users_phone_key ON users(phone)',
        /users_phone_key/,
      ],
      [
        'index order',
        'DROP INDEX trucks_org_id_created_at_id_idx; CREATE INDEX trucks_org_id_created_at_id_idx ON trucks(org_id, created_at, id)',
        /trucks_org_id_created_at_id_idx/,
      ],
      [
        'an extra index',
        'CREATE INDEX orgs_name_idx ON orgs(name)',
        /orgs_name_idx on orgs: in database but not in schema/,
      ],
      [
        'a foreign key action',
        'ALTER TABLE trucks DROP CONSTRAINT trucks_org_id_fkey, ADD CONSTRAINT trucks_org_id_fkey FOREIGN KEY (org_id) REFERENCES orgs(id) ON DELETE RESTRICT ON UPDATE CASCADE',
        /trucks_org_id_fkey/,
      ],
      ['an enum value', "ALTER TYPE role ADD VALUE 'AUDITOR'", /enum role: values/],
      ['an extra table', 'CREATE TABLE scratch (id int)', /table scratch: in database but not in schema/],
    ])('in the database: %s', async (_label, change, expected) => {
      const diffs = await withDatabaseChange(change);
      expect(diffs.join('\n')).toMatch(expected);
    });

    it.each([
      [
        'a new field',
        (s: string) => s.replace('  city      String?\n', '  city      String?\n  region    String?\n'),
        /orgs\.region: missing in database/,
      ],
      [
        'an optional field made required',
        (s: string) => s.replace('  city      String?\n', '  city      String\n'),
        /orgs\.city: nullable in database, required in schema/,
      ],
      [
        'a new index',
        (s: string) => s.replace('  @@map("orgs")', '  @@index([name])\n  @@map("orgs")'),
        /orgs_name_idx on orgs: missing in database/,
      ],
      [
        'a renamed table',
        (s: string) => s.replace('@@map("trucks")', '@@map("vehicles")'),
        /table vehicles: missing in database/,
      ],
    ])('in the schema: %s', async (_label, edit, expected) => {
      const changed = edit(datamodel);
      expect(changed).not.toEqual(datamodel);
      const diffs = await schemaDifferences(changed, sql, { ignoreIndexes: INDEXES_OUTSIDE_PRISMA });
      expect(diffs.join('\n')).toMatch(expected);
    });
  });
});
