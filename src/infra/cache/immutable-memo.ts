import { cacheCounters } from '../observability/metrics';

/**
 * A per-node memo of values that never change once they exist (a trip's orgs
 * and driver, a chat thread's trip or account and orgs): no invalidation
 * needed, bounded to `maxEntries` (the oldest goes first), hits and misses
 * counted in `waybill_cache_requests_total{cache=<name>}`. A key whose loader
 * finds nothing is not kept.
 */
export class ImmutableMemo<T> {
  private readonly entries = new Map<string, T>();
  private readonly counters: ReturnType<typeof cacheCounters>;

  constructor(
    name: string,
    private readonly maxEntries: number,
  ) {
    this.counters = cacheCounters(name);
  }

  async get(key: string, load: () => Promise<T | null>): Promise<T | null> {
    const known = this.entries.get(key);
    if (known !== undefined) {
      this.counters.hit.inc();
      return known;
    }
    this.counters.miss.inc();
    const value = await load();
    if (value === null) return null;
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, value);
    return value;
  }

  /** Forgets a key whose object turned out to be gone. */
  delete(key: string): void {
    this.entries.delete(key);
  }
}
