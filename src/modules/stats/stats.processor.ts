import { InjectQueue, Process, Processor } from '@nestjs/bull';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Queue } from 'bull';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { QUEUES, RepeatableJobScheduler } from '../../infra/queue/queue.module';
import { StatsService } from './stats.service';

export const REFRESH_STATS_JOB = 'refresh';

/** Refreshes the org stats view: a repeatable job (one run per interval across all nodes). */
@Processor(QUEUES.stats)
export class StatsProcessor {
  private readonly logger = new Logger(StatsProcessor.name);
  constructor(private readonly stats: StatsService) {}

  @Process(REFRESH_STATS_JOB)
  async refresh(): Promise<void> {
    const started = Date.now();
    await this.stats.refresh();
    this.logger.debug(`org_stats refreshed in ${Date.now() - started} ms`);
  }
}

@Injectable()
export class StatsScheduler extends RepeatableJobScheduler {
  constructor(@InjectQueue(QUEUES.stats) queue: Queue, @Inject(APP_CONFIG) config: AppConfig) {
    super(
      queue,
      { name: REFRESH_STATS_JOB, jobId: 'org-stats-refresh', every: config.statsRefreshMs, what: 'the stats refresh' },
      new Logger(StatsScheduler.name),
    );
  }
}
