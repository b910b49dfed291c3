import { Global, Inject, Injectable, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import Redis from 'ioredis';
import { APP_CONFIG, AppConfig } from '../config/config';
import { ClusterBus } from './cluster-bus';
import { RedisBreaker } from './redis-breaker';
import { REDIS, RedisClient } from './redis.tokens';

export { REDIS } from './redis.tokens';
export type { RedisClient } from './redis.tokens';

@Injectable()
class RedisLifecycle implements OnApplicationShutdown {
  private readonly logger = new Logger('Redis');
  constructor(@Inject(REDIS) private readonly redis: RedisClient) {
    redis.on('error', (err) => this.logger.warn(`redis: ${err.message}`));
  }
  async onApplicationShutdown(): Promise<void> {
    // QUIT waits for a reply that never comes while Redis is unreachable.
    if (this.redis.status === 'ready') await this.redis.quit().catch(() => this.redis.disconnect());
    else this.redis.disconnect();
  }
}

@Global()
@Module({
  providers: [
    {
      provide: REDIS,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig): RedisClient =>
        new Redis(config.redisUrl, {
          keyPrefix: config.redisKeyPrefix,
          maxRetriesPerRequest: 1,
          commandTimeout: 2000,
          enableOfflineQueue: true,
          lazyConnect: false,
        }),
    },
    RedisLifecycle,
    ClusterBus,
    RedisBreaker,
  ],
  exports: [REDIS, ClusterBus, RedisBreaker],
})
export class RedisModule {}
