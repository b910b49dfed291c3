/*
 * Live watching: ping-to-watcher latency with 1k and 5k sockets over 200 trips
 * at 1k and 5k points/s, the app's RSS per 1k sockets and broadcasts/s, next to
 * a bare Socket.IO server broadcasting the same payloads (the floor). The app
 * runs as a child process, the watchers in REALTIME_BENCH_WATCHER_PROCS others
 * (default 2) and the ping load in one more; the floor server runs in this
 * process. Then the same with two app nodes on one database and Redis
 * (`app2`): watcher process k connects to node k % 2, and each trip's requests
 * alternate between the nodes, so most events cross Redis. One JSON line;
 * never fails on a number.
 */
import { ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { loadavg, setPriority } from 'node:os';
import { join } from 'node:path';
import { Server } from 'socket.io';
import { randomBytes } from 'node:crypto';
import {
  cpuMeter,
  freshDatabase,
  makeTrips,
  round,
  runBench,
  startAppProcess,
  startSocketIoFloor,
} from './bench-support';

const TRIPS = Number(process.env.REALTIME_BENCH_TRIPS ?? 200);
const SECONDS = Number(process.env.REALTIME_BENCH_SECONDS ?? 5);
/**
 * Seconds of the same load before each measured window (`REALTIME_BENCH_WARMUP_S`): the app's first seconds
 * under a new load compile its hot paths and open the load's connections, which is not the steady state.
 */
const WARMUP_S = Number(process.env.REALTIME_BENCH_WARMUP_S ?? 3);
/** Comma-separated lists narrow a run to some scenarios (quicker iterations), e.g. REALTIME_BENCH_WATCHERS=5000. */
const listOf = (name: string, all: string[]) => (process.env[name] ? process.env[name]!.split(',') : all);
const WATCHERS = listOf('REALTIME_BENCH_WATCHERS', ['1000', '5000']).map(Number);
/** Processes the watching sockets are spread over (one event loop for 5k sockets stalls and skews the figures). */
const WATCHER_PROCS = Number(process.env.REALTIME_BENCH_WATCHER_PROCS ?? 2);
const RATES = listOf('REALTIME_BENCH_RATES', ['1000', '5000']).map(Number);
/** `app` (one node), `floor` (bare Socket.IO), `app2` (two nodes). */
const TARGETS = listOf('REALTIME_BENCH_TARGETS', ['app', 'floor', 'app2']);
/**
 * Niceness of the watcher and load processes (`REALTIME_BENCH_CLIENT_NICE`, 0 = as the app). Clients stand
 * in for other machines; niced, they cannot take a core from the app when it has work, and since latency
 * is taken at the clients, any wait of theirs still counts in the figures.
 */
const CLIENT_NICE = Number(process.env.REALTIME_BENCH_CLIENT_NICE ?? 0);
/** The whole bench stays within four minutes: past this it prints what it has. */
const DEADLINE_MS = 240_000;

interface Trip {
  tripId: string;
  token: string;
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return round(Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024, 1);
}

/** Merged per-millisecond histograms → p50 / p99 / max. */
function fromHistograms(parts: number[][]): { n: number; p50: number; p99: number; max: number } {
  const h: number[] = [];
  for (const part of parts) part.forEach((c, i) => (h[i] = (h[i] ?? 0) + c));
  const n = h.reduce((a, c) => a + (c ?? 0), 0);
  const at = (q: number) => {
    let acc = 0;
    for (let i = 0; i < h.length; i++) {
      acc += h[i] ?? 0;
      if (acc > q * n) return i;
    }
    return NaN;
  };
  return { n, p50: at(0.5), p99: at(0.99), max: n ? h.length - 1 : NaN };
}

async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 1500));
}

/** RSS once it has stopped falling (a node just started frees its start-up heap for a few seconds). */
async function steadyRss(read: () => number): Promise<number> {
  let last = read();
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 500));
    const now = read();
    if (Math.abs(now - last) < 1) return now;
    last = now;
  }
  return last;
}

