import { execFile } from 'node:child_process';
import { appendFile, chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { migrate } from '../../src/infra/db/migration-runner';
import { freePort } from './net';

const run = promisify(execFile);

/** Where the PostgreSQL 15 server binaries are (override with PG_BIN). */
const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';
const OS_USER = 'postgres';
const MIGRATIONS_DIR = join(__dirname, '../../prisma/migrations');

/** Runs a PostgreSQL binary as the `postgres` OS user when this process is root (the server refuses to run as root). */
async function pg(binary: string, args: string[]): Promise<string> {
  const path = join(PG_BIN, binary);
  const [cmd, argv] = process.getuid?.() === 0 ? ['runuser', ['-u', OS_USER, '--', path, ...args]] : [path, args];
  try {
    const { stdout } = await run(cmd, argv, { timeout: 60_000 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`${binary} ${args.join(' ')} failed: ${e.stderr || e.message}`);
  }
}

async function chownToPostgres(path: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const { stdout } = await run('id', ['-u', OS_USER]);
  const { stdout: gid } = await run('id', ['-g', OS_USER]);
  await chown(path, Number(stdout.trim()), Number(gid.trim()));
}

/** Settings for a throwaway server: quick to start, nothing made durable. */
function serverSettings(port: number, socketDir: string): string {
  return [
    '',
    `port = ${port}`,
    `listen_addresses = '127.0.0.1'`,
    `unix_socket_directories = '${socketDir}'`,
    'wal_level = replica',
    'max_wal_senders = 5',
    // Enough WAL kept for a replica stopped for a while to catch up by streaming.
    `wal_keep_size = '256MB'`,
    'hot_standby = on',
    'fsync = off',
    'synchronous_commit = off',
    'full_page_writes = off',
    `shared_buffers = '16MB'`,
    'max_connections = 100',
    `log_min_messages = 'warning'`,
    '',
  ].join('\n');
}

/** One PostgreSQL server in a data directory of its own, started and stopped with pg_ctl. */
export class PgServer {
  private up = false;

  constructor(
    readonly name: string,
    readonly dataDir: string,
    readonly port: number,
    private readonly logFile: string,
  ) {}

  /** A connection URL to `database` on this server (user postgres, trust). */
  url(database: string): string {
    return `postgresql://${OS_USER}@127.0.0.1:${this.port}/${database}`;
  }

  get running(): boolean {
    return this.up;
  }

  /** Starts the server and waits until it accepts connections (a standby: read-only ones). */
  async start(): Promise<void> {
    if (this.up) return;
    await pg('pg_ctl', ['start', '-D', this.dataDir, '-l', this.logFile, '-w', '-t', '60']);
    this.up = true;
  }

  /**
   * Stops the server: `fast` ends sessions cleanly, `immediate` is a crash
   * (no shutdown checkpoint; the next start recovers).
   */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    if (!this.up) return;
    await pg('pg_ctl', ['stop', '-D', this.dataDir, '-m', mode, '-w', '-t', '60']);
    this.up = false;
  }

  /** Runs one statement on this server (a fresh connection each time, so it works across restarts). */
  async query<R extends object = Record<string, unknown>>(
    database: string,
    text: string,
    params?: unknown[],
  ): Promise<R[]> {
    const client = new Client({ connectionString: this.url(database) });
    await client.connect();
    try {
      return (await client.query<R>(text, params)).rows;
    } finally {
      await client.end();
    }
  }
}

export interface ReplicaClusterOptions {
  /** The database created on the primary and migrated with the project's migrations (default `waybill`). */
  database?: string;
  /** Skip the migrations (an empty database). */
  migrate?: boolean;
}

/**
 * A primary and a streaming hot-standby replica of their own, in a temporary
 * directory, on free loopback ports: for tests that stop or pause a database
 * server (the machine's shared PostgreSQL cannot be touched, and takes no
 * replication connections). The primary's database is migrated before the
 * base backup, so the replica starts with the schema.
 *
 *   const cluster = await ReplicaCluster.start();
 *   // cluster.primaryUrl, cluster.replicaUrl
 *   await cluster.replica.stop(); await cluster.replica.start();
 *   await cluster.teardown(); // in afterAll
 */
export class ReplicaCluster {
  private constructor(
    readonly root: string,
    readonly database: string,
    readonly primary: PgServer,
    readonly replica: PgServer,
  ) {}

  static async start(options: ReplicaClusterOptions = {}): Promise<ReplicaCluster> {
    const database = options.database ?? 'waybill';
    const root = await mkdtemp(join(tmpdir(), 'waybill-pg-'));
    await chownToPostgres(root);
    const [primaryPort, replicaPort] = [await freePort(), await freePort()];
    const primary = new PgServer('primary', join(root, 'primary'), primaryPort, join(root, 'primary.log'));
    const replica = new PgServer('replica', join(root, 'replica'), replicaPort, join(root, 'replica.log'));
    const cluster = new ReplicaCluster(root, database, primary, replica);
    try {
      await pg('initdb', [
        '-D',
        primary.dataDir,
        '-U',
        OS_USER,
        '-A',
        'trust',
        '-N',
        '-E',
        'UTF8',
        '--no-instructions',
      ]);
      await appendFile(join(primary.dataDir, 'postgresql.conf'), serverSettings(primaryPort, root));
      await appendFile(join(primary.dataDir, 'pg_hba.conf'), '\nhost replication all 127.0.0.1/32 trust\n');
      await primary.start();
      await primary.query('postgres', `CREATE DATABASE "${database}"`);
      if (options.migrate !== false) await migrate(primary.url(database), MIGRATIONS_DIR);

      await pg('pg_basebackup', [
        ...['-D', replica.dataDir, '-h', '127.0.0.1', '-p', String(primaryPort), '-U', OS_USER],
        ...['-R', '-X', 'stream', '-c', 'fast', '--no-sync'],
      ]);
      // The copied postgresql.conf carries the primary's port: the later line wins.
      await appendFile(join(replica.dataDir, 'postgresql.conf'), serverSettings(replicaPort, root));
      await replica.start();
      return cluster;
    } catch (err) {
      await cluster.teardown().catch(() => undefined);
      throw err;
    }
  }

  get primaryUrl(): string {
    return this.primary.url(this.database);
  }

  get replicaUrl(): string {
    return this.replica.url(this.database);
  }

  /** Waits until the replica has replayed everything the primary had written when called. */
  async waitForReplay(limitMs = 30_000): Promise<void> {
    const [{ lsn }] = await this.primary.query<{ lsn: string }>('postgres', 'SELECT pg_current_wal_lsn()::text AS lsn');
    const deadline = Date.now() + limitMs;
    for (;;) {
      const [{ caught }] = await this.replica.query<{ caught: boolean }>(
        'postgres',
        'SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS caught',
        [lsn],
      );
      if (caught) return;
      if (Date.now() > deadline) throw new Error(`the replica did not replay up to ${lsn}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Stops both servers (as a crash: nothing is kept) and deletes the directory. */
  async teardown(): Promise<void> {
    for (const server of [this.replica, this.primary]) await server.stop('immediate').catch(() => undefined);
    await rm(this.root, { recursive: true, force: true });
  }
}
