/*
 * The client side of realtime.bench.ts, driven over IPC. A process is either a
 * watcher (socket.io-client sockets, a share of all of them) or the ping load
 * (app mode; no sockets, so its clock is not held up by theirs). Watchers
 * record when each point arrives; the load's send and answer times are joined
 * with those receipts after the window.
 */
import { Agent } from 'node:http';
import { io, Socket } from 'socket.io-client';
import { FixClock } from './bench-support';
import { sendRequest } from './paced-load';

type Cmd =
  | { cmd: 'connect'; url: string; token: string; rooms: string[]; total: number; offset: number }
  | { cmd: 'watch'; mode: 'app' | 'floor'; seconds: number; warmupSeconds: number }
  | { cmd: 'join'; sentAt: [string, number][]; respondedAt: [string, number][] }
  | {
      cmd: 'load';
      urls: string[];
      rate: number;
      seconds: number;
      warmupSeconds: number;
      trips: { tripId: string; token: string }[];
    }
  | { cmd: 'disconnect' };

/** Latencies as counts per whole millisecond: cheap to send over IPC and to merge. */
type Histogram = number[];
function record(h: Histogram, ms: number): void {
  const i = Math.max(0, Math.round(ms));
  while (h.length <= i) h.push(0);
  h[i] += 1;
}

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
        Array.from({ length: batch }, (_, i) =>
          connectOne(c.url, c.token, c.rooms[(c.offset + base + i) % c.rooms.length]),
        ),
      )),
    );
  }
  reply({ ok: 'connected', n: sockets.length, ms: Date.now() - started });
}

/**
 * What this watcher process received during a window. Floor: latencies directly. App: receipts to join with
 * the load's times later, kept compact so that a long window does not grow this process's heap (and its GC,
 * which competes with the app for the box's cores): each event's point keys once, then one (event, time)
 * pair per socket that received it.
 */
class Receipts {
  readonly events = new Map<string, number>();
  readonly pointKeys: string[][] = [];
  private event = new Int32Array(1 << 16);
  private at = new Float64Array(1 << 16);
  length = 0;

  add(p: LocationPayload, now: number): void {
    const id = `${p.room}#${p.seq}`;
    let e = this.events.get(id);
    if (e === undefined) {
      e = this.pointKeys.length;
      this.events.set(id, e);
      this.pointKeys.push(p.points.map((pt) => `${p.tripId}|${pt.recordedAt}`));
    }
    if (this.length === this.event.length) {
      const event = new Int32Array(this.length * 2);
      const at = new Float64Array(this.length * 2);
      event.set(this.event);
      at.set(this.at);
      this.event = event;
      this.at = at;
    }
    this.event[this.length] = e;
    this.at[this.length++] = now;
  }

  forEach(fn: (pointKey: string, at: number) => void): void {
    for (let i = 0; i < this.length; i++) for (const key of this.pointKeys[this.event[i]]) fn(key, this.at[i]);
  }
}

let receipts = new Receipts();
let floorLatency: Histogram = [];
let seen = new Set<string>();

async function watch(c: Extract<Cmd, { cmd: 'watch' }>): Promise<void> {
  receipts = new Receipts();
  floorLatency = [];
  seen = new Set();
  // The load's warm-up, its measured window, then a second to drain.
  await new Promise((r) => setTimeout(r, c.warmupSeconds * 1000));
  const windowEnd = Date.now() + c.seconds * 1000;
  onLocation = (p, now) => {
    if (now > windowEnd + 1000) return;
    if (c.mode === 'floor') {
      if (now > windowEnd) return;
      seen.add(`${p.room}#${p.seq}`);
      for (let i = 0; i < p.points.length; i++) record(floorLatency, now - p.t!);
      return;
    }
    receipts.add(p, now);
  };
  await new Promise((r) => setTimeout(r, (c.seconds + 1) * 1000));
  onLocation = null;
  reply({ ok: 'watched', seen: c.mode === 'floor' ? [...seen] : undefined, latency: floorLatency });
}

