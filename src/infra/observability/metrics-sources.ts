import { getQueueToken } from '@nestjs/bull';
import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { Queue } from 'bull';
import { Db } from '../db/db.service';
import { QUEUES } from '../queue/queue.module';
import { collectProcessMetrics, watchDbPools, watchQueue } from './metrics';
import { withTimeout } from './with-timeout';

/** A scrape does not wait longer than this for a queue's counts (Redis slow or down). */
const QUEUE_COUNTS_TIMEOUT_MS = 1000;

function queueCounts(queue: Queue): Promise<Record<string, number>> {
  // Commands to a disconnected client wait in its offline queue: do not even ask.
  if (queue.client.status !== 'ready') return Promise.reject(new Error(`redis ${queue.client.status}`));
  return withTimeout(queue.getJobCounts(), QUEUE_COUNTS_TIMEOUT_MS).then((c) => ({ ...c }));
}

/**
 * Hands this app instance's database pools and Bull queues to the
 * scrape-time gauges of `metrics.ts`, and takes them back on shutdown. Also
 * turns on the process metrics (once per process).
 */
@Injectable()
export class MetricsSources implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(MetricsSources.name);
  private readonly unwatch: (() => void)[] = [];

  constructor(
    private readonly db: Db,
    private readonly moduleRef: ModuleRef,
  ) {}

  onModuleInit(): void {
    collectProcessMetrics();
    this.unwatch.push(watchDbPools(() => this.db.poolUse()));
    for (const name of Object.values(QUEUES)) {
      let queue: Queue;
      try {
        queue = this.moduleRef.get<Queue>(getQueueToken(name), { strict: false });
      } catch {
        this.logger.warn(`queue ${name} is not registered: its depth is not reported`);
        continue;
      }
      this.unwatch.push(watchQueue({ name, counts: () => queueCounts(queue) }));
    }
  }

  onApplicationShutdown(): void {
    for (const stop of this.unwatch.splice(0)) stop();
  }
}
