import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type { RedisClient } from '../../infra/redis/redis.tokens';
import { LocalWindowCounter, WindowHit } from './local-window-counter';

/**
 * For each key (KEYS[i], window ARGV[2i-1] ms, count ARGV[2i]): INCRBY with
 * the window set when the key is new; a key left without expiry (a failed
 * PEXPIRE) gets one. Returns {count1, ttl1, count2, ttl2, ...}: one round trip
 * for every hit of a batch.
 */
const HIT_SCRIPT = `
local out = {}
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[2 * i - 1])
  local by = tonumber(ARGV[2 * i])
  local current = redis.call('INCRBY', key, by)
  if current == by then redis.call('PEXPIRE', key, window) end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    redis.call('PEXPIRE', key, window)
    ttl = window
  end
  out[#out + 1] = current
  out[#out + 1] = ttl
end
return out`;

/** Most hits sent to Redis in one call (a larger batch is split). */
const MAX_BATCH = 500;

/** The client once `defineCommand('rateLimitHits')` has run (EVALSHA, the script sent only when Redis lacks it). */
interface WithHits {
  rateLimitHits(...args: (string | number)[]): Promise<number[]>;
}

interface PendingHit {
  key: string;
  windowMs: number;
  /** How many to count at once: 1, or a lease's size. */
  by: number;
  /** Redis's answer, or undefined when Redis could not be asked (the caller counts locally). */
  resolve: (hit: WindowHit | undefined) => void;
}

/**
 * Counts this node took from a Redis window ahead of use: the hits they cover
 * are decided here, with no Redis call. `base` is the window's count before
 * the lease; `exhausted` marks a window whose whole budget is spent.
 */
interface Lease {
  base: number;
  used: number;
  left: number;
  endsAt: number;
  exhausted: boolean;
}

/**
 * A lease's size for a limit: 2 % of it, at most 100. A limit under 100 (the
 * login limits) is counted one hit at a time, exactly, as before leases.
 */
export function leaseSize(max: number): number {
  return Math.max(1, Math.min(100, Math.floor(max / 50)));
}

/** After a failed Redis call, how long rate limits count in memory before asking Redis again. */
export const RATE_LIMIT_REDIS_RETRY_MS = 1000;

export interface FallbackStoreOptions {
  /** Prefix of the counters' keys in Redis (after the client's own key prefix). */
  namespace: string;
  /** Most counters kept in memory while Redis is unreachable, and most open leases. */
  localMaxKeys: number;
  /** After a failed Redis call, how long to count locally before trying Redis again. */
  retryMs: number;
  /** Runs each Redis call (the Redis breaker: a slow Redis costs a request its timeout, then nothing while open). */
  through?: <T>(call: () => Promise<T>) => Promise<T>;
}

/**
 * Rate-limit counters in Redis, so a limit holds across nodes. While Redis is
 * unreachable the counting goes on in this node's memory: the limit becomes
 * per node instead of disappearing (an outage must not open the door to
 * password guessing). Redis is not asked while its connection is down, nor for
 * `retryMs` after a failed call, so requests do not each wait for a timeout.
 */
export class FallbackRateLimitCounter {
  private readonly local: LocalWindowCounter;
  private redisDownUntil = 0;
  private pending: PendingHit[] = [];
  /** Open leases by key (oldest first: a Map keeps insertion order), at most `localMaxKeys`. */
  private readonly leases = new Map<string, Lease>();
  /** A key's lease being taken: the hits that find none wait for it rather than each taking one. */
  private readonly leasing = new Map<string, Promise<WindowHit | undefined>>();

  constructor(
    private readonly redis: RedisClient,
    private readonly options: FallbackStoreOptions,
  ) {
    this.local = new LocalWindowCounter(options.localMaxKeys);
    // The number of keys comes first in each call (no fixed numberOfKeys).
    redis.defineCommand('rateLimitHits', { lua: HIT_SCRIPT });
  }

