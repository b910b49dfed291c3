import { BullModule } from '@nestjs/bull';
import { Global, Logger, Module, OnApplicationBootstrap } from '@nestjs/common';
import type { Queue } from 'bull';
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

/**
 * @nestjs/bull closes each queue at application shutdown. With Redis
 * unreachable, Bull's close rejects ("Connection is closed.", or the refused
 * reconnect of its blocking client), which would abort the remaining shutdown
 * hooks (the ping writer's drain, the database pools). Call this for each
 * injected queue: its close then logs the failure instead of throwing.
 */
export function closeQuietlyAtShutdown(queue: Queue, logger: Logger): void {
  const host = queue as Queue & { onApplicationShutdown?: () => Promise<void> };
  const close = host.onApplicationShutdown?.bind(queue) ?? (() => queue.close());
  host.onApplicationShutdown = () =>
    close().catch((err: Error) => logger.warn(`queue ${queue.name} closed with an error: ${err.message}`));
}

/**
 * Puts a repeatable job on its queue (one run per interval across all
 * nodes), replacing a schedule left by an earlier interval. Never throws:
 * with Redis down the service still starts, and the failure is logged.
 */
export async function scheduleRepeatable(queue: Queue, job: RepeatableJob, logger: Logger): Promise<void> {
  try {
    // A changed interval leaves the old schedule behind: drop it.
    for (const old of await queue.getRepeatableJobs()) {
      if (old.name === job.name && Number(old.every) !== job.every) await queue.removeRepeatableByKey(old.key);
    }
    await queue.add(job.name, {}, { repeat: { every: job.every }, jobId: job.jobId });
  } catch (err) {
    logger.warn(`could not schedule ${job.what}: ${(err as Error).message}`);
  }
}

export interface RepeatableJob {
  name: string;
  /** One schedule per job across all nodes. */
  jobId: string;
  every: number;
  /** What the job does, for the log line if it cannot be scheduled. */
  what: string;
}

/**
 * A provider that puts one repeatable job on its queue at boot (never awaited
 * by the boot: with Redis down the service still starts) and closes the
 * queue quietly at shutdown.
 */
export abstract class RepeatableJobScheduler implements OnApplicationBootstrap {
  /** Settles once the schedule is in place (or failed and was logged). */
  scheduled: Promise<void> = Promise.resolve();

  protected constructor(
    private readonly queue: Queue,
    private readonly job: RepeatableJob,
    private readonly logger: Logger,
  ) {
    closeQuietlyAtShutdown(queue, logger);
  }

  onApplicationBootstrap(): void {
    this.scheduled = scheduleRepeatable(this.queue, this.job, this.logger);
  }
}

/** Queue names, in one place. */
export const QUEUES = {
  stats: 'stats',
  chat: 'chat',
  accessCodes: 'access-codes',
  qr: 'qr',
  webhooks: 'webhooks',
} as const;