/** App mode: the pings' send and answer times (from the load process) against this process's receipts. */
function join(c: Extract<Cmd, { cmd: 'join' }>): void {
  const sentAt = new Map(c.sentAt);
  const respondedAt = new Map(c.respondedAt);
  const latency: Histogram = [];
  const afterResponse: Histogram = [];
  receipts.forEach((key, at) => {
    const t0 = sentAt.get(key);
    if (t0 === undefined) return; // sent outside the measured window
    record(latency, at - t0);
    const t1 = respondedAt.get(key);
    if (t1 !== undefined) record(afterResponse, at - t1);
  });
  const events = [...receipts.events.keys()];
  receipts = new Receipts();
  reply({ ok: 'joined', latency, afterResponse, seen: events });
}

/**
 * node:http on keep-alive connections rather than fetch: the load generator shares this box's two cores with
 * the app, and fetch's streams cost it several times the CPU per request.
 */
const post = (agent: Agent, base: URL, token: string, json: string) =>
  sendRequest(agent, base, {
    method: 'POST',
    path: '/api/v1/tracking/ping',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: json,
  });

/**
 * The ping load (app mode), in a process without sockets: each trip posts twice a second, spread over the half
 * second; with several nodes, a trip's requests take them in turn (as behind a round-robin load balancer).
 */
async function load(c: Extract<Cmd, { cmd: 'load' }>): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const bases = c.urls.map((u) => new URL(u));
  const sentAt = new Map<string, number>();
  const respondedAt = new Map<string, number>();
  let measuring = false;
  let pingErrors = 0;
  const pingMs: Histogram = [];
  /** The same per second of the window (by when the request was sent): a stall shows as one bad second. */
  const pingMsBySecond: Histogram[] = [];
  let windowStart = 0;
  let pointsSent = 0;
  const timers: NodeJS.Timeout[] = [];
  const perRequest = c.rate / c.trips.length / 2;
  c.trips.forEach((trip, i) => {
    let acc = 0;
    let sent = 0;
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
      post(
        agent,
        bases[(i + sent++) % bases.length],
        trip.token,
        JSON.stringify({ tripId: trip.tripId, locations: fixes }),
      )
        .then(({ status, body }) => {
          if (status !== 200 || (JSON.parse(body) as { data?: { accepted: number } }).data?.accepted !== n)
            pingErrors += 1;
          else if (measured) {
            const done = Date.now();
            record(pingMs, done - now);
            record((pingMsBySecond[Math.floor((now - windowStart) / 1000)] ??= []), done - now);
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
  // The warm-up, then the measured window, then a second to drain.
  await new Promise((r) => setTimeout(r, c.warmupSeconds * 1000));
  measuring = true;
  windowStart = Date.now();
  const sentBefore = pointsSent;
  await new Promise((r) => setTimeout(r, c.seconds * 1000));
  const sentInWindow = pointsSent - sentBefore;
  measuring = false;
  for (const t of timers) clearTimeout(t);
  await new Promise((r) => setTimeout(r, 1000));
  agent.destroy();
  reply({
    ok: 'loaded',
    sentAt: [...sentAt],
    respondedAt: [...respondedAt],
    pingMs,
    pingMsBySecond,
    pointsPerSec: Math.round(sentInWindow / c.seconds),
    pingErrors,
  });
}

process.on('message', (c: Cmd) => {
  const done = (p: Promise<void>) => p.catch((err: Error) => reply({ ok: 'error', message: err.message }));
  if (c.cmd === 'connect') void done(connect(c));
  else if (c.cmd === 'watch') void done(watch(c));
  else if (c.cmd === 'join') join(c);
  else if (c.cmd === 'load') void done(load(c));
  else if (c.cmd === 'disconnect') {
    for (const s of sockets) s.disconnect();
    sockets = [];
    reply({ ok: 'disconnected' });
  }
});
process.on('disconnect', () => process.exit(0));
