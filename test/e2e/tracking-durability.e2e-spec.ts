import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { freePort } from '../support/net';
import { join } from 'node:path';
import { Client } from 'pg';
import { createTestDatabase, dropTestDatabase, Api } from '../support/test-app';
import { activeTrip, newWorld, TripWorld } from '../support/trips-fixtures';

/**
 * The app as a separate process, killed or stopped under ping load: every
 * point that got a 2xx must be in the database afterwards.
 */
const ROOT = join(__dirname, '..', '..');

interface Child {
  proc: ChildProcess;
  url: string;
  /** The exit code, or the signal that ended the process. */
  exited: Promise<number | string | null>;
}

async function startChild(databaseUrl: string): Promise<Child> {
  const port = await freePort();
  const proc = spawn(process.execPath, ['-r', 'ts-node/register', join(ROOT, 'src', 'main.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      NODE_ENV: 'test',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl,
      DATABASE_REPLICA_URL: '',
      REDIS_KEY_PREFIX: `test:${randomBytes(6).toString('hex')}:`,
      LOG_LEVEL: 'silent',
      AUTH_RATE_LIMIT_PER_MINUTE: '100000',
      TS_NODE_SWC: 'true',
      TS_NODE_TRANSPILE_ONLY: 'true',
      TS_NODE_PROJECT: join(ROOT, 'tsconfig.json'),
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += String(d)));
  const exited = new Promise<number | string | null>((resolve) =>
    proc.on('exit', (code, signal) => resolve(code ?? signal)),
  );
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    if (proc.exitCode !== null) throw new Error(`app exited: ${stderr}`);
    try {
      if ((await fetch(`${url}/health/live`)).ok) return { proc, url, exited };
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill('SIGKILL');
  throw new Error(`app did not start: ${stderr}`);
}

interface LoadResult {
  acked: string[];
  ok: number;
  failed: number;
  hung: number;
}

/** Workers posting batches of fresh points until told to stop; records every point of every 2xx. */
function runLoad(api: Api, w: TripWorld, tripId: string, workers: number, perRequest: number) {
  let stop = false;
  let seq = 0;
  const base = Date.now() - 3600_000;
  const result: LoadResult = { acked: [], ok: 0, failed: 0, hung: 0 };
  const worker = async () => {
    while (!stop) {
      const locations = Array.from({ length: perRequest }, () => {
        seq += 1;
        return { latitude: 26.9 + seq * 1e-8, longitude: 75.8, timestamp: new Date(base + seq).toISOString() };
      });
      try {
        const res = await fetch(`${api.baseUrl}/tracking/ping`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${w.driver.accessToken}` },
          body: JSON.stringify({ tripId, locations }),
          signal: AbortSignal.timeout(15_000),
        });
        const body = (await res.json()) as { data?: { accepted: number; duplicates: number } };
        if (res.status === 200 && body.data && body.data.accepted + body.data.duplicates === perRequest) {
          result.ok += 1;
          result.acked.push(...locations.map((l) => l.timestamp));
        } else {
          result.failed += 1;
        }
      } catch (err) {
        if ((err as Error).name === 'TimeoutError') result.hung += 1;
        else result.failed += 1;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  const running = Promise.all(Array.from({ length: workers }, worker));
  return {
    result,
    async stop() {
      stop = true;
      await running;
      return result;
    },
  };
}

async function storedTimes(databaseUrl: string, tripId: string): Promise<Set<string>> {
  const sql = new Client({ connectionString: databaseUrl });
  await sql.connect();
  try {
    const rows = await sql.query(`SELECT recorded_at FROM trip_pings WHERE trip_id = $1`, [tripId]);
    return new Set(rows.rows.map((r) => (r.recorded_at as Date).toISOString()));
  } finally {
    await sql.end();
  }
}

async function setUp(): Promise<{ databaseUrl: string; child: Child; api: Api; w: TripWorld; tripId: string }> {
  const databaseUrl = await createTestDatabase();
  const child = await startChild(databaseUrl);
  const api = new Api(`${child.url}/api/v1`);
  const w = await newWorld(api);
  const trip = await activeTrip(api, w);
  const sql = new Client({ connectionString: databaseUrl });
  await sql.connect();
  await sql.query(`UPDATE trips SET created_at = now() - interval '2 hours' WHERE id = $1`, [trip.id]);
  await sql.end();
  return { databaseUrl, child, api, w, tripId: trip.id };
}

describe('tracking durability (the app as a child process)', () => {
  jest.setTimeout(90_000);

  it('SIGKILL under load: every acknowledged point is in the database', async () => {
    const { databaseUrl, child, api, w, tripId } = await setUp();
    try {
      const load = runLoad(api, w, tripId, 8, 10);
      await new Promise((r) => setTimeout(r, 2500));
      child.proc.kill('SIGKILL');
      await child.exited;
      const result = await load.stop();
      expect(result.ok).toBeGreaterThan(10);
      const stored = await storedTimes(databaseUrl, tripId);
      const lost = result.acked.filter((ts) => !stored.has(ts));
      expect(lost).toEqual([]);
    } finally {
      child.proc.kill('SIGKILL');
      await dropTestDatabase(databaseUrl);
    }
  });

  it('SIGTERM under load: nothing acknowledged is lost, no request hangs, the process exits cleanly', async () => {
    const { databaseUrl, child, api, w, tripId } = await setUp();
    try {
      const load = runLoad(api, w, tripId, 8, 10);
      await new Promise((r) => setTimeout(r, 2000));
      child.proc.kill('SIGTERM');
      const code = await child.exited;
      const result = await load.stop();
      // Nest closes the app, then re-raises the signal to end the process.
      expect([0, 'SIGTERM']).toContain(code);
      expect(result.hung).toBe(0);
      expect(result.ok).toBeGreaterThan(10);
      const stored = await storedTimes(databaseUrl, tripId);
      expect(result.acked.filter((ts) => !stored.has(ts))).toEqual([]);
    } finally {
      child.proc.kill('SIGKILL');
      await dropTestDatabase(databaseUrl);
    }
  });
});
