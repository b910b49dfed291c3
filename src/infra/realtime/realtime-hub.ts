import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import CircuitBreaker from 'opossum';
import type { Server, Socket } from 'socket.io';
import { APP_CONFIG, AppConfig } from '../config/config';
import { createBreaker } from '../resilience/breaker';
import { realtimeBroadcastLatency, realtimeEventsPublished, realtimeReplays } from '../observability/metrics';
import { LocationCoalescer } from './location-coalescer';
import { InProcessRealtimePublisher, RealtimeEventName, RealtimePublisher } from './realtime-publisher';
import { RoomLog } from './room-log';

/** What a watcher receives: the payload plus its room and the room's seq. */
export type RoomEnvelope = Record<string, unknown> & { room: string; seq: number };

/** The server-side event through which nodes hand each other room events (over the Redis adapter). */
const NODE_EVENT = 'waybill:room-event';
const ACCESS_EVENT = 'waybill:access-changed';
/** How long a node holds an event that arrived ahead of its predecessor before reading the gap from the log. */
const REORDER_WAIT_MS = 150;
/** How long a replaying subscriber waits for this node to catch up with the replayed log. */
const CATCH_UP_WAIT_MS = 1000;
const ROOM_STATE_MAX = 50_000;

/** The metric series of each event and path, bound on first use (the label lookup is not paid per event). */
const publishedSeries = new Map<string, { inc(): void }>();
function countPublished(event: RealtimeEventName, path: 'redis' | 'local'): void {
  const key = `${event} ${path}`;
  let series = publishedSeries.get(key);
  if (!series) publishedSeries.set(key, (series = realtimeEventsPublished.labels(event, path)));
  series.inc();
}
const broadcastLatency = {
  local: realtimeBroadcastLatency.labels('local'),
  remote: realtimeBroadcastLatency.labels('remote'),
};

interface Pending {
  event: RealtimeEventName;
  envelope: RoomEnvelope;
  t0: number;
  origin: 'local' | 'remote';
}

/** A subscriber replaying the log: it gets the room's live events in a buffer until it has caught up. */
interface CatchUp {
  buffer: { event: RealtimeEventName; envelope: RoomEnvelope }[];
  /** The seq this node must have delivered before the socket can join the room without duplicates. */
  target: number;
  ready: (() => void) | null;
}

/** Per-room delivery state of this node. */
interface RoomState {
  /** Highest seq delivered to this node's sockets (events at or below it are duplicates). */
  last: number | undefined;
  held: Pending[];
  holdTimer: NodeJS.Timeout | null;
  catchUps: Set<CatchUp>;
  touchedAt: number;
}

export interface ReplayOutcome {
  replayed: number;
  truncated: boolean;
  lastSeq: number;
}

/**
 * The real `RealtimePublisher`. Each event gets the room's next seq and a
 * place in the room's log (Redis, `RoomLog`), is serialized once and handed
 * to the other nodes through the Socket.IO Redis adapter, and every node
 * broadcasts it once to its local sockets in the room, in seq order.
 * Behind an opossum breaker: with Redis down, events still reach this node's
 * sockets (seqs continue locally) and the ping path never waits on Redis.
 */
