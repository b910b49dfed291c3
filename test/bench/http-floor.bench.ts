/**
 * The HTTP floor of this machine: what the app answers per second when a
 * request does no work. `GET /health/live` goes through Nest (guards,
 * interceptors, the metrics hook); an unknown route is Fastify's 404 alone.
 * The app in its own process, autocannon (50 connections) in this one.
 * Prints one JSON line; never fails on a number.
 */
import { loadavg } from 'node:os';
import { cannon, freshDatabase, round, runBench, startAppProcess } from './bench-support';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);

async function main(): Promise<void> {
  const db = await freshDatabase('floor');
  const app = await startAppProcess(db.url);
  const out: Record<string, unknown> = { bench: 'http-floor', loadavg1m: round(loadavg()[0], 2) };
  try {
    const hit = (path: string) => cannon({ url: app.url + path, connections: 50, duration: SECONDS });
    await hit('/health/live'); // warm-up
    for (const [name, path] of [
      ['nest_health_live', '/health/live'],
      ['fastify_404', '/api/v1/no-such-route'],
    ]) {
      const r = await hit(path);
      out[name] = { reqPerSec: round(r.requests.average), p50ms: r.latency.p50, p99ms: r.latency.p99 };
    }
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    await app.stop();
    await db.drop();
  }
}

runBench('http-floor', main);
