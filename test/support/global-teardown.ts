import { Client } from 'pg';
import { databaseUrlFor } from './env';

export default async function globalTeardown(): Promise<void> {
  const template = process.env.WAYBILL_TEST_TEMPLATE;
  if (!template) return;
  const admin = new Client({ connectionString: databaseUrlFor('postgres') });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}
