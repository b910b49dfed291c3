/*
 * The per-request tax, as a ladder measured in one run: bare Fastify hello,
 * Nest on Fastify hello, Waybill's GET /health/live, an authenticated GET /me,
 * a trip read (GET /trips/:id of an active trip), 10-point pings paced at 5k
 * points/s, POST /tracking/ping at 1, 10 and 100 points, OsmAnd single fixes,
 * and the raw batched INSERT floor (after a CHECKPOINT, first and last). Each rung: req/s,
 * points/s, p50/p99 and the CPU the app, PostgreSQL and Redis spent per 1,000
 * requests (from /proc). The gaps between rungs show where a request's time
 * goes; on a shared box only the ratios to the floors of the same run compare
 * between runs: HTTP rungs to bare Fastify, ingest rungs to the INSERT floor.
 *
 * The app runs as `npm start` runs it (dist/main.js, NODE_ENV=production, its
 * default WEB_CONCURRENCY unless set); hello servers and app each in their own
 * process, autocannon in this one. BENCH_SECONDS (5) per rung after a 2 s
 * warm-up; BENCH_APP_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles.
 * Prints one JSON line and a table on stderr; never fails on a number.
 */
import autocannon from 'autocannon';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import {
  BenchTrip,
  cannon,
  cpuMeter,
  FixClock,
  freshDatabase,
  insertFloor,
  makeTrips,
  perThousand,
  processTree,
  ROOT,
  round,
  rowsFor,
  runBench,
  startAppProcess,
  startServerProcess,
} from './bench-support';
import { pacedLoad } from './paced-load';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const WARMUP_SECONDS = 2;
const TRIPS = Number(process.env.HTTP_TAX_BENCH_TRIPS ?? 20);
const FLOOR_ROWS = 200_000;
/** 10-point requests a second in the paced rung: 500 is the 5k points/s of the latency goal. */
const PACED_RPS = 500;
const PACED_WARMUP_SECONDS = 8;

interface Rung {
  reqPerSec: number;
  pointsPerSec?: number;
  p50ms: number;
  p99ms: number;
  non2xx: number;
  errors: number;
  /** CPU ms per 1,000 answered requests: app (all its processes), postgres, redis. */
  cpuPer1kReq: Record<string, number>;
  /** For ingest rungs: acknowledged points and points found stored afterwards. */
  acked?: number;
  stored?: number;
}

