import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { OutboxWriter } from '../../infra/outbox/outbox-writer';
import { WebhooksRepository } from './webhooks.repository';
import { WebhooksService } from './webhooks.service';

const BATCH = 200;
/** A pending delivery due this long ago that no worker holds has lost its job. */
const STALE_MS = 60_000;
const SWEEP_EVERY_MS = 30_000;

/**
 * Drains the outbox into deliveries and queues their jobs. Every node runs
 * one; they share the work through `FOR UPDATE SKIP LOCKED` in the relay's
 * transaction (no session state, so it works through PgBouncer in
 * transaction mode). It polls, and is woken right after a commit on this
 * node. What was committed but not queued (a crash, Redis down) is found
 * again by the sweep of stale pending deliveries.
 */
@Injectable()
export class WebhookRelay implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(WebhookRelay.name);
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private lastSweep = 0;
  private lastError = 0;

  constructor(
    private readonly repo: WebhooksRepository,
    private readonly webhooks: WebhooksService,
    outbox: OutboxWriter,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    outbox.onWritten(() => this.nudge());
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => this.nudge(), this.config.webhooks.relayIntervalMs);
    this.timer.unref();
    this.nudge();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }

  /** Runs the relay now, or once more right after the current run. */
  nudge(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.run().finally(() => {
      this.running = null;
      if (this.again && !this.stopped) {
        this.again = false;
        this.nudge();
      }
    });
  }

  /** Drains until the outbox is empty (tests and the shutdown wait on it). */
  async drain(): Promise<void> {
    while (this.running) await this.running;
    await this.run();
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        const { taken, deliveries } = await this.repo.relayBatch(BATCH);
        if (deliveries.length) await this.webhooks.enqueue(deliveries);
        if (taken < BATCH || this.stopped) break;
      }
      if (Date.now() - this.lastSweep >= SWEEP_EVERY_MS) {
        this.lastSweep = Date.now();
        const stale = await this.repo.staleDeliveries(STALE_MS, BATCH);
        if (stale.length) await this.webhooks.enqueue(stale.map((s) => ({ id: s.id, nextAttemptAt: new Date() })));
      }
    } catch (err) {
      // Database or Redis down: the next tick tries again; one line per minute at most.
      if (Date.now() - this.lastError > 60_000) {
        this.lastError = Date.now();
        this.logger.warn(`outbox relay failed: ${(err as Error).message}`);
      }
    }
  }
}
