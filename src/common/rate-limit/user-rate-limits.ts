import { Inject, Injectable, SetMetadata } from '@nestjs/common';
import type { Counter } from 'prom-client';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { rateLimitedCounter } from '../../infra/observability/metrics';
import { RedisBreaker } from '../../infra/redis/redis-breaker';
import { REDIS, RedisClient } from '../../infra/redis/redis.module';
import { FallbackRateLimitCounter, RATE_LIMIT_REDIS_RETRY_MS } from './rate-limit-store';
import { rateLimitedError } from './route-rate-limits';

const MINUTE = 60_000;
/** Budgets this node remembers as spent until their window ends (the oldest goes first when full). */
const BLOCKED_MAX_KEYS = 100_000;

/**
 * Budgets counted once the caller is known: `ping-driver` (the driver's ping
 * requests, both ingest endpoints together) and `read-user` (authenticated
 * GETs under /api/v1), per user; `webhook-test` (test sends of an org's
 * webhooks), per org, counted only once the caller is allowed to manage that
 * org's webhooks, so an outsider cannot spend an org's budget. Named
 * `<class>:<subject>` in the rate limits' Redis counters.
 */
export type UserLimitClass = 'ping-driver' | 'read-user' | 'webhook-test';

export const USER_RATE_LIMIT = 'waybill:userRateLimit';

/**
 * The class a route's requests count against, checked by the auth guard once
 * it knows the caller. Without it, an authenticated GET counts as `read-user`
 * and any other method is not limited per user; `null` opts a route out.
 */
export const UserRateLimit = (limitClass: UserLimitClass | null) => SetMetadata(USER_RATE_LIMIT, limitClass);

/**
 * Per-user limits, one fixed window a minute, counted in Redis so that they
 * hold across nodes (the counter batches the hits of one event-loop turn into
 * one script call) and in this node's memory while Redis is down. A budget
 * found spent is remembered here until its window ends, so a client hammering
 * past its limit costs no Redis call per request. The Redis calls go through
 * the Redis breaker (REDIS_BREAKER_TIMEOUT_MS): while it is open, counting is
 * local at once.
 */
@Injectable()
export class UserRateLimits {
  private readonly counter: FallbackRateLimitCounter;
  private readonly limits: Record<UserLimitClass, number>;
  private readonly refused: Record<UserLimitClass, Counter.Internal>;
  /** `<class>:<subject>` → end of the spent window (epoch ms); the map's order is its age. */
  private readonly blocked = new Map<string, number>();

  constructor(@Inject(REDIS) redis: RedisClient, @Inject(APP_CONFIG) config: AppConfig, breaker: RedisBreaker) {
    this.counter = new FallbackRateLimitCounter(redis, {
      namespace: 'rate-limit:',
      localMaxKeys: config.rateLimitFallbackMaxKeys,
      retryMs: RATE_LIMIT_REDIS_RETRY_MS,
      // Every authenticated request asks: a slow Redis must not hold them all for the client's command timeout.
      through: (call) => breaker.run(call),
    });
    this.limits = {
      'ping-driver': config.pingRateLimitPerMinute,
      'read-user': config.readRateLimitPerMinute,
      'webhook-test': config.webhooks.testRateLimitPerMinute,
    };
    this.refused = {
      'ping-driver': rateLimitedCounter('ping-driver'),
      'read-user': rateLimitedCounter('read-user'),
      'webhook-test': rateLimitedCounter('webhook-test'),
    };
  }

  /**
   * Counts one request of this subject (the user; the org for `webhook-test`) against the class; throws 429
   * RATE_LIMITED (with Retry-After) past the limit.
   */
  async check(limitClass: UserLimitClass, subject: string): Promise<void> {
    const key = `${limitClass}:${subject}`;
    const endsAt = this.blocked.get(key);
    if (endsAt !== undefined) {
      const left = endsAt - Date.now();
      if (left > 0) {
        this.refused[limitClass].inc();
        throw rateLimitedError(left);
      }
      this.blocked.delete(key);
    }
    const { current, ttl } = await this.counter.hit(key, MINUTE);
    if (current <= this.limits[limitClass]) return;
    if (this.blocked.size >= BLOCKED_MAX_KEYS) this.blocked.delete(this.blocked.keys().next().value!);
    this.blocked.set(key, Date.now() + ttl);
    this.refused[limitClass].inc();
    throw rateLimitedError(ttl);
  }
}