async function main(): Promise<void> {
  const db = await freshDatabase('tax');
  const hello = (kind: string) =>
    startServerProcess(
      ['-r', 'ts-node/register/transpile-only', join(__dirname, 'hello-servers.ts'), kind],
      {
        TS_NODE_PROJECT: join(ROOT, 'tsconfig.json'),
      },
      '/hello',
    );
  const bare = await hello('fastify');
  const nest = await hello('nest');
  const app = await startAppProcess(
    db.url,
    process.env.WEB_CONCURRENCY ? { WEB_CONCURRENCY: process.env.WEB_CONCURRENCY } : {},
  );
  const sql = new Client({ connectionString: db.url });
  await sql.connect();
  const storedPoints = async () => Number((await sql.query('SELECT count(*)::int AS n FROM trip_pings')).rows[0].n);
  const out: Record<string, unknown> = { bench: 'http-tax', loadavg1m: round(loadavg()[0], 2) };
  const rungs: Record<string, Rung> = {};
  try {
    const { ownerToken, trips } = await makeTrips(app.url, db.url, TRIPS);
    const clock = new FixClock();
    // The INSERT floor twice, first and last, each after a CHECKPOINT (what came before is not its to pay for):
    // the better of the two is this run's floor (a burst of another process's I/O lowers one of them).
    const floorOnce = () =>
      insertFloor(
        db.url,
        rowsFor(
          clock,
          trips.map((t) => t.tripId),
          FLOOR_ROWS,
          50,
        ),
        { checkpoint: true },
      );
    const floorFirst = await floorOnce();
    let rr = 0;
    const nextTrip = (): BenchTrip => trips[rr++ % trips.length];

    const measure = async (
      name: string,
      server: { url: string; proc: { pid?: number } },
      opts: { connections: number; requests?: autocannon.Request[]; path?: string; points?: number },
    ) => {
      const run = (duration: number) =>
        cannon({
          url: server.url + (opts.path ?? ''),
          connections: opts.connections,
          duration,
          requests: opts.requests,
        });
      await run(WARMUP_SECONDS);
      const before = opts.points ? await storedPoints() : 0;
      const cpu = cpuMeter({ app: processTree(server.proc.pid!) });
      const r = await run(SECONDS);
      const { stealMs: _steal, ...used } = cpu();
      const ok = r.requests.total - r.non2xx;
      const rung: Rung = {
        reqPerSec: round(r.requests.average),
        p50ms: r.latency.p50,
        p99ms: r.latency.p99,
        non2xx: r.non2xx,
        errors: r.errors,
        cpuPer1kReq: perThousand(used, Math.max(1, ok)),
      };
      if (opts.points) {
        rung.pointsPerSec = round((ok / SECONDS) * opts.points);
        rung.acked = (r['2xx'] ?? ok) * opts.points;
        rung.stored = (await storedPoints()) - before;
      }
      rungs[name] = rung;
    };

    const ping = (points: number): autocannon.Request[] => [
      {
        method: 'POST',
        path: '/api/v1/tracking/ping',
        setupRequest: (req) => {
          const trip = nextTrip();
          return {
            ...req,
            headers: { 'content-type': 'application/json', authorization: `Bearer ${trip.token}` },
            body: JSON.stringify({ tripId: trip.tripId, locations: clock.take(trip.tripId, points) }),
          };
        },
      },
    ];

    await measure('fastify_hello', bare, { connections: 50, path: '/hello' });
    await measure('nest_hello', nest, { connections: 50, path: '/hello' });
    await measure('health_live', app, { connections: 50, path: '/health/live' });
    await measure('me', app, {
      connections: 50,
      requests: [
        {
          method: 'GET',
          path: '/api/v1/me',
          setupRequest: (req) => ({ ...req, headers: { authorization: `Bearer ${nextTrip().token}` } }),
        },
      ],
    });
    await measure('trip_read', app, {
      connections: 50,
      requests: [
        {
          method: 'GET',
          setupRequest: (req) => ({
            ...req,
            path: `/api/v1/trips/${nextTrip().tripId}`,
            headers: { authorization: `Bearer ${ownerToken}` },
          }),
        },
      ],
    });
    // 10-point pings paced open-loop at 5k points/s (see paced-load.ts): the latency goal. Before the
    // throughput rungs, whose after-flush work and autovacuum would still be running; after 8 s of
    // the same load (a node compiles its hot paths in its first seconds).
    const pacedPings = (seconds: number) =>
      pacedLoad({
        url: app.url,
        rate: PACED_RPS,
        seconds,
        next: () => {
          const trip = nextTrip();
          return {
            method: 'POST',
            path: '/api/v1/tracking/ping',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${trip.token}` },
            body: JSON.stringify({ tripId: trip.tripId, locations: clock.take(trip.tripId, 10) }),
          };
        },
        check: (_status, body) => (JSON.parse(body) as { data: { accepted: number } }).data.accepted === 10,
      });
    await pacedPings(PACED_WARMUP_SECONDS);
    const cpu = cpuMeter({ app: processTree(app.proc.pid!) });
    const paced = await pacedPings(SECONDS * 2);
    const { stealMs: _steal, ...used } = cpu();
    out.paced_ping_10_at_5k_points = {
      achievedPointsPerSec: round(paced.achievedPerSec * 10),
      p50ms: paced.p50ms,
      p99ms: paced.p99ms,
      maxms: paced.maxms,
      non2xx: paced.non2xx,
      errors: paced.errors,
      cpuPer1kReq: perThousand(used, Math.max(1, paced.ok)),
    };

    await measure('ping_1', app, { connections: 64, requests: ping(1), points: 1 });
    await measure('ping_10', app, { connections: 64, requests: ping(10), points: 10 });
    await measure('ping_100', app, { connections: 32, requests: ping(100), points: 100 });
    await measure('osmand', app, {
      connections: 64,
      points: 1,
      requests: [
        {
          method: 'GET',
          setupRequest: (req) => {
            const trip = nextTrip();
            const [f] = clock.take(trip.tripId, 1);
            return {
              ...req,
              path: `/api/v1/tracking/osmand?id=${trip.trackerToken}&lat=${f.latitude}&lon=${f.longitude}&timestamp=${f.timestamp}&speed=2.0&bearing=0&batt=80`,
            };
          },
        },
      ],
    });

    const floorLast = await floorOnce();
    const floor = Math.max(floorFirst, floorLast);
    out.insert_floor = { pointsPerSec: round(floor), first: round(floorFirst), last: round(floorLast) };
    out.rungs = rungs;

    const base = rungs.fastify_hello.reqPerSec;
    out.ratios = {
      nest_hello_over_fastify: round(rungs.nest_hello.reqPerSec / base, 2),
      health_live_over_fastify: round(rungs.health_live.reqPerSec / base, 2),
      me_over_fastify: round(rungs.me.reqPerSec / base, 2),
      trip_read_over_fastify: round(rungs.trip_read.reqPerSec / base, 2),
      osmand_over_fastify: round(rungs.osmand.reqPerSec / base, 2),
      ping_1_points_over_floor: round(rungs.ping_1.pointsPerSec! / floor, 3),
      ping_10_points_over_floor: round(rungs.ping_10.pointsPerSec! / floor, 3),
      ping_100_points_over_floor: round(rungs.ping_100.pointsPerSec! / floor, 3),
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    const row = (name: string, r: Rung) =>
      `${name.padEnd(14)} ${String(r.reqPerSec).padStart(7)} req/s ${String(r.pointsPerSec ?? '').padStart(7)} pts/s ` +
      `p50 ${String(r.p50ms).padStart(4)} p99 ${String(r.p99ms).padStart(4)} ms  cpu/1k app ${r.cpuPer1kReq.appMs} pg ${r.cpuPer1kReq.postgresMs} redis ${r.cpuPer1kReq.redisMs}` +
      (r.non2xx ? `  non2xx ${r.non2xx}` : '') +
      (r.acked !== undefined ? `  acked ${r.acked} stored ${r.stored}` : '');
    process.stderr.write(
      [
        ...Object.entries(rungs).map(([n, r]) => row(n, r)),
        `paced ping 10 @5k pts/s: ${JSON.stringify(out.paced_ping_10_at_5k_points)}`,
        `insert floor ${round(floor)} pts/s (first ${round(floorFirst)}, last ${round(floorLast)})`,
        `ratios ${JSON.stringify(out.ratios)}`,
      ].join('\n') + '\n',
    );
  } finally {
    await sql.end();
    await Promise.all([app.stop(), bare.stop(), nest.stop()]);
    await db.drop();
  }
}

runBench('http-tax', main);
