import { loadConfig } from '../../src/infra/config/config';

/** The settings the tests run with: the machine's PostgreSQL and Redis unless overridden. */
export const baseConfig = loadConfig({ ...process.env, NODE_ENV: 'test' });

/** Test databases are named `waybill_test_<epoch ms>_<suffix>`, so leftovers can be aged out. */
export const TEST_DB_PREFIX = 'waybill_test_';

export function testDbName(suffix: string): string {
  return `${TEST_DB_PREFIX}${Date.now()}_${suffix}`;
}

export function databaseUrlFor(name: string): string {
  const url = new URL(baseConfig.databaseUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** The template the global setup migrated for this run. */
export function templateDb(): string {
  const name = process.env.WAYBILL_TEST_TEMPLATE;
  if (!name) throw new Error('WAYBILL_TEST_TEMPLATE is not set: run the e2e tests through jest.config.js');
  return name;
}
