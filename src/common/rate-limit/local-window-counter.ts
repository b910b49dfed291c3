export interface WindowHit {
  /** Hits in the current window, this one included. */
  current: number;
  /** Milliseconds until the window ends. */
  ttl: number;
}

/**
 * Fixed-window hit counters in this process's memory, at most `maxKeys` of
 * them: when full, the counter whose window started first is dropped (a Map
 * keeps insertion order, and a counter is re-inserted when its window
 * restarts, so the first key is the oldest window).
 */
export class LocalWindowCounter {
  private readonly windows = new Map<string, { count: number; endsAt: number }>();

  constructor(
    private readonly maxKeys: number,
    private readonly now: () => number = Date.now,
  ) {}

  hit(key: string, windowMs: number): WindowHit {
    const now = this.now();
    const open = this.windows.get(key);
    if (open && open.endsAt > now) {
      open.count += 1;
      return { current: open.count, ttl: open.endsAt - now };
    }
    this.windows.delete(key);
    if (this.windows.size >= this.maxKeys) this.windows.delete(this.windows.keys().next().value!);
    this.windows.set(key, { count: 1, endsAt: now + windowMs });
    return { current: 1, ttl: windowMs };
  }

  get size(): number {
    return this.windows.size;
  }
}
