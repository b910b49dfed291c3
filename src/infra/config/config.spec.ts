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

  it('reads ?pgbouncer=true off DATABASE_URL: a transaction pooler, no named statements, the flag removed', () => {
    const c = loadConfig({ DATABASE_URL: 'postgresql://w:pw@pgbouncer:6432/waybill?pgbouncer=true&sslmode=disable' });
    expect(c.databaseTransactionPooler).toBe(true);
    expect(c.databasePreparedStatements).toBe(false);
    expect(c.databaseUrl).toBe('postgresql://w:pw@pgbouncer:6432/waybill?sslmode=disable');
    const direct = loadConfig({ DATABASE_URL: 'postgresql://w@db:5432/waybill' });
    expect(direct.databaseTransactionPooler).toBe(false);
    expect(direct.databasePreparedStatements).toBe(true);
    expect(direct.databaseUrl).toBe('postgresql://w@db:5432/waybill');
    expect(loadConfig({ DATABASE_URL: 'postgresql://w@db/waybill?pgbouncer=false' }).databaseTransactionPooler).toBe(
      false,
    );
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
    [{ NODE_ENV: 'production', JWT_SECRET: 'a-production-secret-long-enough' }, 'WEBHOOK_SECRET_KEY'],
    [{ WEBHOOK_SECRET_KEY: 'too-short' }, 'WEBHOOK_SECRET_KEY'],
  ])('a bad value stops the boot naming the variable: %j', (env, name) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(new RegExp(name));
  });

  it('reads WEBHOOK_SECRET_KEY as 32 bytes of hex or base64, else derives one from JWT_SECRET', () => {
    const hex = 'ab'.repeat(32);
    expect(loadConfig({ WEBHOOK_SECRET_KEY: hex }).webhooks.secretKey.toString('hex')).toBe(hex);
    const b64 = Buffer.alloc(32, 7).toString('base64');
    expect(loadConfig({ WEBHOOK_SECRET_KEY: b64 }).webhooks.secretKey).toEqual(Buffer.alloc(32, 7));
    const a = loadConfig({ JWT_SECRET: 'first-secret-long-enough' }).webhooks.secretKey;
    const b = loadConfig({ JWT_SECRET: 'second-secret-long-enough' }).webhooks.secretKey;
    expect(a).toHaveLength(32);
    expect(a.equals(b)).toBe(false);
    // Left empty, as `.env.example` has it: unset (derived here, required in production).
    const fromEmpty = loadConfig({ JWT_SECRET: 'first-secret-long-enough', WEBHOOK_SECRET_KEY: '' }).webhooks.secretKey;
    expect(fromEmpty.equals(a)).toBe(true);
    expect(() =>
      loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'a-production-secret-long-enough', WEBHOOK_SECRET_KEY: '' }),
    ).toThrow(/WEBHOOK_SECRET_KEY: required/);
  });

  it('reads TRUST_PROXY as off, a hop count, or a list of addresses', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8, 192.168.1.7,::1,fd00::/8,loopback' }).trustProxy).toEqual([
      '10.0.0.0/8',
      '192.168.1.7',
      '::1',
      'fd00::/8',
      'loopback',
    ]);
    for (const bad of ['true', '10.0.0.0/33', 'proxy.example.com', '10.0.0.1/8/1']) {
      expect(() => loadConfig({ TRUST_PROXY: bad })).toThrow(/TRUST_PROXY/);
    }
  });

  it('reads CORS_ORIGINS as a list of origins, none by default', () => {
    expect(loadConfig({}).corsOrigins).toEqual([]);
    expect(loadConfig({ CORS_ORIGINS: 'https://app.example.com, http://localhost:5173/' }).corsOrigins).toEqual([
      'https://app.example.com',
      'http://localhost:5173',
    ]);
    expect(() => loadConfig({ CORS_ORIGINS: 'https://app.example.com/path' })).toThrow(/CORS_ORIGINS/);
    expect(() => loadConfig({ CORS_ORIGINS: '*' })).toThrow(/CORS_ORIGINS/);
  });

  it('hashes passwords at OWASP minimum scrypt cost by default; N must be a power of 2', () => {
    expect(loadConfig({}).passwordScrypt).toEqual({ N: 2 ** 17, r: 8, p: 1 });
    expect(loadConfig({ PASSWORD_SCRYPT_N: '16384' }).passwordScrypt.N).toBe(16384);
    expect(() => loadConfig({ PASSWORD_SCRYPT_N: '100000' })).toThrow(/PASSWORD_SCRYPT_N/);
  });

  it('.env.example documents every variable', () => {
    const example = readFileSync(join(__dirname, '..', '..', '..', '.env.example'), 'utf8');
    const documented = new Set([...example.matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]));
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
