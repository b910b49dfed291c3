import { execFile } from 'node:child_process';
import { appendFile, chown, mkdtemp, readFile, rm } from 'node:fs/promises';
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

/**
 * A loopback address of the cluster's own (Linux routes all of 127.0.0.0/8 to
 * lo): the servers listen only there, so the apps, private Redis servers and
 * clusters of test files running at the same time, which bind 127.0.0.1 or an
 * address of their own, cannot take a port between the pick and the bind, nor
 * while a test has the replica stopped.
 */
function clusterHost(): string {
  const octet = () => 1 + Math.floor(Math.random() * 254);
  return `127.${octet()}.${octet()}.${octet()}`;
}

/** A server that exited at start because its port was taken (see the log it was started with). */
const PORT_TAKEN =
  /could not bind|Address already in use|could not create any TCP\/IP sockets|lock file .* already exists/;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Settings for a throwaway server: quick to start, nothing made durable. */
function serverSettings(host: string, port: number, socketDir: string): string {
  return [
    '',
    `port = ${port}`,
    `listen_addresses = '${host}'`,
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
    readonly host: string,
    private currentPort: number,
    private readonly logFile: string,
  ) {}

  /** The port the server listens on (a first start may move it off a port taken meanwhile). */
  get port(): number {
    return this.currentPort;
  }

  /** A connection URL to `database` on this server (user postgres, trust). */
  url(database: string): string {
    return `postgresql://${OS_USER}@${this.host}:${this.port}/${database}`;
  }

  get running(): boolean {
    return this.up;
  }

  /**
   * Starts the server and waits until it accepts connections (a standby: read-only ones).
   * If its port was taken after it was picked, a first start (`movable`) moves to another
   * free port; a restart, whose URL others already hold, waits for the port to come free.
   */
  async start(movable = false): Promise<void> {
    if (this.up) return;
    for (let attempt = 1; ; attempt++) {
      const logged = await readFile(this.logFile, 'utf8').catch(() => '');
      try {
        await pg('pg_ctl', ['start', '-D', this.dataDir, '-l', this.logFile, '-w', '-t', '60']);
        this.up = true;
        return;
      } catch (err) {
        const log = (await readFile(this.logFile, 'utf8').catch(() => '')).slice(logged.length);
        if (!PORT_TAKEN.test(log) || attempt >= (movable ? 5 : 50)) {
          throw new Error(`${this.name} did not start on ${this.host}:${this.port}: ${(err as Error).message}\n${log}`);
        }
        if (movable) {
          this.currentPort = await freePort(this.host);
          // The later line wins.
          await appendFile(join(this.dataDir, 'postgresql.conf'), `\nport = ${this.currentPort}\n`);
        } else {
          await sleep(200);
        }
      }
    }
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
 * directory, on free ports of a loopback address of its own: for tests that stop or pause a database
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
    const host = clusterHost();
    const [primaryPort, replicaPort] = [await freePort(host), await freePort(host)];
    const primary = new PgServer('primary', join(root, 'primary'), host, primaryPort, join(root, 'primary.log'));
    const replica = new PgServer('replica', join(root, 'replica'), host, replicaPort, join(root, 'replica.log'));
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
      await appendFile(join(primary.dataDir, 'postgresql.conf'), serverSettings(host, primaryPort, root));
      await appendFile(
        join(primary.dataDir, 'pg_hba.conf'),
        `\nhost all all ${host}/32 trust\nhost replication all ${host}/32 trust\n`,
      );
      await primary.start(true);
      await primary.query('postgres', `CREATE DATABASE "${database}"`);
      if (options.migrate !== false) await migrate(primary.url(database), MIGRATIONS_DIR);

      await pg('pg_basebackup', [
        ...['-D', replica.dataDir, '-h', host, '-p', String(primary.port), '-U', OS_USER],
        ...['-R', '-X', 'stream', '-c', 'fast', '--no-sync'],
      ]);
      // The copied postgresql.conf carries the primary's port: the later line wins.
      await appendFile(join(replica.dataDir, 'postgresql.conf'), serverSettings(host, replicaPort, root));
      await replica.start(true);
      await cluster.waitForStreaming();
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

  /** The primary's system identifier: a standby made from its base backup has the same. */
  private async primaryIdentity(): Promise<string> {
    const [{ id }] = await this.primary.query<{ id: string }>(
      'postgres',
      'SELECT system_identifier::text AS id FROM pg_control_system()',
    );
    return id;
  }

  /** Fails at once unless the server at the replica's address is a standby of this cluster's primary. */
  private expectOwnStandby(row: { standby: boolean; id: string }, primaryId: string): void {
    if (!row.standby) throw new Error(`the server at ${this.replicaUrl} is not in recovery (not a standby)`);
    if (row.id !== primaryId) {
      throw new Error(`the server at ${this.replicaUrl} is a standby of another primary (system ${row.id})`);
    }
  }

  /**
   * Waits until the replica is a standby of this primary with its WAL receiver
   * streaming from this primary's address: after `start()`, and after a test
   * restarted the replica.
   */
  async waitForStreaming(limitMs = 60_000): Promise<void> {
    const primaryId = await this.primaryIdentity();
    const deadline = Date.now() + limitMs;
    for (;;) {
      const [row] = await this.replica.query<{
        standby: boolean;
        id: string;
        status: string | null;
        port: number | null;
      }>(
        'postgres',
        `SELECT pg_is_in_recovery() AS standby,
                (SELECT system_identifier::text FROM pg_control_system()) AS id,
                r.status, r.sender_port AS port
           FROM (SELECT 1) one LEFT JOIN pg_stat_wal_receiver r ON r.sender_host = $1`,
        [this.primary.host],
      );
      this.expectOwnStandby(row, primaryId);
      if (row.status === 'streaming' && row.port === this.primary.port) return;
      if (Date.now() > deadline) {
        throw new Error(`the replica is not streaming from ${this.primary.host}:${this.primary.port} (${row.status})`);
      }
      await sleep(20);
    }
  }

  /**
   * Waits until the replica has replayed everything the primary had written when called.
   * The target is the primary's insert position, not its write position: with
   * synchronous_commit off, a commit is acknowledged before the WAL writer writes it out,
   * so the write position can still be short of a commit the caller has seen.
   */
  async waitForReplay(limitMs = 60_000): Promise<void> {
    const primaryId = await this.primaryIdentity();
    const [{ lsn }] = await this.primary.query<{ lsn: string }>(
      'postgres',
      'SELECT pg_current_wal_insert_lsn()::text AS lsn',
    );
    const deadline = Date.now() + limitMs;
    for (;;) {
      const [row] = await this.replica.query<{ standby: boolean; id: string; caught: boolean | null }>(
        'postgres',
        `SELECT pg_is_in_recovery() AS standby,
                (SELECT system_identifier::text FROM pg_control_system()) AS id,
                pg_last_wal_replay_lsn() >= $1::pg_lsn AS caught`,
        [lsn],
      );
      this.expectOwnStandby(row, primaryId);
      if (row.caught) return;
      if (Date.now() > deadline) throw new Error(`the replica did not replay up to ${lsn}`);
      await sleep(20);
    }
  }

  /** Pauses the replica's replay and waits until it has paused (a request alone may still let records through). */
  async pauseReplay(limitMs = 60_000): Promise<void> {
    await this.replica.query('postgres', 'SELECT pg_wal_replay_pause()');
    const deadline = Date.now() + limitMs;
    for (;;) {
      const [{ state }] = await this.replica.query<{ state: string }>(
        'postgres',
        'SELECT pg_get_wal_replay_pause_state() AS state',
      );
      if (state === 'paused') return;
      if (Date.now() > deadline) throw new Error(`the replica's replay did not pause (${state})`);
      await sleep(20);
    }
  }

  async resumeReplay(): Promise<void> {
    await this.replica.query('postgres', 'SELECT pg_wal_replay_resume()');
  }

  /** Stops both servers (as a crash: nothing is kept) and deletes the directory. */
  async teardown(): Promise<void> {
    for (const server of [this.replica, this.primary]) await server.stop('immediate').catch(() => undefined);
    await rm(this.root, { recursive: true, force: true });
  }
}
