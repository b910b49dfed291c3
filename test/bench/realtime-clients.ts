/* The watcher side of realtime.bench.ts, in its own process: socket.io-client sockets and (for the app) the ping load. Driven over IPC. */
import { io, Socket } from 'socket.io-client';
import { FixClock } from './bench-support';

type Cmd =
  | { cmd: 'connect'; url: string; token: string; rooms: string[]; total: number }
  | {
      cmd: 'run';
      mode: 'app' | 'floor';
      url: string;
      rate: number;
      seconds: number;
      trips: { tripId: string; token: string }[];
    }
  | { cmd: 'disconnect' };

let sockets: Socket[] = [];
/** One clock for all runs: fixes already stored would come back as duplicates and publish nothing. */
const clock = new FixClock();
let onLocation: ((payload: LocationPayload, now: number) => void) | null = null;

interface LocationPayload {
  tripId: string;
  room: string;
  seq: number;
  t?: number;
  points: { recordedAt: string }[];
}

function reply(msg: unknown): void {
  process.send!(msg);
}

function connectOne(url: string, token: string, room: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = io(url, {
      path: '/socket.io',
      auth: { token },
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      timeout: 30_000,
    });
    s.on('trip.location', (p: LocationPayload) => onLocation?.(p, Date.now()));
    s.once('connect_error', reject);
    s.once('connect', () => {
      s.timeout(30_000).emit('subscribe', { room }, (err: Error | null, ack: { ok: boolean }) =>
        err || !ack.ok ? reject(err ?? new Error(JSON.stringify(ack))) : resolve(s),
      );
    });
  });
}

async function connect(c: Extract<Cmd, { cmd: 'connect' }>): Promise<void> {
  const started = Date.now();
  while (sockets.length < c.total) {
    const batch = Math.min(100, c.total - sockets.length);
    const base = sockets.length;
    sockets.push(
      ...(await Promise.all(
        Array.from({ length: batch }, (_, i) => connectOne(c.url, c.token, c.rooms[(base + i) % c.rooms.length])),
      )),
    );
  }
  reply({ ok: 'connected', n: sockets.length, ms: Date.now() - started });
}

function percentile(sorted: Float64Array, p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function run(c: Extract<Cmd, { cmd: 'run' }>): Promise<void> {
  const samples: number[] = [];
  const seen = new Set<string>();
  const sentAt = new Map<string, number>();
  /** When the ping's 200 came back: the points are committed, what follows is the event's way to the watchers. */
  const respondedAt = new Map<string, number>();
  const afterResponse: number[] = [];
  let measuring = false;
  let pingErrors = 0;
  const pingMs: number[] = [];
  let pointsSent = 0;
  onLocation = (p, now) => {
    if (!measuring) return;
    seen.add(`${p.room}#${p.seq}`);
    if (c.mode === 'floor') {
      for (let i = 0; i < p.points.length; i++) samples.push(now - p.t!);
      return;
    }
    for (const pt of p.points) {
      const key = `${p.tripId}|${pt.recordedAt}`;
      const t0 = sentAt.get(key);
      if (t0 !== undefined) samples.push(now - t0);
      const t1 = respondedAt.get(key);
      if (t1 !== undefined) afterResponse.push(now - t1);
    }
  };
  const timers: NodeJS.Timeout[] = [];
  if (c.mode === 'app') {
    // Each trip posts twice a second, spread over the half second; points per request make up the rate.
    const perRequest = c.rate / c.trips.length / 2;
    c.trips.forEach((trip, i) => {
      let acc = 0;
      const tick = () => {
        acc += perRequest;
        const n = Math.floor(acc);
        if (!n) return;
        acc -= n;
        const fixes = clock.take(trip.tripId, n);
        const now = Date.now();
        const measured = measuring;
        if (measured) for (const f of fixes) sentAt.set(`${trip.tripId}|${new Date(f.timestamp).toISOString()}`, now);
        pointsSent += n;
        fetch(`${c.url}/api/v1/tracking/ping`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${trip.token}` },
          body: JSON.stringify({ tripId: trip.tripId, locations: fixes }),
        })
          .then(async (res) => {
            const body = (await res.json()) as { data?: { accepted: number } };
            if (res.status !== 200 || body.data?.accepted !== n) pingErrors += 1;
            else if (measured) {
              const done = Date.now();
              pingMs.push(done - now);
              for (const f of fixes) respondedAt.set(`${trip.tripId}|${new Date(f.timestamp).toISOString()}`, done);
            }
          })
          .catch(() => (pingErrors += 1));
      };
      timers.push(
        setTimeout(
          () => {
            tick();
            timers.push(setInterval(tick, 500));
          },
          (i / c.trips.length) * 500,
        ),
      );
    });
  }
  // One second of warm-up, then the measured window, then a second to drain.
  await new Promise((r) => setTimeout(r, 1000));
  measuring = true;
  const sentBefore = pointsSent;
  await new Promise((r) => setTimeout(r, c.seconds * 1000));
  const sentInWindow = pointsSent - sentBefore;
  for (const t of timers) clearTimeout(t);
  await new Promise((r) => setTimeout(r, 1000));
  measuring = false;
  onLocation = null;
  const sorted = Float64Array.from(samples).sort();
  const pings = Float64Array.from(pingMs).sort();
  const after = Float64Array.from(afterResponse).sort();
  reply({
    ok: 'ran',
    samples: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
    // Events of the measured window (those of its last pings arrive during the drain second).
    broadcastsPerSec: Math.round(seen.size / c.seconds),
    pingResponseP50: c.mode === 'app' ? percentile(pings, 50) : undefined,
    pingResponseP99: c.mode === 'app' ? percentile(pings, 99) : undefined,
    afterResponseP50: c.mode === 'app' ? percentile(after, 50) : undefined,
    afterResponseP99: c.mode === 'app' ? percentile(after, 99) : undefined,
    pointsPerSec: c.mode === 'app' ? Math.round(sentInWindow / c.seconds) : undefined,
    pingErrors,
  });
}

process.on('message', (c: Cmd) => {
  const done = (p: Promise<void>) => p.catch((err: Error) => reply({ ok: 'error', message: err.message }));
  if (c.cmd === 'connect') void done(connect(c));
  else if (c.cmd === 'run') void done(run(c));
  else if (c.cmd === 'disconnect') {
    for (const s of sockets) s.disconnect();
    sockets = [];
    reply({ ok: 'disconnected' });
  }
});
process.on('disconnect', () => process.exit(0));
