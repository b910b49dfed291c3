import { InjectQueue, Process, Processor } from '@nestjs/bull';
import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import type { Queue } from 'bull';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { closeQuietlyAtShutdown, QUEUES, scheduleRepeatable } from '../../infra/queue/queue.module';
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
export class ChatScheduler implements OnApplicationBootstrap {
  private readonly logger = new Logger(ChatScheduler.name);
  constructor(
    @InjectQueue(QUEUES.chat) private readonly queue: Queue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    closeQuietlyAtShutdown(queue, this.logger);
  }

  /** Never awaited by the boot: with Redis down the service still starts. */
  onApplicationBootstrap(): void {
    this.scheduled = this.schedule();
  }

  scheduled: Promise<void> = Promise.resolve();

  private schedule(): Promise<void> {
    return scheduleRepeatable(
      this.queue,
      {
        name: SWEEP_ORPHANS_JOB,
        jobId: 'chat-orphan-sweep',
        every: this.config.chatAttachmentSweepMs,
        what: 'the orphan attachment sweep',
      },
      this.logger,
    );
  }
}
