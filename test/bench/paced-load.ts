/*
 * Open-loop load at a fixed rate: request i is due at start + i / rate, sent
 * then whatever earlier requests are doing (keep-alive pool, a socket per
 * request in flight), and its latency counts from when it was due. A slow
 * answer therefore cannot hold back the requests behind it, and a stall of the
 * client itself shows up in the figures instead of hiding them.
 *
 * Why not autocannon's `overallRate`: it lets each connection send its share
 * of a second back to back as soon as the second starts (500 req/s over 50
 * connections = bursts of 500 requests at the top of every second), and its
 * coordinated-omission correction then records each answer with an expected
 * interval of ceil(1 / per-connection rate) = 1 ms, adding a synthetic sample
 * for every millisecond of a response's latency. Both inflate the tail of a
 * steady-rate measurement.
 */
import { Agent, request } from 'node:http';
import { round } from './bench-support';

export interface PacedRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface PacedResult {
  rate: number;
  seconds: number;
  sent: number;
  ok: number;
  non2xx: number;
  errors: number;
  achievedPerSec: number;
  /** Latency from the moment a request was due, in ms. */
  p50ms: number;
  p90ms: number;
  p99ms: number;
  p999ms: number;
  maxms: number;
  /** Worst lateness of the client itself in sending (its own event loop), ms. */
  maxSendLagMs: number;
  /** p99 of the requests due in each second of the run: tells a warm-up or a single stall from a spread tail. */
  p99msBySecond: number[];
}

/** One request on a keep-alive agent; resolves with the status and the whole body once it has arrived. */
export function sendRequest(agent: Agent, base: URL, r: PacedRequest): Promise<{ status: number; body: string }> {
  const body = r.body === undefined ? undefined : Buffer.from(r.body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: base.hostname,
        port: base.port,
        method: r.method,
        path: r.path,
        headers: { ...r.headers, ...(body ? { 'content-length': String(body.length) } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export async function pacedLoad(opts: {
  url: string;
  rate: number;
  seconds: number;
  next: () => PacedRequest;
  /** Checks a 2xx body; false counts as an error. */
  check?: (status: number, body: string) => boolean;
}): Promise<PacedResult> {
  const base = new URL(opts.url);
  const agent = new Agent({ keepAlive: true, maxSockets: 512 });
  const latencies: number[] = [];
  const bySecond: number[][] = [];
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  let sent = 0;
  let maxSendLag = 0;
  const total = Math.round(opts.rate * opts.seconds);
  const interval = 1000 / opts.rate;
  const start = performance.now() + 5;
  const inFlight = new Set<Promise<void>>();

  const send = (due: number) => {
    const p = sendRequest(agent, base, opts.next()).then(
      ({ status, body }) => {
        if (status >= 200 && status < 300) {
          if (!opts.check || opts.check(status, body)) {
            ok += 1;
            const ms = performance.now() - due;
            latencies.push(ms);
            (bySecond[Math.floor((due - start) / 1000)] ??= []).push(ms);
          } else errors += 1;
        } else non2xx += 1;
      },
      () => {
        errors += 1;
      },
    );
    inFlight.add(p);
    void p.then(() => inFlight.delete(p));
  };

  await new Promise<void>((done) => {
    const tick = () => {
      const now = performance.now();
      while (sent < total && start + sent * interval <= now) {
        const due = start + sent * interval;
        maxSendLag = Math.max(maxSendLag, now - due);
        sent += 1;
        send(due);
      }
      if (sent >= total) return done();
      setTimeout(tick, Math.max(0, start + sent * interval - performance.now()));
    };
    setTimeout(tick, 5);
  });
  const elapsed = (performance.now() - start) / 1000;
  await Promise.all(inFlight);
  agent.destroy();

  const quantile = (sorted: number[], q: number) =>
    round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN, 1);
  const sorted = latencies.sort((a, b) => a - b);
  const at = (q: number) => quantile(sorted, q);
  return {
    rate: opts.rate,
    seconds: opts.seconds,
    sent,
    ok,
    non2xx,
    errors,
    achievedPerSec: round(ok / elapsed),
    p50ms: at(0.5),
    p90ms: at(0.9),
    p99ms: at(0.99),
    p999ms: at(0.999),
    maxms: round(sorted[sorted.length - 1] ?? NaN, 1),
    maxSendLagMs: round(maxSendLag, 1),
    p99msBySecond: Array.from(bySecond, (s) =>
      quantile(
        (s ?? []).sort((a, b) => a - b),
        0.99,
      ),
    ),
  };
}
