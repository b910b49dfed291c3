import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { REDIS, RedisClient } from '../../infra/redis/redis.module';

/**
 * Sessions ended before their access tokens expire (logout, a reused refresh
 * token). Kept in Redis for one access-token lifetime, so every node refuses
 * those tokens on their next request.
 */
@Injectable()
export class SessionRevocations {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async revoke(sessionId: string): Promise<void> {
    await this.redis.set(`revoked-session:${sessionId}`, '1', 'EX', this.config.accessTokenTtlSeconds + 5);
  }

  async isRevoked(sessionId: string): Promise<boolean> {
    return (await this.redis.exists(`revoked-session:${sessionId}`)) === 1;
  }
}
