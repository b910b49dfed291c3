import { join } from 'node:path';
import { Client } from 'pg';
import { migrate } from '../../src/infra/db/migration-runner';
import { databaseUrlFor, TEST_DB_PREFIX, testDbName } from './env';

const STALE_AFTER_MS = 2 * 3600_000;

/**
 * Migrates a fresh template database once per run; each test file clones it
 * (CREATE DATABASE ... TEMPLATE), so files run in parallel on their own data.
 * Databases left by runs that died more than two hours ago are dropped.
 */
export default async function globalSetup(): Promise<void> {
  const admin = new Client({ connectionString: databaseUrlFor('postgres') });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [
      `${TEST_DB_PREFIX}%`,
    ]);
    for (const { datname } of rows) {
      const born = Number(datname.slice(TEST_DB_PREFIX.length).split('_')[0]);
      if (Number.isFinite(born) && Date.now() - born > STALE_AFTER_MS) {
        await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
      }
    }
  } finally {
    await admin.end();
  }
  const template = testDbName(`tpl_${process.pid}`);
  await migrate(databaseUrlFor(template), join(__dirname, '..', '..', 'prisma', 'migrations'));
  process.env.WAYBILL_TEST_TEMPLATE = template;
  // Password hashes at OWASP's cost (N=2^17) take a tenth of a second each and 128 MiB: the suite
  // registers hundreds of users, so it hashes at a lower cost (apps in this process and children alike).
  process.env.PASSWORD_SCRYPT_N ??= String(2 ** 14);
}
