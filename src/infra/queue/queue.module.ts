import { BullModule } from '@nestjs/bull';
import { Global, Module } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../config/config';

/**
 * Bull on our Redis. Keys live under `<REDIS_KEY_PREFIX>bull:`, so test files
 * (each with its own prefix) and deployments sharing a Redis never meet.
 * @nestjs/bull closes every queue on application shutdown.
 */
@Global()
@Module({
  imports: [
    BullModule.forRootAsync({
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({
        redis: config.redisUrl,
        prefix: `${config.redisKeyPrefix}bull`,
        defaultJobOptions: { removeOnComplete: 100, removeOnFail: 100 },
      }),
    }),
  ],
  exports: [BullModule],
})
export class QueueModule {}

/** Queue names, in one place. */
export const QUEUES = {
  stats: 'stats',
} as const;
