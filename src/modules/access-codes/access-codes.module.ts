import { Module } from '@nestjs/common';
import { QUEUES, registerQueue } from '../../infra/queue/queue.module';
import { AuthModule } from '../auth/auth.module';
import { OrgsModule } from '../orgs/orgs.module';
import { AccessCodesController } from './access-codes.controller';
import { AccessCodesProcessor, AccessCodesScheduler } from './access-codes.processor';
import { AccessCodesRepository } from './access-codes.repository';
import { AccessCodesService } from './access-codes.service';

@Module({
  imports: [AuthModule, OrgsModule, registerQueue(QUEUES.accessCodes)],
  controllers: [AccessCodesController],
  providers: [AccessCodesService, AccessCodesRepository, AccessCodesProcessor, AccessCodesScheduler],
  exports: [AccessCodesService],
})
export class AccessCodesModule {}
