import { Process, Processor } from '@nestjs/bull';
import { Logger } from '@nestjs/common';
import type { Job } from 'bull';
import { QUEUES } from '../../infra/queue/queue.module';
import { QR_BATCH_JOB, QrService } from './qr.service';

/** Makes the tags of a batch (POST /qr/batches); a retried job inserts only what is missing. */
@Processor(QUEUES.qr)
export class QrProcessor {
  private readonly logger = new Logger(QrProcessor.name);
  constructor(private readonly qr: QrService) {}

  @Process(QR_BATCH_JOB)
  async createBatch(job: Job<{ batchId: string }>): Promise<number> {
    try {
      return await this.qr.runBatch(job.data.batchId, async (done, total) => {
        await job.progress(Math.floor((done / total) * 100));
      });
    } catch (err) {
      const attempts = job.opts.attempts ?? 1;
      if (job.attemptsMade + 1 >= attempts) {
        this.logger.error(`batch ${job.data.batchId} failed: ${(err as Error).message}`);
        await this.qr.failBatch(job.data.batchId).catch(() => undefined);
      }
      throw err;
    }
  }
}
