import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../../src/infra/config/config';

/**
 * docker-compose.yml read against the code, the files it mounts and the images'
 * documented settings (no Docker engine runs here): what `docker compose up`
 * would need to come up, checked without running it.
 */
const ROOT = join(__dirname, '../..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/** Compose's variable interpolation: `${V}`, `${V:-default}`, `${V-default}`, `${V:?error}`, `${V?error}`, `$$`. */
function interpolate(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$|\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}/g, (whole, name?: string, op?: string, arg?: string) => {
    if (whole === '$$') return '$';
    const value = env[name!];
    const unset = value === undefined || (op?.startsWith(':') && value === '');
    if (op?.endsWith('?') && unset) throw new Error(`required variable ${name} is missing: ${arg}`);
    if (op?.endsWith('-') && unset) return arg ?? '';
    return value ?? '';
  });
}

type Service = {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  entrypoint?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test?: unknown; disable?: boolean };
  volumes?: string[];
  ports?: string[];
};

/** What a newcomer puts in .env (the variables the file marks as required). */
const DOT_ENV = {
  POSTGRES_PASSWORD: 'primary-password-1',
  REPLICATION_PASSWORD: 'replication-password-1',
  JWT_SECRET: 'a-long-enough-signing-secret',
  WEBHOOK_SECRET_KEY: '8f1c0d3e5a7b9c2d4e6f8a0b1c3d5e7f9a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d',
};

function compose(env: Record<string, string> = DOT_ENV): { services: Record<string, Service> } {
  return parse(interpolate(read('docker-compose.yml'), env), { merge: true });
}

/**
 * The variables edoburu/pgbouncer's entrypoint.sh reads to write pgbouncer.ini
 * (github.com/edoburu/docker-pgbouncer, entrypoint.sh): anything else would be ignored.
 */
const PGBOUNCER_IMAGE_VARIABLES = new Set([
  'DATABASE_URL',
  'DB_HOST',
  'DB_PORT',
  'DB_USER',
  'DB_PASSWORD',
  'DB_NAME',
  'AUTH_FILE',
  'AUTH_TYPE',
  'AUTH_USER',
  'AUTH_QUERY',
  'AUTH_HBA_FILE',
  'ADMIN_USERS',
  'ADMIN_PASSWORDS',
  'STATS_USERS',
  'STATS_PASSWORDS',
  'LISTEN_ADDR',
  'LISTEN_PORT',
  'UNIX_SOCKET_DIR',
  'POOL_MODE',
  'MAX_CLIENT_CONN',
  'POOL_SIZE',
  'DEFAULT_POOL_SIZE',
  'MIN_POOL_SIZE',
  'RESERVE_POOL_SIZE',
  'RESERVE_POOL_TIMEOUT',
  'MAX_DB_CONNECTIONS',
  'MAX_USER_CONNECTIONS',
  'SERVER_ROUND_ROBIN',
  'IGNORE_STARTUP_PARAMETERS',
  'MAX_PREPARED_STATEMENTS',
  'SERVER_RESET_QUERY',
  'SERVER_CHECK_DELAY',
  'SERVER_LIFETIME',
  'SERVER_IDLE_TIMEOUT',
  'SERVER_CONNECT_TIMEOUT',
  'QUERY_TIMEOUT',
  'QUERY_WAIT_TIMEOUT',
  'CLIENT_IDLE_TIMEOUT',
  'IDLE_TRANSACTION_TIMEOUT',
  'LOG_CONNECTIONS',
  'LOG_DISCONNECTIONS',
  'LOG_POOLER_ERRORS',
  'LOG_STATS',
  'STATS_PERIOD',
  'VERBOSE',
]);

/** `-c name=value` settings of a postgres command line. */
function serverSettings(svc: Service): Record<string, string> {
  const argv = Array.isArray(svc.command) ? svc.command : String(svc.command ?? '').split(/\s+/);
  const out: Record<string, string> = {};
  argv.forEach((a, i) => {
    if (argv[i - 1] === '-c') {
      const [k, v] = a.split('=');
      out[k] = v;
    }
  });
  return out;
}

