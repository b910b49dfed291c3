import { Inject, Injectable } from '@nestjs/common';
import { FallbackRateLimitCounter, RATE_LIMIT_REDIS_RETRY_MS } from '../../common/rate-limit/rate-limit-store';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { rateLimitedCounter } from '../../infra/observability/metrics';
import { REDIS, RedisClient } from '../../infra/redis/redis.module';

const WINDOW_MS = 60_000;
/** Addresses this node remembers (blocked ones, and all counts while Redis is down); the oldest goes first. */
const LOCAL_MAX_ADDRESSES = 10_000;

/**
 * Unknown tracker tokens sent to /tracking/osmand, counted per client address
 * (one fixed window a minute) by the rate limits' counter: in Redis, shared by
 * every node, or in this node's memory while Redis is unreachable. Once an
 * address is over the limit, this node also remembers it until the window
 * ends, so its further requests are refused before any token lookup (whatever
 * token they carry: a guess that happens to match must not be told apart from
 * a miss). A known token costs nothing here.
 */
@Injectable()
export class UnknownTokenLimiter {
  private readonly counter: FallbackRateLimitCounter;
  /** When each address known to be over the limit may try again (epoch ms); the map's order is its age. */
  private readonly blocked = new Map<string, number>();
  private readonly refused = rateLimitedCounter('osmand-unknown-token');

  constructor(
    @Inject(REDIS) redis: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.counter = new FallbackRateLimitCounter(redis, {
      namespace: 'osmand-unknown-token:',
      localMaxKeys: LOCAL_MAX_ADDRESSES,
      retryMs: RATE_LIMIT_REDIS_RETRY_MS,
    });
  }

  /** Seconds until this address may try again, when this node knows it is over the limit; else null. */
  retryAfter(address: string): number | null {
    const resetAt = this.blocked.get(address);
    if (resetAt === undefined) return null;
    const now = Date.now();
    if (resetAt <= now) {
      this.blocked.delete(address);
      return null;
    }
    this.refused.inc();
    return Math.max(1, Math.ceil((resetAt - now) / 1000));
  }

  /**
   * Counts one unknown token from this address; returns the seconds to wait
   * when that puts it over the limit (answer 429), else null (answer 404).
   */
  async countUnknown(address: string): Promise<number | null> {
    const { current, ttl } = await this.counter.hit(address, WINDOW_MS);
    if (current <= this.config.osmandUnknownTokenLimitPerMinute) return null;
    this.blocked.delete(address); // re-inserted last: the map's order is its age
    if (this.blocked.size >= LOCAL_MAX_ADDRESSES) this.blocked.delete(this.blocked.keys().next().value!);
    this.blocked.set(address, Date.now() + ttl);
    this.refused.inc();
    return Math.max(1, Math.ceil(ttl / 1000));
  }
}