  /**
   * Counts one hit against a limit of `max` a window. Under a limit of 100 or
   * more, the node takes counts from Redis in leases (see `leaseSize`) and
   * decides the hits they cover itself: one Redis call per lease, not per
   * request. The window's count in Redis is what was leased, so the nodes
   * together never let more than `max` hits through a window; counts a node
   * leased and did not use are lost with the window (at most a lease per node
   * fewer hits allowed). The hits a node needs Redis for in one turn of the
   * event loop (every request Fastify parsed from one read of its sockets) go
   * together, in one script call.
   */
  hit(key: string, windowMs: number, max = 0): Promise<WindowHit> {
    const size = leaseSize(max);
    if (size > 1) {
      const leased = this.fromLease(key);
      if (leased) return Promise.resolve(leased);
    }
    if (this.redis.status !== 'ready' || Date.now() < this.redisDownUntil) {
      return Promise.resolve(this.local.hit(key, windowMs));
    }
    if (size === 1) return this.ask(key, windowMs, 1).then((hit) => hit ?? this.local.hit(key, windowMs));
    return this.leased(key, windowMs, max, size);
  }

  /** The hit decided by this node's open lease of the key, if it has one that decides it. */
  private fromLease(key: string): WindowHit | undefined {
    const lease = this.leases.get(key);
    if (!lease) return undefined;
    const ttl = lease.endsAt - Date.now();
    if (ttl <= 0) {
      this.leases.delete(key);
      return undefined;
    }
    if (lease.left > 0) {
      lease.left -= 1;
      lease.used += 1;
      return { current: lease.base + lease.used, ttl };
    }
    // The window's whole budget is leased: refused here until it ends.
    if (lease.exhausted) return { current: lease.base + lease.used + 1, ttl };
    return undefined;
  }

  private async leased(key: string, windowMs: number, max: number, size: number): Promise<WindowHit> {
    // Three tries: a lease taken for the hits waiting on it can run out before this one's turn.
    for (let attempt = 0; attempt < 3; attempt++) {
      let taking = this.leasing.get(key);
      if (!taking) {
        taking = this.takeLease(key, windowMs, max, size);
        this.leasing.set(key, taking);
        void taking.finally(() => this.leasing.delete(key));
      }
      const answer = await taking;
      if (!answer) return this.local.hit(key, windowMs);
      const leased = this.fromLease(key);
      if (leased) return leased;
    }
    return this.ask(key, windowMs, 1).then((hit) => hit ?? this.local.hit(key, windowMs));
  }

  /** Takes `size` counts of the key's window from Redis and keeps what is left of them under `max` as a lease. */
  private async takeLease(key: string, windowMs: number, max: number, size: number): Promise<WindowHit | undefined> {
    const answer = await this.ask(key, windowMs, size);
    if (!answer) return undefined;
    const base = answer.current - size;
    const granted = Math.max(0, Math.min(size, max - base));
    this.leases.delete(key);
    if (this.leases.size >= this.options.localMaxKeys) this.leases.delete(this.leases.keys().next().value!);
    this.leases.set(key, {
      base,
      used: 0,
      left: granted,
      endsAt: Date.now() + Math.max(1, answer.ttl),
      exhausted: granted === 0,
    });
    return answer;
  }

  /** One INCRBY of the key in the next batched script call; undefined if Redis could not be asked. */
  private ask(key: string, windowMs: number, by: number): Promise<WindowHit | undefined> {
    return new Promise<WindowHit | undefined>((resolve) => {
      this.pending.push({ key, windowMs, by, resolve });
      if (this.pending.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, MAX_BATCH);
      void this.send(batch);
    }
  }

  private async send(batch: PendingHit[]): Promise<void> {
    try {
      const keys = batch.map((h) => this.options.namespace + h.key);
      const call = () =>
        (this.redis as RedisClient & WithHits).rateLimitHits(
          keys.length,
          ...keys,
          ...batch.flatMap((h) => [h.windowMs, h.by]),
        );
      const reply = await (this.options.through ? this.options.through(call) : call());
      batch.forEach((h, i) => h.resolve({ current: reply[2 * i], ttl: reply[2 * i + 1] }));
    } catch {
      this.redisDownUntil = Date.now() + this.options.retryMs;
      for (const h of batch) h.resolve(undefined);
    }
  }

  /** This counter as @fastify/rate-limit's `store` (one store for every limiter: their keys carry their class). */
  asStore(): FastifyRateLimitStoreCtor {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const counter = this;
    class Store implements FastifyRateLimitStore {
      incr(
        key: string,
        callback: (error: Error | null, result?: WindowHit) => void,
        timeWindow: number,
        max: number,
      ): void {
        counter.hit(key, timeWindow, max).then(
          (hit) => callback(null, hit),
          (err: Error) => callback(err),
        );
      }
      child(): FastifyRateLimitStore {
        return this;
      }
    }
    return Store;
  }
}
