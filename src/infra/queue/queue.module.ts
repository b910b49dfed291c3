import { BullModule } from '@nestjs/bull';
import { DynamicModule, Global, Logger, Module, OnApplicationBootstrap } from '@nestjs/common';
import type { JobOptions, Queue } from 'bull';
import { APP_CONFIG, AppConfig } from '../config/config';
import { withTimeout } from '../observability/with-timeout';

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
        // A queue registered through registerQueue() gets its own defaults (JOB_DEFAULTS); these cover the rest.
        defaultJobOptions: jobOptions('', config),
      }),
    }),
  ],
  exports: [BullModule],
})
export class QueueModule {}

/**
 * Shutdown of an injected queue, in two steps. `beforeApplicationShutdown`
 * (while the database pools and HTTP are still up): this node's worker stops
 * taking jobs and waits for its active ones to finish (Bull's local pause), so
 * a job running at SIGTERM completes instead of being cut off half way; one
 * that outlives SHUTDOWN_TIMEOUT_MS dies with the process, its lock lapses and
 * another node's worker takes it again as stalled. Jobs can still be added
 * meanwhile (requests in flight). Then @nestjs/bull's close at
 * `onApplicationShutdown`. With Redis unreachable, Bull's pause and close
 * reject ("Connection is closed.", or the refused reconnect of its blocking
 * client), which would abort the remaining shutdown hooks (the ping writer's
 * drain, the database pools): both log the failure instead of throwing; and
 * close never waits on a connection that is not ready (it would wait for
 * ever), nor longer than QUEUE_CLOSE_TIMEOUT_MS.
 * Call this for each injected queue.
 */
export function closeQuietlyAtShutdown(queue: Queue, logger: Logger): void {
  const host = queue as Queue & {
    onApplicationShutdown?: () => Promise<void>;
    beforeApplicationShutdown?: () => Promise<void>;
  };
  const close = host.onApplicationShutdown?.bind(queue) ?? (() => queue.close());
  host.beforeApplicationShutdown = async () => {
    // Without Redis there is no job to finish (and Bull's pause would wait for the connection).
    if (queue.client.status !== 'ready') return;
    await queue
      .pause(true, false)
      .catch((err: Error) => logger.warn(`queue ${queue.name} did not finish its jobs: ${err.message}`));
  };
  host.onApplicationShutdown = async () => {
    // Bull's close first waits for its connections to be ready: with Redis away (or still reconnecting after a
    // restart) that wait has no end. Then the connections are simply dropped; otherwise close gets a bounded time.
    if (queue.client.status === 'ready') {
      try {
        await withTimeout(
          close().catch((err: Error) => logger.warn(`queue ${queue.name} closed with an error: ${err.message}`)),
          QUEUE_CLOSE_TIMEOUT_MS,
        );
        return;
      } catch {
        logger.warn(`queue ${queue.name} did not close within ${QUEUE_CLOSE_TIMEOUT_MS} ms: dropping its connections`);
      }
    }
    for (const client of queue.clients) client.disconnect();
  };
}

/** How long a queue's close may take at shutdown before its Redis connections are dropped. */
const QUEUE_CLOSE_TIMEOUT_MS = 5000;

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

/** How a queue's jobs run unless the job says otherwise. */
export interface QueueJobDefaults {
  /** Bull priority within the queue: 1 runs first. */
  priority: number;
  /** Tries before a job is failed (kept for inspection, see QUEUE_FAILED_JOBS_KEPT). */
  attempts: number;
  /** First retry delay; each next one doubles (exponential backoff). */
  backoffMs: number;
}

/**
 * Per queue. Someone waits on a QR batch (its labels), so it goes first and
 * tries hardest; the idle-code sweep frees seats crews wait for; the orphan
 * sweep and the stats refresh run again on their next interval anyway.
 */
export const JOB_DEFAULTS: Record<string, QueueJobDefaults> = {
  [QUEUES.qr]: { priority: 1, attempts: 5, backoffMs: 1000 },
  [QUEUES.accessCodes]: { priority: 2, attempts: 3, backoffMs: 5000 },
  [QUEUES.chat]: { priority: 3, attempts: 3, backoffMs: 10_000 },
  [QUEUES.stats]: { priority: 3, attempts: 2, backoffMs: 5000 },
};

const OTHER_QUEUES: QueueJobDefaults = { priority: 3, attempts: 3, backoffMs: 5000 };

/** A queue's default job options: its JOB_DEFAULTS, completed jobs trimmed, failed (dead) ones kept as configured. */
export function jobOptions(queue: string, config: AppConfig): JobOptions {
  const d = JOB_DEFAULTS[queue] ?? OTHER_QUEUES;
  return {
    priority: d.priority,
    attempts: d.attempts,
    backoff: { type: 'exponential', delay: d.backoffMs },
    removeOnComplete: config.queueCompletedJobsKept,
    removeOnFail: config.queueFailedJobsKept === 0 ? false : config.queueFailedJobsKept,
  };
}

/** `BullModule.registerQueue` with the queue's default job options (`jobOptions`). */
export function registerQueue(name: string): DynamicModule {
  return BullModule.registerQueueAsync({
    name,
    inject: [APP_CONFIG],
    useFactory: (config: AppConfig) => ({ defaultJobOptions: jobOptions(name, config) }),
  });
}
