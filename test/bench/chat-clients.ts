/*
 * The watchers of chat.bench.ts, driven over IPC: socket.io-client sockets,
 * each subscribed to one `thread:<id>` room. Every message the benchmark sends
 * carries its send time in its body (`t=<epoch ms>`, one clock: same box), so
 * each receipt is a latency without joining anything afterwards.
 */
import { io, Socket } from 'socket.io-client';

type Cmd =
  | { cmd: 'connect'; url: string; token: string; rooms: string[]; total: number }
  | { cmd: 'watch'; from: number; to: number }
  | { cmd: 'disconnect' };

interface ChatPayload {
  threadId: string;
  message: { body: string };
}

let sockets: Socket[] = [];
let window: { from: number; to: number } | null = null;
/** Counts per whole millisecond. */
let latency: number[] = [];
let receipts = 0;
let distinct = new Set<string>();

function onMessage(p: ChatPayload): void {
  const now = Date.now();
  if (!window) return;
  const t = Number(/^t=(\d+)/.exec(p.message?.body ?? '')?.[1]);
  if (!(t >= window.from && t < window.to)) return;
  const i = Math.max(0, Math.round(now - t));
  while (latency.length <= i) latency.push(0);
  latency[i] += 1;
  receipts += 1;
  distinct.add(p.message.body);
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
    s.on('chat.message', onMessage);
    s.once('connect_error', reject);
    s.once('connect', () => {
      s.timeout(30_000).emit('subscribe', { room }, (err: Error | null, ack: { ok: boolean }) =>
        err || !ack?.ok ? reject(err ?? new Error(JSON.stringify(ack))) : resolve(s),
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
  process.send!({ ok: 'connected', n: sockets.length, ms: Date.now() - started });
}

/** Records the messages sent in [from, to), then answers 1.5 s after `to` (the last ones' delivery). */
async function watch(c: Extract<Cmd, { cmd: 'watch' }>): Promise<void> {
  latency = [];
  receipts = 0;
  distinct = new Set();
  window = { from: c.from, to: c.to };
  await new Promise((r) => setTimeout(r, Math.max(0, c.to + 1500 - Date.now())));
  window = null;
  process.send!({ ok: 'watched', latency, receipts, distinct: distinct.size });
}

process.on('message', (c: Cmd) => {
  const done = (p: Promise<void>) => p.catch((err: Error) => process.send!({ ok: 'error', message: err.message }));
  if (c.cmd === 'connect') void done(connect(c));
  else if (c.cmd === 'watch') void done(watch(c));
  else if (c.cmd === 'disconnect') {
    for (const s of sockets) s.disconnect();
    sockets = [];
    process.send!({ ok: 'disconnected' });
  }
});
process.on('disconnect', () => process.exit(0));
