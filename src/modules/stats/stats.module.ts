import { BullModule } from '@nestjs/bull';
import { Module } from '@nestjs/common';
import { QUEUES } from '../../infra/queue/queue.module';
import { OrgsModule } from '../orgs/orgs.module';
import { StatsController } from './stats.controller';
import { StatsProcessor, StatsScheduler } from './stats.processor';
import { StatsRepository } from './stats.repository';
import { StatsService } from './stats.service';

@Module({
  imports: [OrgsModule, BullModule.registerQueue({ name: QUEUES.stats })],
  controllers: [StatsController],
  providers: [StatsService, StatsRepository, StatsProcessor, StatsScheduler],
  exports: [StatsService],
})
export class StatsModule {}
