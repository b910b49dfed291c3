/* Ping ingest, side by side: the physical floor, PingWriter alone (two insert statements), the full HTTP path, OsmAnd, latency at 5k points/s. */
import autocannon from 'autocannon';
import { loadavg } from 'node:os';
import { Client } from 'pg';
import { PingRow } from '../../src/modules/tracking/ping-filters';
import { createApp } from '../../src/app';
import { PingWriter } from '../../src/modules/tracking/ping-writer';
import { TrackingRepository } from '../../src/modules/tracking/tracking.repository';
import {
  baseConfig,
  cannon,
  cpuMeter,
  FixClock,
  freshDatabase,
  insertFloor as floor,
  makeTrips,
  percentiles,
  perThousand,
  round,
  rowsFor,
  runBench,
  startAppProcess,
} from './bench-support';
import { pacedLoad } from './paced-load';

/** IN_TRANSIT trips the load spreads over (`TRACKING_BENCH_TRIPS`; the realtime bench uses 200). */
const TRIPS = Number(process.env.TRACKING_BENCH_TRIPS ?? 20);
const FLOOR_ROWS = 200_000;
const WRITER_ROWS = 200_000;
const HTTP_SECONDS = 10;
/** `TRACKING_BENCH_ONLY=steady` runs only the 5k points/s latency scenario (quicker iterations, same figures). */
const ONLY = process.env.TRACKING_BENCH_ONLY;
/** Requests a second of 10 points in the steady scenarios: 500 is the 5k points/s the goal names; another rate compares CPU per point on a slower machine. */
const STEADY_RPS = Number(process.env.TRACKING_BENCH_STEADY_RPS ?? 500);
/**
 * Seconds of the same paced load before the measured one (`TRACKING_BENCH_WARMUP_S`): a node that has
 * just started compiles its hot paths for the first several seconds, which is not the steady state a
 * node in service runs in. The measured window's per-second p99 shows what is left of it.
 */
const WARMUP_S = Number(process.env.TRACKING_BENCH_WARMUP_S ?? 8);

async function writerAlone(databaseUrl: string, rows: PingRow[], strategy: 'unnest' | 'prisma'): Promise<number> {
  const app = await createApp({
    ...baseConfig,
    databaseUrl,
    databaseReplicaUrl: undefined,
    logLevel: 'error',
    redisKeyPrefix: `bench:w:${Date.now()}:`,
  });
  await app.init();
  const writer = app.get(PingWriter);
  const repo = app.get(TrackingRepository);
  writer.insert = strategy === 'unnest' ? (r) => repo.insertPings(r) : (r) => repo.insertPingsWithPrisma(r);
  const perRequest = 100;
  const concurrency = 50;
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < rows.length) {
        const part = rows.slice(next, next + perRequest);
        next += perRequest;
        await writer.write(part);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await app.close();
  return rows.length / seconds;
}

