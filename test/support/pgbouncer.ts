import { ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, stopChild } from './net';

/** Debian's PgBouncer (override with PGBOUNCER_BIN). */
const PGBOUNCER_BIN = process.env.PGBOUNCER_BIN ?? '/usr/sbin/pgbouncer';
/** PgBouncer refuses to run as root: it runs as this OS user then. */
const OS_USER = 'postgres';

export interface PgBouncerOptions {
  /** The server PgBouncer forwards to. */
  host: string;
  port: number;
  database: string;
  /** Server connections per database/user pair (PgBouncer's `default_pool_size`). */
  poolSize: number;
  /** Client connections it accepts in all (`max_client_conn`). */
  maxClients?: number;
  /** The user clients log in as (auth_type trust: listed in the userlist, no password checked). */
  user?: string;
  /** PgBouncer's `query_timeout` (seconds): what `statement_timeout` does for a direct connection. 0: none. */
  queryTimeoutS?: number;
}

/**
 * A PgBouncer of its own in transaction mode, config in a temporary
 * directory, listening on a free port of the loopback address of the server it
 * fronts. `url` is what app nodes dial (with `?pgbouncer=true`).
 */
export class PgBouncer {
  private exited = false;
  private output = '';

  private constructor(
    private readonly dir: string,
    private readonly proc: ChildProcess,
    readonly host: string,
    readonly port: number,
    readonly database: string,
    readonly user: string,
  ) {
    proc.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    proc.once('exit', () => (this.exited = true));
  }

  /** The pgbouncer.ini written for `opts` (listening on `listenHost:listenPort`). */
  static config(opts: PgBouncerOptions, listenHost: string, listenPort: number, userlist: string): string {
    return [
      '[databases]',
      `${opts.database} = host=${opts.host} port=${opts.port} dbname=${opts.database}`,
      '',
      '[pgbouncer]',
      `listen_addr = ${listenHost}`,
      `listen_port = ${listenPort}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${userlist}`,
      'pool_mode = transaction',
      `default_pool_size = ${opts.poolSize}`,
      'reserve_pool_size = 0',
      `max_client_conn = ${opts.maxClients ?? 100}`,
      'server_check_delay = 1',
      `query_timeout = ${opts.queryTimeoutS ?? 0}`,
      'log_connections = 0',
      'log_disconnections = 0',
      '',
    ].join('\n');
  }

  static async start(opts: PgBouncerOptions): Promise<PgBouncer> {
    const user = opts.user ?? OS_USER;
    const dir = await mkdtemp(join(tmpdir(), 'waybill-pgbouncer-'));
    await chmod(dir, 0o755);
    const userlist = join(dir, 'userlist.txt');
    await writeFile(userlist, `"${user}" ""\n`, { mode: 0o644 });
    for (let attempt = 1; ; attempt++) {
      const port = await freePort(opts.host);
      const ini = join(dir, 'pgbouncer.ini');
      await writeFile(ini, PgBouncer.config(opts, opts.host, port, userlist), { mode: 0o644 });
      const [cmd, argv] =
        process.getuid?.() === 0 ? ['runuser', ['-u', OS_USER, '--', PGBOUNCER_BIN, ini]] : [PGBOUNCER_BIN, [ini]];
      const proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
      const bouncer = new PgBouncer(dir, proc, opts.host, port, opts.database, user);
      if (await bouncer.listening()) return bouncer;
      await bouncer.stop(false);
      if (attempt >= 5) {
        await rm(dir, { recursive: true, force: true });
        throw new Error(`pgbouncer did not start on ${opts.host}:${port}:\n${bouncer.output}`);
      }
    }
  }

  /** `postgresql://user@host:port/db?pgbouncer=true`: the DATABASE_URL of an app node behind it. */
  get url(): string {
    return `postgresql://${this.user}@${this.host}:${this.port}/${this.database}?pgbouncer=true`;
  }

  /** What PgBouncer has logged so far. */
  get log(): string {
    return this.output;
  }

  /** Waits until the port accepts connections (false if the process exited first). */
  private async listening(limitMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + limitMs;
    while (Date.now() < deadline) {
      if (this.exited) return false;
      const ok = await new Promise<boolean>((resolve) => {
        const socket = connect(this.port, this.host);
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
      if (ok) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return false;
  }

  /** Stops PgBouncer (SIGTERM: immediate shutdown) and, unless told otherwise, deletes its directory. */
  async stop(removeDir = true): Promise<void> {
    await stopChild(this.proc, 'SIGTERM');
    if (removeDir) await rm(this.dir, { recursive: true, force: true });
  }
}
