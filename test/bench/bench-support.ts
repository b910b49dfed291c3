/* Shared by the benchmarks: a migrated database of its own, the app in this process or as a child process, trips. */
import autocannon from 'autocannon';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { join } from 'node:path';
import { Server as SocketIoServer } from 'socket.io';
import { freePort } from '../support/net';
import { Client } from 'pg';
import { createApp } from '../../src/app';
import { AppConfig, loadConfig } from '../../src/infra/config/config';
import { migrate } from '../../src/infra/db/migration-runner';
import { PingRow } from '../../src/modules/tracking/ping-filters';

export const ROOT = join(__dirname, '..', '..');
export const baseConfig = loadConfig({ ...process.env, NODE_ENV: 'test' });

export function dbUrl(name: string): string {
  const url = new URL(baseConfig.databaseUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function freshDatabase(tag: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `waybill_bench_${tag}_${Date.now()}`;
  const url = dbUrl(name);
  await migrate(url, join(ROOT, 'prisma', 'migrations'));
  return {
    url,
    async drop() {
      const admin = new Client({ connectionString: dbUrl('postgres') });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
    },
  };
}

/** The app in this process on a random port, on its own Redis prefix, without rate limits in the way. */
export async function startInProcessApp(
  databaseUrl: string,
  overrides: Partial<AppConfig> = {},
): Promise<{ api: string; close: () => Promise<void> }> {
  const app = await createApp({
    ...baseConfig,
    databaseUrl,
    databaseReplicaUrl: undefined,
    redisKeyPrefix: `bench:${randomBytes(8).toString('hex')}:`,
    logLevel: 'silent',
    authRateLimitPerMinute: 1_000_000,
    authRateLimitPerPhonePerMinute: 1_000_000,
    authRateLimitPerCodePerMinute: 1_000_000,
    pingRateLimitPerMinute: 10_000_000,
    readRateLimitPerMinute: 10_000_000,
    qrPublicRateLimitPerMinute: 10_000_000,
    ...overrides,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.getHttpServer().address() as { port: number }).port;
  return { api: `http://127.0.0.1:${port}/api/v1`, close: () => app.close() };
}

let built = false;

/** Compiles the app to dist/ (what `npm start` runs), once per bench process. */
function buildApp(): void {
  if (built) return;
  const res = spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: ROOT,
      stdio: 'inherit',
    },
  );
  if (res.status !== 0) throw new Error('building the app for the benchmark failed');
  built = true;
}

export interface ServerProcess {
  url: string;
  proc: ChildProcess;
  stop: () => Promise<void>;
}

/** A node server in a child process on a free port (PORT, HOST), once `readyPath` answers 2xx. */
export async function startServerProcess(
  args: string[],
  env: Record<string, string | undefined>,
  readyPath: string,
): Promise<ServerProcess> {
  const port = await freePort();
  // BENCH_APP_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the server under the benchmark's load.
  const nodeArgs = (process.env.BENCH_APP_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const proc = spawn(process.execPath, [...nodeArgs, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', process.env.BENCH_APP_STDOUT ? 'inherit' : 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`${url}${readyPath}`)).ok) break;
    } catch {
      /* starting */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    proc,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

/** The app as `npm start` runs it (compiled, NODE_ENV=production), in a child process. */
export async function startAppProcess(databaseUrl: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  buildApp();
  return startServerProcess(
    [join(ROOT, 'dist', 'main.js')],
    {
      NODE_ENV: 'production',
      JWT_SECRET: 'bench-secret-bench-secret-bench',
      WEBHOOK_SECRET_KEY: 'b2'.repeat(32),
      DATABASE_URL: databaseUrl,
      DATABASE_REPLICA_URL: '',
      REDIS_KEY_PREFIX: `bench:${randomBytes(6).toString('hex')}:`,
      LOG_LEVEL: 'error',
      // A bench is one client hammering from one address with a few users: every limit out of its way.
      AUTH_RATE_LIMIT_PER_MINUTE: '1000000',
      AUTH_RATE_LIMIT_PER_PHONE_PER_MINUTE: '1000000',
      AUTH_RATE_LIMIT_PER_CODE_PER_MINUTE: '1000000',
      PING_RATE_LIMIT_PER_MINUTE: '10000000',
      READ_RATE_LIMIT_PER_MINUTE: '10000000',
      QR_PUBLIC_RATE_LIMIT_PER_MINUTE: '10000000',
      OSMAND_UNKNOWN_TOKEN_LIMIT_PER_MINUTE: '1000000',
      ...env,
    },
    '/health/live',
  );
}

export async function call(url: string, method: string, path: string, body?: unknown, token?: string): Promise<any> {
  const res = await fetch(`${url}/api/v1${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as { data: unknown };
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json.data;
}

let phone = 0;
export const nextPhone = () => `+9180${String(Date.now() % 1e6).padStart(6, '0')}${String(++phone).padStart(3, '0')}`;

export interface BenchTrip {
  tripId: string;
  token: string;
  deviceId: string;
  /** The driver's tracker token (the OsmAnd credential). */
  trackerToken: string;
}

/**
 * One org, `n` drivers, trucks and IN_TRANSIT trips created 60 days ago (so
 * old fixes are accepted), made 10 at a time.
 */
export async function makeTrips(
  url: string,
  databaseUrl: string,
  n: number,
): Promise<{ ownerToken: string; trips: BenchTrip[] }> {
  const owner = await call(url, 'POST', '/auth/register', {
    phone: nextPhone(),
    name: 'Bench Owner',
    password: 'password-123',
  });
  const org = await call(url, 'POST', '/orgs', { name: 'Bench Traders' }, owner.accessToken);
  const trips: BenchTrip[] = [];
  const one = async (i: number) => {
    const driver = await call(url, 'POST', '/auth/register', {
      phone: nextPhone(),
      name: `Driver ${i}`,
      password: 'password-123',
    });
    const deviceId = `bench-${randomBytes(6).toString('hex')}`;
    const profile = await call(
      url,
      'POST',
      `/orgs/${org.id}/drivers`,
      { phone: driver.user.phone, deviceId },
      owner.accessToken,
    );
    const truck = await call(
      url,
      'POST',
      `/orgs/${org.id}/trucks`,
      { number: `BENCH ${i} ${deviceId}` },
      owner.accessToken,
    );
    const trip = await call(
      url,
      'POST',
      '/trips',
      {
        sourceOrgId: org.id,
        destinationOrgId: org.id,
        truckId: truck.id,
        driverId: profile.id,
        startPoint: { name: 'A', lat: 20, lng: 75 },
        endPoint: { name: 'B', lat: 29, lng: 78 },
      },
      owner.accessToken,
    );
    for (const status of ['LOADING', 'IN_TRANSIT'])
      await call(url, 'POST', `/trips/${trip.id}/status`, { status }, owner.accessToken);
    trips.push({ tripId: trip.id, token: driver.accessToken, deviceId, trackerToken: profile.trackerToken });
  };
  for (let i = 0; i < n; i += 10) await Promise.all(Array.from({ length: Math.min(10, n - i) }, (_, j) => one(i + j)));
  const sql = new Client({ connectionString: databaseUrl });
  await sql.connect();
  await sql.query(`UPDATE trips SET created_at = now() - interval '60 days'`);
  await sql.end();
  return { ownerToken: owner.accessToken, trips };
}

/** Fresh, plausible fixes per trip: one second and about a metre apart, starting 59 days ago. */
export class FixClock {
  private readonly next = new Map<string, number>();
  private readonly start = Date.now() - 59 * 86_400_000;
  take(tripId: string, n: number): { latitude: number; longitude: number; timestamp: number }[] {
    const first = this.next.get(tripId) ?? 0;
    this.next.set(tripId, first + n);
    return Array.from({ length: n }, (_, i) => ({
      latitude: 20 + (first + i) * 1e-5,
      longitude: 75,
      timestamp: this.start + (first + i) * 1000,
    }));
  }
}

export const round = (x: number, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits;

/** autocannon as a promise. */
export function cannon(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

/** Runs a benchmark's main; a failure is printed with its name and exits non-zero (`npm run bench` counts it). */
export function runBench(name: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    process.stderr.write(`${name} bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}

/** CPU time (user + system, ms) of one process, from /proc; 0 once it is gone. */
function cpuMsOf(pid: number | string): number {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return 0;
  }
}

function commOf(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** CPU time the hypervisor gave to others while this machine's vCPUs wanted it, all cores (ms, /proc/stat). */
function stealMs(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  return (Number(cpu[8] ?? 0) * 1000) / 100;
}

/**
 * CPU spent during a measured window by named groups of processes (the app
 * node(s), the benchmark's own load generators and watchers), PostgreSQL (all
 * its processes: backends, WAL writer, checkpointer) and Redis, in ms, keyed
 * `<group>Ms`, and the time the hypervisor stole from this machine's cores
 * (`stealMs`). Read from /proc, so it tells where a machine's cores went
 * whatever its speed: the figure to compare two versions of the code by on a
 * noisy box.
 */
export function cpuMeter(groups: Record<string, number[]>): () => Record<string, number> {
  const others = () => {
    const by = { postgres: new Map<string, number>(), redis: new Map<string, number>() };
    for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      const comm = commOf(pid);
      if (comm.startsWith('postgres')) by.postgres.set(pid, cpuMsOf(pid));
      else if (comm.startsWith('redis-server')) by.redis.set(pid, cpuMsOf(pid));
    }
    return by;
  };
  const delta = (before: Map<string, number>, after: Map<string, number>) =>
    [...after].reduce((sum, [pid, ms]) => sum + ms - (before.get(pid) ?? 0), 0);
  const start = Object.fromEntries(Object.entries(groups).map(([name, pids]) => [name, pids.map(cpuMsOf)]));
  const o0 = others();
  const steal0 = stealMs();
  return () => {
    const o1 = others();
    const out: Record<string, number> = {};
    for (const [name, pids] of Object.entries(groups)) {
      out[`${name}Ms`] = Math.round(pids.reduce((sum, pid, i) => sum + cpuMsOf(pid) - start[name][i], 0));
    }
    out.postgresMs = Math.round(delta(o0.postgres, o1.postgres));
    out.redisMs = Math.round(delta(o0.redis, o1.redis));
    out.stealMs = Math.round(stealMs() - steal0);
    return out;
  };
}

/** `total` ping rows spread over the trips, `perTrip` consecutive fixes each in turn. */
export function rowsFor(clock: FixClock, tripIds: string[], total: number, perTrip: number): PingRow[] {
  const rows: PingRow[] = [];
  while (rows.length < total) {
    for (const tripId of tripIds) {
      for (const f of clock.take(tripId, perTrip)) {
        rows.push({
          tripId,
          recordedAt: new Date(f.timestamp),
          lat: f.latitude,
          lng: f.longitude,
          accuracy: 5,
          speed: 1,
          heading: 0,
          altitude: null,
          batchId: null,
        });
      }
    }
  }
  return rows.slice(0, total);
}

/**
 * The ingest floor: the rows written by one connection, 1,000 a statement
 * (the app's conflict rule), in rows a second. `checkpoint` first flushes what
 * earlier scenarios left dirty, so the figure does not pay for their writes.
 */
export async function insertFloor(
  databaseUrl: string,
  rows: PingRow[],
  opts: { checkpoint?: boolean } = {},
): Promise<number> {
  const sql = new Client({ connectionString: databaseUrl });
  await sql.connect();
  if (opts.checkpoint) await sql.query('CHECKPOINT');
  const started = process.hrtime.bigint();
  for (let i = 0; i < rows.length; i += 1000) {
    const part = rows.slice(i, i + 1000);
    const values: unknown[] = [];
    const tuples = part.map((r, j) => {
      values.push(r.tripId, r.recordedAt, r.lat, r.lng, r.accuracy, r.speed, r.heading, r.altitude, r.batchId);
      const b = j * 9;
      return `($${b + 1},$${b + 2},$${b + 3},$${b + 4},$${b + 5},$${b + 6},$${b + 7},$${b + 8},$${b + 9})`;
    });
    await sql.query(
      `INSERT INTO trip_pings (trip_id, recorded_at, lat, lng, accuracy, speed, heading, altitude, batch_id) VALUES ${tuples.join(',')} ON CONFLICT (trip_id, recorded_at) DO NOTHING`,
      values,
    );
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await sql.end();
  return rows.length / seconds;
}

export function percentiles(ms: number[]): { n: number; p50ms: number; p99ms: number; maxms: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN, 1);
  return { n: sorted.length, p50ms: at(0.5), p99ms: at(0.99), maxms: round(sorted[sorted.length - 1] ?? NaN, 1) };
}

/** CPU ms (as cpuMeter reports them) per 1,000 units of work. */
export function perThousand(cpu: Record<string, number>, units: number): Record<string, number> {
  return Object.fromEntries(Object.entries(cpu).map(([k, ms]) => [k, round((ms * 1000) / units, 1)]));
}

/** A process and all its descendants (a clustered app's workers), from /proc. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(pid)]);
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}

/** A bare Socket.IO server (rooms joined on `subscribe`, nothing else): the floor of a broadcast benchmark. */
export async function startSocketIoFloor(): Promise<{ url: string; io: SocketIoServer; close: () => Promise<void> }> {
  const http = createHttpServer();
  const io = new SocketIoServer(http, { path: '/socket.io', serveClient: false, transports: ['websocket'] });
  io.on('connection', (socket) => {
    socket.on('subscribe', ({ room }: { room: string }, ack: (a: unknown) => void) => {
      void socket.join(room);
      ack({ ok: true });
    });
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  const { port } = http.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    io,
    close: () => new Promise<void>((resolve) => void io.close(() => resolve())),
  };
}

export interface PgStatement {
  text: string;
  values: unknown[];
}

/**
 * Records the statements pg clients of this process send whose text matches
 * `match` (to EXPLAIN the query an endpoint really ran, or count them);
 * `restore()` puts pg's own `query` back.
 */
export function tapPgStatements(match: (text: string) => boolean): {
  seen: () => PgStatement[];
  reset: () => void;
  restore: () => void;
} {
  const proto = Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  let seen: PgStatement[] = [];
  proto.query = function (this: unknown, ...args: unknown[]) {
    const first = args[0] as string | { text?: string; values?: unknown[] };
    const text = typeof first === 'string' ? first : (first?.text ?? '');
    const values = typeof first === 'string' ? ((args[1] as unknown[]) ?? []) : (first?.values ?? []);
    if (match(text)) seen.push({ text, values });
    return original.apply(this, args);
  };
  return {
    seen: () => seen,
    reset: () => (seen = []),
    restore: () => (proto.query = original),
  };
}
