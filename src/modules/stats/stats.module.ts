import { Module } from '@nestjs/common';
import { QUEUES, registerQueue } from '../../infra/queue/queue.module';
import { OrgsModule } from '../orgs/orgs.module';
import { StatsController } from './stats.controller';
import { StatsProcessor, StatsScheduler } from './stats.processor';
import { StatsRepository } from './stats.repository';
import { StatsService } from './stats.service';

@Module({
  imports: [OrgsModule, registerQueue(QUEUES.stats)],
  controllers: [StatsController],
  providers: [StatsService, StatsRepository, StatsProcessor, StatsScheduler],
  exports: [StatsService],
})
export class StatsModule {}
