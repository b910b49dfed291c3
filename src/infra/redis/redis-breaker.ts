import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../config/config';
import { CallBreaker, createCallBreaker, runThrough } from '../resilience/breaker';
import { REDIS, RedisClient } from './redis.tokens';

/**
 * The breaker in front of the main Redis client's calls on the request path
 * (session revocation checks, read-your-writes pins). While Redis is
 * unreachable a command waits for a reconnection attempt or its 2 s timeout;
 * once this breaker is open those calls fail at once and their callers take
 * their fallback, until a trial call after `REDIS_BREAKER_RESET_MS` succeeds.
 * A lost connection opens it at once: calls made meanwhile would only wait
 * for the reconnection attempt to fail.
 */
@Injectable()
export class RedisBreaker implements BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('Redis');
  private readonly breaker: CallBreaker;
  private closing = false;

  constructor(@Inject(APP_CONFIG) config: AppConfig, @Inject(REDIS) redis: RedisClient) {
    this.breaker = createCallBreaker(
      {
        name: 'redis',
        timeoutMs: config.redisBreakerTimeoutMs,
        resetMs: config.redisBreakerResetMs,
        // Redis answered (WRONGTYPE and the like): a bug, not an outage.
        isAnswer: (err) => (err as Error)?.name === 'ReplyError',
        openMessage:
          'Redis unavailable: revocation checks fail open and reads skip read-your-writes pins until it is back',
        closeMessage: 'Redis is back: revocation checks and read-your-writes pins use it again',
      },
      this.logger,
    );
    redis.on('close', () => {
      if (!this.closing) this.breaker.open();
    });
  }

  /** Runs a Redis call through the breaker: rejects at once while it is open. */
  run<T>(call: () => Promise<T>): Promise<T> {
    return runThrough(this.breaker, call);
  }

  get open(): boolean {
    return this.breaker.opened;
  }

  beforeApplicationShutdown(): void {
    this.closing = true;
  }

  onApplicationShutdown(): void {
    this.breaker.shutdown();
  }
}
