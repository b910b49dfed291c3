import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type { RedisClient } from '../../infra/redis/redis.tokens';
import { LocalWindowCounter, WindowHit } from './local-window-counter';

/**
 * For each key (KEYS[i], window ARGV[i] ms): INCR with the window set on the
 * first hit; a key left without expiry (a failed PEXPIRE) gets one. Returns
 * {count1, ttl1, count2, ttl2, ...}: one round trip for every hit of a batch.
 */
const HIT_SCRIPT = `
local out = {}
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[i])
  local current = redis.call('INCR', key)
  if current == 1 then redis.call('PEXPIRE', key, window) end
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
  resolve: (hit: WindowHit) => void;
}

/** After a failed Redis call, how long rate limits count in memory before asking Redis again. */
export const RATE_LIMIT_REDIS_RETRY_MS = 1000;

export interface FallbackStoreOptions {
  /** Prefix of the counters' keys in Redis (after the client's own key prefix). */
  namespace: string;
  /** Most counters kept in memory while Redis is unreachable. */
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

  constructor(
    private readonly redis: RedisClient,
    private readonly options: FallbackStoreOptions,
  ) {
    this.local = new LocalWindowCounter(options.localMaxKeys);
    // The number of keys comes first in each call (no fixed numberOfKeys).
    redis.defineCommand('rateLimitHits', { lua: HIT_SCRIPT });
  }

  /**
   * Counts one hit. Hits asked for in the same turn of the event loop (every
   * request Fastify parsed from one read of its sockets) go to Redis together,
   * in one script call: one round trip per batch, not per request.
   */
  hit(key: string, windowMs: number): Promise<WindowHit> {
    if (this.redis.status !== 'ready' || Date.now() < this.redisDownUntil) {
      return Promise.resolve(this.local.hit(key, windowMs));
    }
    return new Promise<WindowHit>((resolve) => {
      this.pending.push({ key, windowMs, resolve });
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
        (this.redis as RedisClient & WithHits).rateLimitHits(keys.length, ...keys, ...batch.map((h) => h.windowMs));
      const reply = await (this.options.through ? this.options.through(call) : call());
      batch.forEach((h, i) => h.resolve({ current: reply[2 * i], ttl: reply[2 * i + 1] }));
    } catch {
      this.redisDownUntil = Date.now() + this.options.retryMs;
      for (const h of batch) h.resolve(this.local.hit(h.key, h.windowMs));
    }
  }

  /** This counter as @fastify/rate-limit's `store` (one store for every limiter: their keys carry their class). */
  asStore(): FastifyRateLimitStoreCtor {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const counter = this;
    class Store implements FastifyRateLimitStore {
      incr(key: string, callback: (error: Error | null, result?: WindowHit) => void, timeWindow: number): void {
        counter.hit(key, timeWindow).then(
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
