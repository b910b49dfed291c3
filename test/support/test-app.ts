import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import type { DestinationStream } from 'pino';
import { createApp } from '../../src/app';
import { AppConfig } from '../../src/infra/config/config';
import { baseConfig, databaseUrlFor, templateDb, testDbName } from './env';

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export interface RequestOptions {
  token?: string;
  headers?: Record<string, string>;
  /** A raw body sent as is (for malformed-input tests). */
  raw?: string;
}

/** A small HTTP client for the app under test: real requests over loopback. */
export class Api {
  constructor(readonly baseUrl: string) {}

  async request<T = any>(
    method: string,
    path: string,
    body?: unknown,
    opts: RequestOptions = {},
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let payload: string | undefined;
    if (opts.raw !== undefined) payload = opts.raw;
    else if (body !== undefined) payload = JSON.stringify(body);
    if (payload !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
      headers['content-type'] = 'application/json';
    }
    const res = await fetch(this.baseUrl + path, { method, headers, body: payload });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON: keep the text */
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  }

  get<T = any>(path: string, opts?: RequestOptions) {
    return this.request<T>('GET', path, undefined, opts);
  }
  post<T = any>(path: string, body?: unknown, opts?: RequestOptions) {
    return this.request<T>('POST', path, body, opts);
  }
  patch<T = any>(path: string, body?: unknown, opts?: RequestOptions) {
    return this.request<T>('PATCH', path, body, opts);
  }
  delete<T = any>(path: string, opts?: RequestOptions) {
    return this.request<T>('DELETE', path, undefined, opts);
  }
}

export interface TestApp {
  app: NestFastifyApplication;
  config: AppConfig;
  /** Root of the server, e.g. http://127.0.0.1:40123 */
  url: string;
  /** Client for /api/v1 */
  api: Api;
  /** Client for the server root (health, docs) */
  root: Api;
  /** A direct connection to this file's database, for assertions. */
  sql: Client;
  close(): Promise<void>;
}

/** Clones the migrated template into a database of this test file's own. */
export async function createTestDatabase(): Promise<string> {
  const name = testDbName(randomBytes(4).toString('hex'));
  const admin = new Client({ connectionString: databaseUrlFor('postgres') });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}" TEMPLATE "${templateDb()}"`);
  } finally {
    await admin.end();
  }
  return databaseUrlFor(name);
}

export async function dropTestDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  const admin = new Client({ connectionString: databaseUrlFor('postgres') });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** Boots the real app on a random port against its own database and Redis key prefix. */
export async function startTestApp(
  overrides: Partial<AppConfig> = {},
  beforeListen?: (app: NestFastifyApplication) => void | Promise<void>,
  /** Where the app's log lines go (stdout unless given): tests that read them. */
  logDestination?: DestinationStream,
): Promise<TestApp> {
  const databaseUrl = await createTestDatabase();
  const config: AppConfig = {
    ...baseConfig,
    env: 'test',
    port: 0,
    host: '127.0.0.1',
    databaseUrl,
    databaseReplicaUrl: databaseUrl,
    redisKeyPrefix: `test:${randomBytes(6).toString('hex')}:`,
    logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
    // Test files register many users from one address; the throttling test sets its own limit.
    authRateLimitPerMinute: 100_000,
    authRateLimitPerPhonePerMinute: 100_000,
    authRateLimitPerCodePerMinute: 100_000,
    pingRateLimitPerMinute: 100_000,
    readRateLimitPerMinute: 100_000,
    ...overrides,
  };
  const app = await createApp(config, { logDestination });
  await beforeListen?.(app);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.getHttpServer().address() as { port: number };
  const url = `http://127.0.0.1:${address.port}`;
  const sql = new Client({ connectionString: databaseUrl });
  await sql.connect();
  return {
    app,
    config,
    url,
    api: new Api(`${url}/api/v1`),
    root: new Api(url),
    sql,
    async close() {
      await app.close();
      await sql.end();
      await dropTestDatabase(databaseUrl);
    },
  };
}
