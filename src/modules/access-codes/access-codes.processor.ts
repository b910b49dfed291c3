import { InjectQueue, Process, Processor } from '@nestjs/bull';
import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import type { Queue } from 'bull';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { closeQuietlyAtShutdown, QUEUES, scheduleRepeatable } from '../../infra/queue/queue.module';
import { AccessCodesService, IdleSweepResult } from './access-codes.service';

export const END_IDLE_SESSIONS_JOB = 'end-idle-sessions';

/** Ends idle code sessions: a repeatable job (one run per interval across all nodes). */
@Processor(QUEUES.accessCodes)
export class AccessCodesProcessor {
  private readonly logger = new Logger(AccessCodesProcessor.name);
  constructor(private readonly codes: AccessCodesService) {}

  @Process(END_IDLE_SESSIONS_JOB)
  async endIdleSessions(): Promise<IdleSweepResult> {
    const result = await this.codes.endIdleSessions();
    if (result.ended > 0) this.logger.log(`ended ${result.ended} idle code sessions in ${result.batches} batches`);
    return result;
  }
}

@Injectable()
export class AccessCodesScheduler implements OnApplicationBootstrap {
  private readonly logger = new Logger(AccessCodesScheduler.name);
  constructor(
    @InjectQueue(QUEUES.accessCodes) private readonly queue: Queue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    closeQuietlyAtShutdown(queue, this.logger);
  }

  /** Never awaited by the boot: with Redis down the service still starts. */
  onApplicationBootstrap(): void {
    this.scheduled = this.schedule();
  }

  /** Settles once the schedule is in place (or failed and was logged). */
  scheduled: Promise<void> = Promise.resolve();

  private schedule(): Promise<void> {
    return scheduleRepeatable(
      this.queue,
      {
        name: END_IDLE_SESSIONS_JOB,
        jobId: 'access-code-idle-sweep',
        every: this.config.accessCodeIdleSweepMs,
        what: 'the idle sweep of code sessions',
      },
      this.logger,
    );
  }
}
