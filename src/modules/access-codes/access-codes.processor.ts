import { InjectQueue, Process, Processor } from '@nestjs/bull';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Queue } from 'bull';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { QUEUES, RepeatableJobScheduler } from '../../infra/queue/queue.module';
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
export class AccessCodesScheduler extends RepeatableJobScheduler {
  constructor(@InjectQueue(QUEUES.accessCodes) queue: Queue, @Inject(APP_CONFIG) config: AppConfig) {
    super(
      queue,
      {
        name: END_IDLE_SESSIONS_JOB,
        jobId: 'access-code-idle-sweep',
        every: config.accessCodeIdleSweepMs,
        what: 'the idle sweep of code sessions',
      },
      new Logger(AccessCodesScheduler.name),
    );
  }
}