class Clients {
  private constructor(private readonly proc: ChildProcess) {}
  static start(): Clients {
    const proc = fork(join(__dirname, 'realtime-clients.ts'), [], {
      execArgv: ['-r', 'ts-node/register/transpile-only'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    if (CLIENT_NICE) setPriority(proc.pid!, CLIENT_NICE);
    return new Clients(proc);
  }
  async ask<T = any>(msg: unknown): Promise<T> {
    this.proc.send(msg as object);
    const [reply] = (await once(this.proc, 'message')) as [T & { ok: string; message?: string }];
    if (reply.ok === 'error') throw new Error(reply.message);
    return reply;
  }
  get pid(): number {
    return this.proc.pid!;
  }
  stop(): void {
    this.proc.kill();
  }
}

/** Floor load: per trip, twice a second, one broadcast with the points of that half second. */
function floorLoad(io: Server, trips: Trip[], rate: number, seconds: number): Promise<void> {
  const perEvent = rate / trips.length / 2;
  const timers: NodeJS.Timeout[] = [];
  let fix = 0;
  trips.forEach((trip, i) => {
    let acc = 0;
    let seq = 0;
    const room = `trip:${trip.tripId}`;
    const tick = () => {
      acc += perEvent;
      const n = Math.floor(acc);
      if (!n) return;
      acc -= n;
      const points = Array.from({ length: n }, () => ({
        lat: 20 + ++fix * 1e-5,
        lng: 75,
        speed: 1,
        heading: 0,
        recordedAt: new Date(Date.now() - 60_000).toISOString(),
      }));
      io.to(room).emit('trip.location', { tripId: trip.tripId, points, room, seq: ++seq, t: Date.now() });
    };
    timers.push(
      setTimeout(
        () => {
          tick();
          timers.push(setInterval(tick, 500));
        },
        (i / trips.length) * 500,
      ),
    );
  });
  return new Promise(
    (resolve) =>
      setTimeout(
        () => {
          for (const t of timers) clearTimeout(t);
          resolve();
        },
        (seconds + 1) * 1000,
      ), // the clients' warm-up second and measured window
  );
}

async function main(): Promise<void> {
  const begun = Date.now();
  const timeLeft = () => DEADLINE_MS - (Date.now() - begun);
  const result: Record<string, unknown> = {
    bench: 'realtime',
    trips: TRIPS,
    seconds: SECONDS,
    cpus: 2,
    loadavg1mAtStart: round(loadavg()[0], 2),
  };
  const db = await freshDatabase('realtime');
  const adapter = process.env.REALTIME_BENCH_ADAPTER ?? 'sharded';
  result.adapter = adapter;
  const appEnv = {
    REALTIME_REAUTHORIZE_MS: '3600000',
    DATABASE_POOL_MAX: '10',
    REALTIME_REDIS_ADAPTER: adapter,
    // One key prefix for both nodes of the two-node run: one set of adapter channels, room logs and seqs.
    REDIS_KEY_PREFIX: `bench:${randomBytes(6).toString('hex')}:`,
  };
  const app = await startAppProcess(db.url, appEnv);
  // The second node starts now, idle until the two-node run: by then its start-up heap is freed and its RSS steady.
  const nodeB = await startAppProcess(db.url, appEnv);
  const watcherProcs = Array.from({ length: WATCHER_PROCS }, () => Clients.start());
  const loadProc = Clients.start();
  result.watcherProcesses = WATCHER_PROCS;
  const floor = await startSocketIoFloor();
  const guard = setTimeout(() => {
    result.incomplete = 'stopped at the time bound';
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  }, DEADLINE_MS + 5000);
  try {
    const setupStarted = Date.now();
    const { ownerToken, trips } = await makeTrips(app.url, db.url, TRIPS);
    result.setupSeconds = round((Date.now() - setupStarted) / 1000, 1);
    const rooms = trips.map((t) => `trip:${t.tripId}`);

    for (const target of ['app', 'floor', 'app2'] as const) {
      if (!TARGETS.includes(target)) continue;
      if (target === 'app2' && timeLeft() < 30_000) break;
      /** The nodes' URLs: watcher process k connects to nodes[k % nodes.length]. */
      const nodes = target === 'app' ? [app.url] : target === 'app2' ? [app.url, nodeB.url] : [floor.url];
      const pids =
        target === 'floor' ? [process.pid] : target === 'app' ? [app.proc.pid!] : [app.proc.pid!, nodeB.proc.pid!];
      /** RSS of the serving process(es), summed. */
      const rss = () =>
        round(
          pids.reduce((sum, p) => sum + rssMb(p), 0),
          1,
        );
      await settle();
      const rssIdle = await steadyRss(rss);
      const figures: Record<string, unknown> = { rssIdleMb: rssIdle };
      for (const watchers of WATCHERS) {
        if (timeLeft() < 15_000) break;
        const share = Math.ceil(watchers / watcherProcs.length);
        const connected = await Promise.all(
          watcherProcs.map((w, k) =>
            w.ask<{ ms: number }>({
              cmd: 'connect',
              url: nodes[k % nodes.length],
              token: ownerToken,
              rooms,
              total: share,
              offset: k * share,
            }),
          ),
        );
        await settle();
        const rssNow = rss();
        figures[`w${watchers}`] = {
          connectSeconds: round(Math.max(...connected.map((c) => c.ms)) / 1000, 1),
          rssMb: rssNow,
          // Per process only: the sum of two processes' RSS moves with their collections by more than the sockets add.
          ...(pids.length === 1
            ? { rssPer1kSocketsMb: round(((rssNow - rssIdle) / (share * watcherProcs.length)) * 1000, 1) }
            : {}),
        };
        for (const rate of RATES) {
          if (timeLeft() < (SECONDS + WARMUP_S + 2) * 1000) break;
          const watched = Promise.all(
            watcherProcs.map((w) =>
              w.ask<any>({
                cmd: 'watch',
                mode: target === 'floor' ? 'floor' : 'app',
                seconds: SECONDS,
                warmupSeconds: target === 'floor' ? 1 : WARMUP_S,
              }),
            ),
          );
          /** What the watcher processes saw: latency histograms merged, distinct events per second. */
          const seenBy = (outs: { latency: number[]; seen: string[] }[]) => {
            const lat = fromHistograms(outs.map((o) => o.latency));
            const events = new Set(outs.flatMap((o) => o.seen));
            return {
              p50Ms: lat.p50,
              p99Ms: lat.p99,
              maxMs: lat.max,
              samples: lat.n,
              broadcastsPerSec: Math.round(events.size / SECONDS),
            };
          };
          if (target === 'floor') {
            await floorLoad(floor.io, trips, rate, SECONDS);
            figures[`w${watchers}_r${rate}`] = seenBy(await watched);
            continue;
          }
          const cpu = cpuMeter({ app: pids, watchers: watcherProcs.map((w) => w.pid), load: [loadProc.pid] });
          const loadStarted = performance.now();
          const loaded = await loadProc.ask<any>({
            cmd: 'load',
            urls: nodes,
            rate,
            seconds: SECONDS,
            warmupSeconds: WARMUP_S,
            trips,
          });
          await watched;
          const used = cpu();
          const loadMs = performance.now() - loadStarted;
          const joined = await Promise.all(
            watcherProcs.map((w) =>
              w.ask<any>({ cmd: 'join', sentAt: loaded.sentAt, respondedAt: loaded.respondedAt }),
            ),
          );
          const after = fromHistograms(joined.map((j) => j.afterResponse));
          const ping = fromHistograms([loaded.pingMs]);
          figures[`w${watchers}_r${rate}`] = {
            ...seenBy(joined),
            pointsPerSec: loaded.pointsPerSec,
            pingErrors: loaded.pingErrors,
            pingResponseP50Ms: ping.p50,
            pingResponseP99Ms: ping.p99,
            pingResponseP99MsBySecond: (loaded.pingMsBySecond as number[][]).map((h) => fromHistograms([h ?? []]).p99),
            responseToWatcherP50Ms: after.p50,
            responseToWatcherP99Ms: after.p99,
            // Shares of one core over the window, summed over the serving node(s): where this box's two cores went.
            coreShare: Object.fromEntries(
              Object.entries(used).map(([k, ms]) => [k.replace(/Ms$/, ''), round(ms / loadMs, 2)]),
            ),
          };
        }
      }
      await Promise.all(watcherProcs.map((w) => w.ask({ cmd: 'disconnect' })));
      result[target] = figures;
    }
  } finally {
    clearTimeout(guard);
    for (const w of [...watcherProcs, loadProc]) w.stop();
    await floor.close();
    await nodeB.stop();
    await app.stop();
    await db.drop();
  }
  result.loadavg1mAtEnd = round(loadavg()[0], 2);
  result.totalSeconds = round((Date.now() - begun) / 1000, 1);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

runBench('realtime', main);