describe('docker-compose.yml', () => {
  const { services } = compose();
  const appServices = Object.entries(services).filter(([, s]) => s.environment?.DATABASE_REPLICA_URL !== undefined);
  const appNames = appServices.map(([n]) => n);
  const pgbouncer = services.pgbouncer;
  const pkg = JSON.parse(read('package.json')) as { version: string };

  it('needs the passwords and the signing key from .env, and names the missing one', () => {
    for (const name of Object.keys(DOT_ENV)) {
      const partial: Record<string, string> = { ...DOT_ENV };
      delete partial[name];
      expect(() => compose(partial)).toThrow(name);
    }
  });

  it('runs two app nodes; every variable they get is one the app reads, and their settings load in production', () => {
    expect(appNames.length).toBeGreaterThanOrEqual(2);
    for (const [name, svc] of appServices) {
      const env = svc.environment!;
      for (const key of Object.keys(env)) expect([name, key, CONFIG_VARIABLES.includes(key)]).toEqual([name, key, true]);
      expect(env.NODE_ENV).toBe('production');
      // Every variable without a default is set (loadConfig refuses otherwise, e.g. JWT_SECRET in production).
      const config = loadConfig(env);
      expect(config.env).toBe('production');
      expect(config.jwtSecret).toBe(DOT_ENV.JWT_SECRET);
      expect(config.databaseTransactionPooler).toBe(true);
      expect(config.databasePreparedStatements).toBe(false);
    }
  });

  it('the app dials PgBouncer on the port it listens on; PgBouncer forwards to the primary in transaction mode', () => {
    const env = pgbouncer.environment!;
    for (const key of Object.keys(env)) expect([key, PGBOUNCER_IMAGE_VARIABLES.has(key)]).toEqual([key, true]);
    expect(pgbouncer.image).toMatch(/^edoburu\/pgbouncer:/);
    expect(env.POOL_MODE).toBe('transaction');
    // The image listens on 5432 unless LISTEN_PORT says otherwise.
    const listenPort = env.LISTEN_PORT ?? '5432';
    expect(services[env.DB_HOST]).toBeDefined();
    expect(services[env.DB_HOST].image).toMatch(/^postgres:/);
    expect(env.DB_PORT ?? '5432').toBe('5432');
    expect(env.DB_PASSWORD).toBe(DOT_ENV.POSTGRES_PASSWORD);
    expect(env.DB_USER).toBe(services[env.DB_HOST].environment!.POSTGRES_USER);
    expect(env.DB_NAME).toBe(services[env.DB_HOST].environment!.POSTGRES_DB);
    // The password in the userlist as is: PgBouncer must answer the primary's SCRAM challenge with it.
    expect(env.AUTH_TYPE).toBe('scram-sha-256');
    for (const [, svc] of appServices) {
      const config = loadConfig(svc.environment!);
      const primary = new URL(config.databaseUrl);
      expect(primary.hostname).toBe('pgbouncer');
      expect(primary.port).toBe(listenPort);
      expect(primary.pathname).toBe(`/${env.DB_NAME}`);
      const replica = new URL(config.databaseReplicaUrl!);
      expect(services[replica.hostname].entrypoint?.join(' ')).toContain('replica-entrypoint.sh');
      expect(replica.port || '5432').toBe('5432');
      expect(services[new URL(config.redisUrl).hostname].image).toMatch(/^redis:/);
      // The healthcheck asks the port the app listens on.
      expect(JSON.stringify(svc.healthcheck!.test)).toContain(`:${config.port}/health/ready`);
    }
  });

  it('pins every image by version (no latest, no bare name); the built image carries the package version', () => {
    for (const [name, svc] of Object.entries(services)) {
      expect([name, svc.image]).toEqual([name, expect.stringMatching(/^[a-z0-9./-]+:v?\d+(\.\d+)+[\w.-]*$/)]);
      expect(svc.image).not.toMatch(/:latest$/);
      if (svc.build !== undefined) expect(svc.image).toBe(`waybill:${pkg.version}`);
    }
    const from = read('Dockerfile').match(/^FROM\s+\S+/gm)!;
    for (const line of from) expect(line).toMatch(/:\d+(\.\d+)+/);
  });

  it('lets the replica in: the primary creates the replication role and its pg_hba line, the replica clones with it', () => {
    const primary = services.postgres;
    const settings = serverSettings(primary);
    expect(settings.wal_level).toBe('replica');
    expect(Number(settings.max_wal_senders)).toBeGreaterThan(0);
    const init = primary.volumes!.find((v) => v.includes('/docker-entrypoint-initdb.d/'))!;
    const initFile = init.split(':')[0].replace(/^\.\//, '');
    expect(init.split(':')[1]).toMatch(/\.sh$/);
    const script = read(initFile);
    expect(script).toMatch(/CREATE ROLE .* WITH REPLICATION LOGIN PASSWORD/);
    expect(script).toContain('host replication ${REPLICATION_USER} all scram-sha-256');
    expect(script).toContain('$PGDATA/pg_hba.conf');

    const replica = services['postgres-replica'];
    const mount = replica.volumes!.find((v) => v.includes('replica-entrypoint.sh'))!;
    const [hostPath, containerPath] = mount.split(':');
    expect(replica.entrypoint).toEqual(['bash', containerPath]);
    const entry = read(hostPath.replace(/^\.\//, ''));
    expect(entry).toMatch(/pg_basebackup -h "\$PRIMARY_HOST" -U "\$REPLICATION_USER"/);
    expect(entry).toContain(' -R ');
    expect(replica.environment!.PRIMARY_HOST).toBe('postgres');
    expect(replica.environment!.REPLICATION_USER).toBe(primary.environment!.REPLICATION_USER);
    expect(replica.environment!.REPLICATION_PASSWORD).toBe(primary.environment!.REPLICATION_PASSWORD);
  });

  it('starts in order: replica and PgBouncer after a healthy primary, the app after the one-shot migration', () => {
    expect(services['postgres-replica'].depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    expect(pgbouncer.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    const migrate = services.migrate;
    expect(migrate.build).toBe('.');
    expect(migrate.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    // Directly on the primary: the migration runner holds a session advisory lock, which PgBouncer's transaction mode cannot keep.
    const migrateUrl = new URL(loadConfig(migrate.environment!).databaseUrl);
    expect(`${migrateUrl.hostname}:${migrateUrl.port}`).toBe('postgres:5432');
    expect(migrate.command).toEqual(['node', 'dist/infra/db/migrate.cli.js']);
    expect(existsSync(join(ROOT, 'src/infra/db/migrate.cli.ts'))).toBe(true);
    for (const [name, svc] of appServices) {
      expect([name, svc.depends_on]).toEqual([
        name,
        expect.objectContaining({
          migrate: { condition: 'service_completed_successfully' },
          pgbouncer: { condition: 'service_healthy' },
          redis: { condition: 'service_healthy' },
        }),
      ]);
    }
  });

  it('every long-running service has a healthcheck; the Dockerfile has one too and generates Prisma in a build stage', () => {
    for (const [name, svc] of Object.entries(services)) {
      if (name === 'migrate') continue;
      expect([name, svc.healthcheck?.test]).toEqual([name, expect.anything()]);
      expect(svc.healthcheck?.disable).not.toBe(true);
    }
    const dockerfile = read('Dockerfile');
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\/health\/ready/ms);
    expect(dockerfile.match(/^FROM /gm)).toHaveLength(2);
    // scripts/prisma-generate.js: `prisma generate` needs the variable to name an existing file.
    expect(dockerfile).toMatch(/PRISMA_SCHEMA_ENGINE_BINARY=\/usr\/local\/bin\/node/);
    expect(dockerfile).toMatch(/npm run build/);
  });

  it('the load balancer sends to every app node on its port, sticky by client address, with WebSocket upgrades', () => {
    const lb = services.lb;
    expect(lb.image).toMatch(/^nginx:/);
    const mount = lb.volumes!.find((v) => v.endsWith(':/etc/nginx/nginx.conf:ro'))!;
    const conf = read(mount.split(':')[0].replace(/^\.\//, ''));
    const upstream = conf.match(/upstream waybill \{([^}]*)\}/)![1];
    const servers = [...upstream.matchAll(/server ([\w-]+):(\d+)/g)].map((m) => `${m[1]}:${m[2]}`);
    expect(servers.sort()).toEqual(appServices.map(([n, s]) => `${n}:${loadConfig(s.environment!).port}`).sort());
    expect(upstream).toMatch(/^\s*ip_hash;/m);
    expect(conf).toMatch(/proxy_set_header Upgrade \$http_upgrade/);
    expect(conf).toMatch(/proxy_set_header X-Forwarded-For/);
    for (const [, svc] of appServices) expect(loadConfig(svc.environment!).trustProxy).toBe(1);
    expect(Object.keys(lb.depends_on!).sort()).toEqual([...appNames].sort());
    expect(lb.ports).toHaveLength(1);
  });

  it('keeps the connection budget: app pool x nodes <= PgBouncer pool <= max_connections - reserved', () => {
    const env = pgbouncer.environment!;
    const pool = Number(env.DEFAULT_POOL_SIZE ?? 20) + Number(env.RESERVE_POOL_SIZE ?? 0);
    const appTotal = appServices.reduce((n, [, s]) => n + loadConfig(s.environment!).databasePoolMax, 0);
    expect(appTotal).toBeLessThanOrEqual(pool);
    const maxConnections = Number(serverSettings(services.postgres).max_connections ?? 100);
    // superuser_reserved_connections (3) plus the migration and an operator's psql.
    expect(pool).toBeLessThanOrEqual(maxConnections - 3 - 2);
    // The replica: each node's replica pool and export pool, dialled directly.
    const replicaTotal = appServices.reduce((n, [, s]) => {
      const c = loadConfig(s.environment!);
      return n + c.databasePoolMax + c.exportPoolMax;
    }, 0);
    expect(replicaTotal).toBeLessThanOrEqual(maxConnections - 3);
  });
});

describe('.dockerignore', () => {
  const lines = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  it('keeps node_modules, .env, build output and .git out of the image', () => {
    for (const entry of ['node_modules', '.env', 'dist', '.git', 'src/generated', 'coverage']) {
      expect(lines).toContain(entry);
    }
  });
});
