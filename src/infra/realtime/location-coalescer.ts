/**
 * Caps `trip.location` events at one per `intervalMs` per room without
 * dropping a point: the first point after a quiet spell goes out at once;
 * points arriving inside the window are merged into one event sent when the
 * window ends.
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
      this.send(room, payload);
      return;
    }
    if (state.pending) {
      state.pending = merge(state.pending, payload);
      return;
    }
    const wait = state.lastSentAt + this.intervalMs - now;
    if (wait <= 0) {
      state.lastSentAt = now;
      this.send(room, payload);
      return;
    }
    state.pending = { ...payload, points: [...pointsOf(payload)] };
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

function merge(into: Record<string, unknown>, next: Record<string, unknown>): Record<string, unknown> {
  (into.points as unknown[]).push(...pointsOf(next));
  return into;
}
