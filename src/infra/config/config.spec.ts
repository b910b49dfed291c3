import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_VARIABLES, ConfigError, loadConfig } from './config';

describe('loadConfig', () => {
  it('gives working defaults for this machine', () => {
    const c = loadConfig({});
    expect(c.port).toBe(3000);
    expect(c.databaseUrl).toBe('postgresql://postgres@127.0.0.1:5432/waybill');
    expect(c.databaseReplicaUrl).toBeUndefined();
    expect(c.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(c.accessTokenTtlSeconds).toBe(900);
    expect(c.bodyLimitBytes).toBe(1024 * 1024);
  });

  it('parses numbers and strips a trailing slash from PUBLIC_BASE_URL', () => {
    const c = loadConfig({ PORT: '8080', PUBLIC_BASE_URL: 'https://wb.example.com/', JWT_ACCESS_TTL_SECONDS: '60' });
    expect(c.port).toBe(8080);
    expect(c.publicBaseUrl).toBe('https://wb.example.com');
    expect(c.accessTokenTtlSeconds).toBe(60);
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig({ DATABASE_REPLICA_URL: '' }).databaseReplicaUrl).toBeUndefined();
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ DATABASE_URL: 'not a url' }, 'DATABASE_URL'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ JWT_SECRET: 'short' }, 'JWT_SECRET'],
    [{ NODE_ENV: 'production' }, 'JWT_SECRET'],
  ])('a bad value stops the boot naming the variable: %j', (env, name) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(new RegExp(name));
  });

  it('.env.example documents every variable', () => {
    const example = readFileSync(join(__dirname, '..', '..', '..', '.env.example'), 'utf8');
    const documented = new Set([...example.matchAll(/^([A-Z_]+)=/gm)].map((m) => m[1]));
    expect(CONFIG_VARIABLES.filter((v) => !documented.has(v))).toEqual([]);
    expect(CONFIG_VARIABLES).toEqual(
      expect.arrayContaining([
        'PORT',
        'HOST',
        'DATABASE_URL',
        'DATABASE_REPLICA_URL',
        'REDIS_URL',
        'PUBLIC_BASE_URL',
        'JWT_SECRET',
        'LOG_LEVEL',
      ]),
    );
  });
});
