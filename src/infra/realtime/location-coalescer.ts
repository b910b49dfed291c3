/**
 * Caps `trip.location` events at one per `intervalMs` per room without
 * holding points back: the first point after a quiet spell goes out at once;
 * points arriving inside the window are merged into one event sent when the
 * window ends. One event carries at most `maxPoints` points, the newest (by
 * `recordedAt`); the others are counted in its `dropped` field, so a burst
 * (a phone posting a long backlog, many nodes' flushes in one window) cannot
 * make an event, its log entry and every watcher's download without bound.
 * Watchers that need every point read the history over REST.
 */
export class LocationCoalescer {
  private readonly rooms = new Map<
    string,
    { lastSentAt: number; pending: Record<string, unknown> | null; timer: NodeJS.Timeout | null }
  >();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly intervalMs: number,
    private readonly send: (room: string, payload: Record<string, unknown>) => void,
    private readonly now: () => number = Date.now,
    private readonly maxPoints = Number.MAX_SAFE_INTEGER,
  ) {
    // Forget rooms that have been quiet for a while, so the map stays small.
    this.sweeper = setInterval(() => this.sweep(), Math.max(1000, intervalMs * 20));
    this.sweeper.unref();
  }

  offer(room: string, payload: Record<string, unknown>): void {
    const state = this.rooms.get(room);
    const now = this.now();
    if (!state) {
      this.rooms.set(room, { lastSentAt: now, pending: null, timer: null });
      this.send(room, this.capped({ ...payload, points: [...pointsOf(payload)] }));
      return;
    }
    if (state.pending) {
      (state.pending.points as unknown[]).push(...pointsOf(payload));
      this.capped(state.pending);
      return;
    }
    const wait = state.lastSentAt + this.intervalMs - now;
    if (wait <= 0) {
      state.lastSentAt = now;
      this.send(room, this.capped({ ...payload, points: [...pointsOf(payload)] }));
      return;
    }
    state.pending = this.capped({ ...payload, points: [...pointsOf(payload)] });
    state.timer = setTimeout(() => this.flushRoom(room), wait);
  }

  /** Sends every pending merge now (shutdown). */
  flushAll(): void {
    for (const room of [...this.rooms.keys()]) this.flushRoom(room);
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const s of this.rooms.values()) if (s.timer) clearTimeout(s.timer);
    this.rooms.clear();
  }

  /** Keeps the newest `maxPoints` points of a payload (own array), adding the rest to its `dropped` count. */
  private capped(payload: Record<string, unknown>): Record<string, unknown> {
    const points = payload.points as unknown[];
    const over = points.length - this.maxPoints;
    if (over <= 0) return payload;
    // Stable: points with the same time keep their arrival order. ISO-8601 UTC strings sort as times.
    points.sort((a, b) => {
      const ta = recordedAt(a);
      const tb = recordedAt(b);
      return ta < tb ? -1 : ta > tb ? 1 : 0;
    });
    points.splice(0, over);
    payload.dropped = ((payload.dropped as number | undefined) ?? 0) + over;
    return payload;
  }

  private flushRoom(room: string): void {
    const state = this.rooms.get(room);
    if (!state?.pending) return;
    if (state.timer) clearTimeout(state.timer);
    const payload = state.pending;
    state.pending = null;
    state.timer = null;
    state.lastSentAt = this.now();
    this.send(room, payload);
  }

  private sweep(): void {
    const quietSince = this.now() - this.intervalMs * 10;
    for (const [room, s] of this.rooms) if (!s.pending && s.lastSentAt < quietSince) this.rooms.delete(room);
  }
}

const pointsOf = (p: Record<string, unknown>): unknown[] => (Array.isArray(p.points) ? (p.points as unknown[]) : []);

const recordedAt = (p: unknown): string => {
  const t = (p as { recordedAt?: unknown } | null)?.recordedAt;
  return typeof t === 'string' ? t : '';
};
