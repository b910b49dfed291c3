import { InjectQueue, Process, Processor } from '@nestjs/bull';
import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import type { Queue } from 'bull';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { closeQuietlyAtShutdown, QUEUES, scheduleRepeatable } from '../../infra/queue/queue.module';
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
export class StatsScheduler implements OnApplicationBootstrap {
  private readonly logger = new Logger(StatsScheduler.name);
  constructor(
    @InjectQueue(QUEUES.stats) private readonly queue: Queue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    closeQuietlyAtShutdown(queue, this.logger);
  }

  /** Never awaited by the boot: with Redis down the service still starts (and stats report their age). */
  onApplicationBootstrap(): void {
    this.scheduled = this.schedule();
  }

  /** Settles once the schedule is in place (or failed and was logged). */
  scheduled: Promise<void> = Promise.resolve();

  private schedule(): Promise<void> {
    return scheduleRepeatable(
      this.queue,
      {
        name: REFRESH_STATS_JOB,
        jobId: 'org-stats-refresh',
        every: this.config.statsRefreshMs,
        what: 'the stats refresh',
      },
      this.logger,
    );
  }
}
