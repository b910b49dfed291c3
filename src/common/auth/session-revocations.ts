import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { REDIS, RedisClient } from '../../infra/redis/redis.module';

/**
 * Sessions ended before their access tokens expire (logout, a reused refresh
 * token). Kept in Redis for one access-token lifetime, so every node refuses
 * those tokens on their next request.
 */
@Injectable()
export class SessionRevocations {
  private readonly logger = new Logger(SessionRevocations.name);
  private redisDownSince = 0;

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async revoke(sessionId: string): Promise<void> {
    await this.redis.set(`revoked-session:${sessionId}`, '1', 'EX', this.config.accessTokenTtlSeconds + 5);
  }

  /**
   * Fails open when Redis is unreachable: drivers keep posting while it is
   * down, and an ended session's access token lives at most one TTL anyway.
   */
  async isRevoked(sessionId: string): Promise<boolean> {
    try {
      const revoked = (await this.redis.exists(`revoked-session:${sessionId}`)) === 1;
      this.redisDownSince = 0;
      return revoked;
    } catch (err) {
      if (!this.redisDownSince) {
        this.redisDownSince = Date.now();
        this.logger.warn(`session revocation check skipped, Redis unavailable: ${(err as Error).message}`);
      }
      return false;
    }
  }
}
