import { Process, Processor } from '@nestjs/bull';
import type { Job } from 'bull';
import { QUEUES } from '../../infra/queue/queue.module';
import { DELIVER_JOB, WebhooksService } from './webhooks.service';

/**
 * Delivery attempts. At shutdown Bull's close waits for the attempts in
 * flight (each bounded by WEBHOOK_TIMEOUT_MS); an attempt cut short by a
 * crash leaves its delivery claimed until the claim expires, and the relay's
 * sweep queues it again.
 */
@Processor(QUEUES.webhooks)
export class WebhooksProcessor {
  constructor(private readonly webhooks: WebhooksService) {}

  @Process({ name: DELIVER_JOB, concurrency: 8 })
  deliver(job: Job<{ deliveryId: string }>): Promise<string> {
    return this.webhooks.deliver(job.data.deliveryId);
  }
}
