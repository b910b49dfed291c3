import { InjectQueue, Process, Processor } from '@nestjs/bull';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Queue } from 'bull';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { QUEUES, RepeatableJobScheduler } from '../../infra/queue/queue.module';
import { AttachmentsService } from './attachments.service';

export const SWEEP_ORPHANS_JOB = 'sweep-orphan-attachments';

/** Deletes attachments no message carried in time: a repeatable job (one run per interval across all nodes). */
@Processor(QUEUES.chat)
export class ChatProcessor {
  private readonly logger = new Logger(ChatProcessor.name);
  constructor(private readonly attachments: AttachmentsService) {}

  @Process(SWEEP_ORPHANS_JOB)
  async sweep(): Promise<void> {
    const removed = await this.attachments.sweepOrphans();
    if (removed > 0) this.logger.log(`removed ${removed} orphan attachment(s)`);
  }
}

@Injectable()
export class ChatScheduler extends RepeatableJobScheduler {
  constructor(@InjectQueue(QUEUES.chat) queue: Queue, @Inject(APP_CONFIG) config: AppConfig) {
    super(
      queue,
      {
        name: SWEEP_ORPHANS_JOB,
        jobId: 'chat-orphan-sweep',
        every: config.chatAttachmentSweepMs,
        what: 'the orphan attachment sweep',
      },
      new Logger(ChatScheduler.name),
    );
  }
}
