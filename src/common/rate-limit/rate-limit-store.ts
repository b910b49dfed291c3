import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type { RedisClient } from '../../infra/redis/redis.tokens';
import { LocalWindowCounter, WindowHit } from './local-window-counter';

/** INCR with the window set on the first hit; a key left without expiry (a failed PEXPIRE) gets one. */
const HIT_SCRIPT = `
local current = redis.call('INCR', KEYS[1])
if current == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {current, ttl}`;

/** After a failed Redis call, how long rate limits count in memory before asking Redis again. */
export const RATE_LIMIT_REDIS_RETRY_MS = 1000;

export interface FallbackStoreOptions {
  /** Prefix of the counters' keys in Redis (after the client's own key prefix). */
  namespace: string;
  /** Most counters kept in memory while Redis is unreachable. */
  localMaxKeys: number;
  /** After a failed Redis call, how long to count locally before trying Redis again. */
  retryMs: number;
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

  constructor(
    private readonly redis: RedisClient,
    private readonly options: FallbackStoreOptions,
  ) {
    this.local = new LocalWindowCounter(options.localMaxKeys);
  }

  async hit(key: string, windowMs: number): Promise<WindowHit> {
    if (this.redis.status === 'ready' && Date.now() >= this.redisDownUntil) {
      try {
        const [current, ttl] = (await this.redis.eval(HIT_SCRIPT, 1, this.options.namespace + key, windowMs)) as [
          number,
          number,
        ];
        return { current, ttl };
      } catch {
        this.redisDownUntil = Date.now() + this.options.retryMs;
      }
    }
    return this.local.hit(key, windowMs);
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