@Injectable()
export class RealtimeHub extends RealtimePublisher implements BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('Realtime');
  private io: Server | null = null;
  private readonly rooms = new Map<string, RoomState>();
  private readonly coalescer: LocationCoalescer;
  private readonly breaker: CircuitBreaker<[string, RealtimeEventName, string, number], number>;
  private closed = false;
  private accessListener: ((userId: string) => void) | null = null;

  constructor(
    private readonly tap: InProcessRealtimePublisher,
    private readonly log: RoomLog,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    super();
    this.coalescer = new LocationCoalescer(
      config.realtimeLocationIntervalMs,
      (room, payload) => void this.send(room, 'trip.location', payload),
      Date.now,
      config.realtimeLocationMaxPoints,
    );
    this.breaker = createBreaker(
      (room: string, event: RealtimeEventName, json: string, floor: number) =>
        this.log.append(room, event, json, floor),
      {
        name: 'realtime-redis',
        timeoutMs: config.realtimeBreakerTimeoutMs,
        resetMs: config.realtimeBreakerResetMs,
        openMessage: 'Redis unavailable: room events go to this node only, without replay log, until it is back',
        closeMessage: 'Redis is back: room events are sequenced, logged and shared across nodes again',
      },
      this.logger,
    );
  }

  /** Called by the gateway once Socket.IO is up. */
  attach(io: Server): void {
    this.io = io;
    io.on(NODE_EVENT, (room: string, event: RealtimeEventName, envelope: RoomEnvelope, t0: number) =>
      this.deliver(room, { event, envelope, t0, origin: 'remote' }),
    );
    io.on(ACCESS_EVENT, (userId: string) => this.accessListener?.(userId));
  }

  /** The gateway re-checks a user's sockets when told their access changed. */
  onAccessChanged(listener: (userId: string) => void): void {
    this.accessListener = listener;
  }

  override accessChanged(userId: string): void {
    if (this.closed) return;
    this.accessListener?.(userId);
    try {
      this.io?.serverSideEmit(ACCESS_EVENT, userId);
    } catch (err) {
      // Redis down: other nodes catch up at their next periodic re-check.
      this.logger.warn(`access change of ${userId} not shared with other nodes: ${(err as Error).message}`);
    }
  }

  get breakerOpen(): boolean {
    return this.breaker.opened;
  }

  publish(room: string, event: RealtimeEventName, payload: Record<string, unknown>): void {
    if (this.closed) return;
    this.tap.publish(room, event, payload);
    if (event === 'trip.location') this.coalescer.offer(room, payload);
    else void this.send(room, event, payload);
  }

  private async send(room: string, event: RealtimeEventName, payload: Record<string, unknown>): Promise<void> {
    const t0 = Date.now();
    const json = JSON.stringify(payload);
    const state = this.state(room);
    let seq: number;
    let shared = true;
    try {
      seq = await this.breaker.fire(room, event, json, state.last ?? 0);
    } catch {
      // Redis down (or the breaker open): sequence locally, deliver locally.
      seq = Math.max(state.last ?? 0, ...state.held.map((h) => h.envelope.seq)) + 1;
      shared = false;
    }
    countPublished(event, shared ? 'redis' : 'local');
    const envelope: RoomEnvelope = { ...payload, room, seq };
    this.deliver(room, { event, envelope, t0, origin: 'local' });
    if (shared && this.io && !this.closed) this.io.serverSideEmit(NODE_EVENT, room, event, envelope, t0);
  }

  /** Delivers to this node's sockets in seq order: duplicates dropped, a short wait for an event that overtook another. */
  private deliver(room: string, p: Pending): void {
    const s = this.state(room);
    const seq = p.envelope.seq;
    if (s.last !== undefined && seq <= s.last) return;
    if (s.last !== undefined && seq > s.last + 1) {
      if (s.held.some((h) => h.envelope.seq === seq)) return;
      s.held.push(p);
      s.held.sort((a, b) => a.envelope.seq - b.envelope.seq);
      s.holdTimer ??= setTimeout(() => this.releaseHeld(room), REORDER_WAIT_MS);
      return;
    }
    this.broadcast(room, s, p);
    this.drainHeld(room, s, false);
  }

  /**
   * The predecessor of a held event did not arrive in time (a busy node, a
   * slow link): the missing events are read from the room's log, then the
   * held ones follow. Only if the log cannot fill the gap is it skipped.
   */
  private releaseHeld(room: string): void {
    const s = this.rooms.get(room);
    if (!s) return;
    s.holdTimer = null;
    if (!s.held.length || s.last === undefined) return this.drainHeld(room, s, true);
    const from = s.last;
    const upTo = s.held[0].envelope.seq - 1;
    this.log
      .since(room, from, upTo - from)
      .then(({ events }) => {
        for (const e of events) {
          if (e.seq > upTo) break;
          if (s.last !== undefined && e.seq <= s.last) continue;
          this.broadcast(room, s, {
            event: e.event,
            envelope: { ...e.payload, room, seq: e.seq },
            t0: e.at,
            origin: 'remote',
          });
        }
      })
      .catch(() => undefined)
      .finally(() => this.drainHeld(room, s, true));
  }

  private drainHeld(room: string, s: RoomState, force: boolean): void {
    while (s.held.length && (force || s.held[0].envelope.seq === (s.last ?? 0) + 1)) {
      const next = s.held.shift()!;
      if (s.last === undefined || next.envelope.seq > s.last) this.broadcast(room, s, next);
    }
    if (!s.held.length && s.holdTimer) {
      clearTimeout(s.holdTimer);
      s.holdTimer = null;
    }
  }

  private broadcast(room: string, s: RoomState, p: Pending): void {
    s.last = p.envelope.seq;
    s.touchedAt = Date.now();
    // Encoded once for every socket of this node in the room.
    this.io?.local.to(room).emit(p.event, p.envelope);
    for (const c of s.catchUps) {
      c.buffer.push({ event: p.event, envelope: p.envelope });
      if (c.ready && s.last >= c.target) c.ready();
    }
    broadcastLatency[p.origin].observe((Date.now() - p.t0) / 1000);
  }

  /**
   * Joins the socket to the room after replaying the room's events after
   * `sinceSeq`, with no gap and no duplicate at the seam: live events that
   * arrive while the log is read are buffered and sent after it (those
   * already replayed are skipped), and the socket joins the room only once
   * this node has delivered everything the replay contained.
   */
  async joinWithReplay(socket: Socket, room: string, sinceSeq: number): Promise<ReplayOutcome> {
    const s = this.state(room);
    const c: CatchUp = { buffer: [], target: 0, ready: null };
    s.catchUps.add(c);
    try {
      let events: Awaited<ReturnType<RoomLog['since']>>['events'] = [];
      let truncated = false;
      if (this.breaker.opened) truncated = true;
      else {
        try {
          ({ events, truncated } = await this.log.since(room, sinceSeq));
        } catch {
          truncated = true;
        }
      }
      let last = sinceSeq;
      let lastAt = 0;
      let replayed = 0;
      for (const e of events) {
        if (e.seq <= last) continue;
        socket.emit(e.event, { ...e.payload, room, seq: e.seq });
        last = e.seq;
        lastAt = e.at;
        replayed += 1;
      }
      // Wait until this node has itself delivered what was replayed (an event
      // may be in the log before its broadcast reaches this node); an event
      // logged longer ago than the wait has been delivered or lost already.
      if ((s.last ?? 0) < last && Date.now() - lastAt < CATCH_UP_WAIT_MS) {
        c.target = last;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, CATCH_UP_WAIT_MS);
          c.ready = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        c.ready = null;
      }
      // From here to the join, all synchronous: no event can slip in between.
      for (const b of c.buffer) {
        if (b.envelope.seq <= last) continue;
        if (b.envelope.seq !== last + 1) truncated = true;
        socket.emit(b.event, b.envelope);
        last = b.envelope.seq;
      }
      if (socket.connected) void socket.join(room);
      realtimeReplays.inc({ outcome: truncated ? 'truncated' : 'complete' });
      return { replayed, truncated, lastSeq: last };
    } finally {
      s.catchUps.delete(c);
    }
  }

  private state(room: string): RoomState {
    let s = this.rooms.get(room);
    if (!s) {
      if (this.rooms.size >= ROOM_STATE_MAX) this.evictIdle();
      s = { last: undefined, held: [], holdTimer: null, catchUps: new Set(), touchedAt: Date.now() };
      this.rooms.set(room, s);
    }
    return s;
  }

  private evictIdle(): void {
    const before = Date.now() - 60_000;
    for (const [room, s] of this.rooms) {
      if (s.touchedAt < before && !s.held.length && !s.catchUps.size) this.rooms.delete(room);
    }
    // Still full: drop the oldest tenth, their seqs are re-learnt from the next event.
    if (this.rooms.size >= ROOM_STATE_MAX) {
      let n = Math.ceil(ROOM_STATE_MAX / 10);
      for (const [room, s] of this.rooms) {
        if (n-- <= 0) break;
        if (!s.held.length && !s.catchUps.size) this.rooms.delete(room);
      }
    }
  }

  beforeApplicationShutdown(): void {
    // Points merged but not yet sent go out before Redis closes.
    this.coalescer.flushAll();
  }

  onApplicationShutdown(): void {
    this.closed = true;
    this.coalescer.close();
    this.breaker.shutdown();
    for (const s of this.rooms.values()) if (s.holdTimer) clearTimeout(s.holdTimer);
    this.rooms.clear();
  }
}