function startProbes(appUrl: string, databaseUrl: string) {
  let stopped = false;
  const http: number[] = [];
  const db: number[] = [];
  const every = (fn: () => Promise<void>) =>
    (async () => {
      while (!stopped) {
        await fn();
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
  const sql = new Client({ connectionString: databaseUrl });
  const ready = sql.connect().then(() => sql.query('CREATE TABLE IF NOT EXISTS bench_probe (at timestamptz NOT NULL)'));
  const loops = [
    every(async () => {
      const t0 = performance.now();
      await (await fetch(`${appUrl}/health/live`)).arrayBuffer();
      http.push(performance.now() - t0);
    }),
    ready.then(() =>
      every(async () => {
        const t0 = performance.now();
        await sql.query('INSERT INTO bench_probe VALUES (now())');
        db.push(performance.now() - t0);
      }),
    ),
  ];
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
      await sql.end();
      return { http: percentiles(http), db: percentiles(db) };
    },
  };
}

async function main(): Promise<void> {
  const db = await freshDatabase('tracking');
  const app = await startAppProcess(db.url);
  try {
    const { trips } = await makeTrips(app.url, db.url, TRIPS);
    const tripIds = trips.map((t) => t.tripId);
    const clock = new FixClock();

    const full = ONLY !== 'steady';
    let rr = 0;
    const pingRequests = (points: number): autocannon.Request[] => [
      {
        method: 'POST',
        path: '/api/v1/tracking/ping',
        setupRequest: (req) => {
          const trip = trips[rr++ % trips.length];
          return {
            ...req,
            headers: { 'content-type': 'application/json', authorization: `Bearer ${trip.token}` },
            body: JSON.stringify({ tripId: trip.tripId, locations: clock.take(trip.tripId, points) }),
          };
        },
      },
    ];
    const http = async (points: number, connections: number) => {
      const r = await cannon({ url: app.url, connections, duration: HTTP_SECONDS, requests: pingRequests(points) });
      return {
        pointsPerSec: round(
          r.requests.average * points * (r.non2xx ? (r.requests.total - r.non2xx) / r.requests.total : 1),
          0,
        ),
        reqPerSec: round(r.requests.average),
        p50ms: r.latency.p50,
        p99ms: r.latency.p99,
        non2xx: r.non2xx,
        errors: r.errors,
      };
    };
    // 5,000 points/s (STEADY_RPS requests a second of 10 points, spread over the trips),
    // paced open-loop (see paced-load.ts): one request every 1000 / STEADY_RPS ms (2 ms at the
    // default), latency from when it was due. The same load first warms the node up (JIT, pools, caches), not counted.
    const pacedPings = (seconds: number) =>
      pacedLoad({
        url: app.url,
        rate: STEADY_RPS,
        seconds,
        next: () => {
          const trip = trips[rr++ % trips.length];
          return {
            method: 'POST',
            path: '/api/v1/tracking/ping',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${trip.token}` },
            body: JSON.stringify({ tripId: trip.tripId, locations: clock.take(trip.tripId, 10) }),
          };
        },
        check: (_status, body) => (JSON.parse(body) as { data: { accepted: number } }).data.accepted === 10,
      });
    if (WARMUP_S > 0) await pacedPings(WARMUP_S);
    // Probes during the steady runs, to tell the app's latency from this machine's: the same HTTP stack with
    // no work (GET /health/live) and a one-row INSERT + commit on a connection of its own, each every 10 ms.
    let probes = startProbes(app.url, db.url);
    const cpu = cpuMeter({ app: [app.proc.pid!], loadgen: [process.pid] }); // this process: the paced load and the probes
    const paced = await pacedPings(HTTP_SECONDS);
    const pacedCpu = cpu();
    const { stealMs: _steal, ...processCpu } = pacedCpu;
    const pacedProbes = await probes.stop();
    // The same rate as autocannon's `overallRate` gives it (bursts at the top of each second), for comparison.
    probes = startProbes(app.url, db.url);
    const steady = await cannon({
      url: app.url,
      connections: 50,
      overallRate: STEADY_RPS,
      duration: HTTP_SECONDS,
      requests: pingRequests(10),
    });
    const probed = await probes.stop();

    // The throughput scenarios after the steady one: they write about a million rows in a minute, and the
    // checkpoint and autovacuum that follow such a burst are not the steady state the 5k points/s figure is for.
    const floorRate = full ? await floor(db.url, rowsFor(clock, tripIds, FLOOR_ROWS, 50)) : NaN;
    const writerUnnest = full ? await writerAlone(db.url, rowsFor(clock, tripIds, WRITER_ROWS, 100), 'unnest') : NaN;
    const writerPrisma = full ? await writerAlone(db.url, rowsFor(clock, tripIds, WRITER_ROWS, 100), 'prisma') : NaN;

    const skipped = { pointsPerSec: NaN, reqPerSec: NaN, p50ms: NaN, p99ms: NaN, non2xx: 0, errors: 0 };
    const http10 = full ? await http(10, 64) : skipped;
    const http100 = full ? await http(100, 32) : skipped;

    const osmand = !full
      ? { requests: { average: NaN }, latency: { p50: NaN, p99: NaN }, non2xx: 0 }
      : await cannon({
          url: app.url,
          connections: 64,
          duration: HTTP_SECONDS,
          requests: [
            {
              method: 'GET',
              setupRequest: (req) => {
                const trip = trips[rr++ % trips.length];
                const [f] = clock.take(trip.tripId, 1);
                return {
                  ...req,
                  path: `/api/v1/tracking/osmand?id=${trip.trackerToken}&lat=${f.latitude}&lon=${f.longitude}&timestamp=${f.timestamp}&speed=2.0&bearing=0&batt=80`,
                };
              },
            },
          ],
        });

    const result = {
      bench: 'tracking',
      only: ONLY ?? 'all',
      trips: TRIPS,
      settings: {
        steadyPointsPerSec: STEADY_RPS * 10,
        warmupSeconds: WARMUP_S,
        PING_WRITER_MAX_IN_FLIGHT: process.env.PING_WRITER_MAX_IN_FLIGHT ?? 'default',
        TRIP_STATE_CACHE_MS: process.env.TRIP_STATE_CACHE_MS ?? 'default',
      },
      loadavg1m: round(loadavg()[0], 2),
      floor_pg_insert_1000_rows_per_stmt: { pointsPerSec: round(floorRate) },
      pingWriter_alone: {
        unnest: { pointsPerSec: round(writerUnnest) },
        prisma_createManyAndReturn: { pointsPerSec: round(writerPrisma) },
      },
      http_ping_10_points: http10,
      http_ping_100_points: http100,
      osmand_single_point: {
        pointsPerSec: round(osmand.requests.average),
        p50ms: osmand.latency.p50,
        p99ms: osmand.latency.p99,
        non2xx: osmand.non2xx,
      },
      at_5k_points_per_sec: {
        achievedPointsPerSec: round(paced.achievedPerSec * 10),
        p50ms: paced.p50ms,
        p90ms: paced.p90ms,
        p99ms: paced.p99ms,
        p999ms: paced.p999ms,
        maxms: paced.maxms,
        non2xx: paced.non2xx,
        errors: paced.errors,
        clientMaxSendLagMs: paced.maxSendLagMs,
        p99msBySecond: paced.p99msBySecond,
        // CPU ms per 1,000 points stored, by process; the app's share of one core over the window.
        cpuMsPer1kPoints: perThousand(processCpu, paced.ok * 10),
        appCoreShare: round(pacedCpu.appMs / (HTTP_SECONDS * 1000), 2),
        // CPU time the hypervisor took from this machine's two cores during the window (ms).
        stealMs: pacedCpu.stealMs,
        probe_health_live: pacedProbes.http,
        probe_db_commit_1_row: pacedProbes.db,
      },
      at_5k_points_per_sec_autocannon_overallRate: {
        achievedPointsPerSec: round(steady.requests.average * 10),
        p50ms: steady.latency.p50,
        p90ms: steady.latency.p90,
        p99ms: steady.latency.p99,
        maxms: steady.latency.max,
        non2xx: steady.non2xx,
        probe_health_live: probed.http,
        probe_db_commit_1_row: probed.db,
      },
      ratio_http100_over_floor: round(http100.pointsPerSec / floorRate, 2),
      ratio_http10_over_floor: round(http10.pointsPerSec / floorRate, 2),
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await app.stop();
    await db.drop();
  }
}

runBench('tracking', main);
