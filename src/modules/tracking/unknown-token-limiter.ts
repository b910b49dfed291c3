import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { REDIS, RedisClient } from '../../infra/redis/redis.module';

const WINDOW_MS = 60_000;
/** Addresses this node remembers (blocked ones, and all counts while Redis is down); the oldest goes first. */
const LOCAL_MAX_ADDRESSES = 10_000;
const key = (address: string) => `osmand-unknown-token:${address}`;
/** Counts one unknown token of an address in a fixed window: `{count, ms left in the window}`. */
const COUNT_UNKNOWN = `
  local n = redis.call('INCR', KEYS[1])
  if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    ttl = tonumber(ARGV[1])
  end
  return {n, ttl}`;

interface Window {
  count: number;
  resetAt: number;
}

/**
 * Unknown tracker tokens sent to /tracking/osmand, counted per client address
 * in Redis (one fixed window a minute, shared by every node). Once an address
 * is over the limit, this node also remembers it until the window ends, so its
 * further requests are refused before any token lookup (whatever token they
 * carry: a guess that happens to match must not be told apart from a miss).
 * A known token costs nothing here. While Redis is unreachable, each node
 * counts on its own.
 */
@Injectable()
export class UnknownTokenLimiter {
  private readonly local = new Map<string, Window>();

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Seconds until this address may try again, when this node knows it is over the limit; else null. */
  retryAfter(address: string, now = Date.now()): number | null {
    const w = this.local.get(address);
    if (!w) return null;
    if (w.resetAt <= now) {
      this.local.delete(address);
      return null;
    }
    return w.count > this.config.osmandUnknownTokenLimitPerMinute
      ? Math.max(1, Math.ceil((w.resetAt - now) / 1000))
      : null;
  }

  /**
   * Counts one unknown token from this address; returns the seconds to wait
   * when that puts it over the limit (answer 429), else null (answer 404).
   */
  async countUnknown(address: string, now = Date.now()): Promise<number | null> {
    let window: Window;
    const counted = this.redis.status === 'ready' ? await this.countInRedis(address, now) : null;
    if (counted) {
      window = counted;
    } else {
      const w = this.local.get(address);
      window =
        w && w.resetAt > now ? { count: w.count + 1, resetAt: w.resetAt } : { count: 1, resetAt: now + WINDOW_MS };
    }
    const over = window.count > this.config.osmandUnknownTokenLimitPerMinute;
    if (over || !counted) this.remember(address, window);
    return over ? Math.max(1, Math.ceil((window.resetAt - now) / 1000)) : null;
  }

  private async countInRedis(address: string, now: number): Promise<Window | null> {
    try {
      const [count, ttl] = (await this.redis.eval(COUNT_UNKNOWN, 1, key(address), WINDOW_MS)) as [number, number];
      return { count, resetAt: now + ttl };
    } catch {
      return null;
    }
  }

  private remember(address: string, window: Window): void {
    this.local.delete(address); // re-inserted last: the map's order is its age
    if (this.local.size >= LOCAL_MAX_ADDRESSES) this.local.delete(this.local.keys().next().value!);
    this.local.set(address, window);
  }
}
