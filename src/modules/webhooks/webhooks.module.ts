import { Module } from '@nestjs/common';
import { QUEUES, registerQueue } from '../../infra/queue/queue.module';
import { OrgsModule } from '../orgs/orgs.module';
import { WebhookRelay } from './webhook-relay';
import { WebhooksController } from './webhooks.controller';
import { WebhooksProcessor } from './webhooks.processor';
import { WebhooksRepository } from './webhooks.repository';
import { WebhooksService } from './webhooks.service';

@Module({
  imports: [OrgsModule, registerQueue(QUEUES.webhooks)],
  controllers: [WebhooksController],
  providers: [WebhooksService, WebhooksRepository, WebhookRelay, WebhooksProcessor],
  exports: [WebhooksService, WebhookRelay],
})
export class WebhooksModule {}
