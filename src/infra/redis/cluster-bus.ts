import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../config/config';
import { REDIS, RedisClient } from './redis.tokens';

type Handler = (message: string) => void;

/**
 * Messages every node must see at once (a revoked session, a trip's status
 * change), over one Redis pub/sub subscription per node.
 *
 * A node may keep a local copy of shared state only while it hears every
 * change: `live` is true from the moment the subscription is confirmed until
 * the connection drops. `onLive` listeners run each time it (re)starts, so
 * they can reload or forget what they may have missed meanwhile; `onDown`
 * listeners run when it drops. Handlers and listeners are registered in
 * constructors, before the subscriber connects.
 */
@Injectable()
export class ClusterBus implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(ClusterBus.name);
  private subscriber?: RedisClient;
  private readonly handlers = new Map<string, Handler[]>();
  private readonly liveListeners: (() => void)[] = [];
  private readonly downListeners: (() => void)[] = [];
  private isLive = false;
  private round = 0;

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * The channel of a topic (for a PUBLISH queued in a MULTI with the writes it
   * announces). Channels are not keys, so ioredis does not prefix them: the
   * key prefix is added here, keeping deployments on one Redis apart.
   */
  channelOf(topic: string): string {
    return `${this.config.redisKeyPrefix}${topic}`;
  }

  on(topic: string, handler: Handler): void {
    const channel = this.channelOf(topic);
    this.handlers.set(channel, [...(this.handlers.get(channel) ?? []), handler]);
  }

  onLive(listener: () => void): void {
    this.liveListeners.push(listener);
  }

  onDown(listener: () => void): void {
    this.downListeners.push(listener);
  }

  /** Whether a message published now reaches this node. */
  get live(): boolean {
    return this.isLive;
  }

  /** Publishes on the main connection; rejects if Redis does not take it. */
  async publish(topic: string, message: string): Promise<void> {
    await this.redis.publish(this.channelOf(topic), message);
  }

  /**
   * Runs this node's handlers of the topic at once, then publishes to every
   * node: a change is in force here before the caller answers, whatever
   * Redis does. The handlers run again when the message comes back, so they
   * must be idempotent (dropping a cached entry is).
   */
  async announce(topic: string, message: string): Promise<void> {
    this.dispatch(this.channelOf(topic), message);
    await this.publish(topic, message);
  }

  onModuleInit(): void {
    const sub = this.redis.duplicate({
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      connectionName: `${this.config.redisKeyPrefix}bus`,
    });
    this.subscriber = sub;
    sub.on('error', () => undefined); // the main client logs Redis trouble
    sub.on('close', () => this.down());
    sub.on('ready', () => void this.subscribe());
    sub.on('message', (channel: string, message: string) => this.dispatch(channel, message));
  }

  private dispatch(channel: string, message: string): void {
    for (const handler of this.handlers.get(channel) ?? []) {
      try {
        handler(message);
      } catch (err) {
        this.logger.error(`handler of ${channel} failed: ${(err as Error).message}`);
      }
    }
  }

  onApplicationShutdown(): void {
    this.down();
    this.subscriber?.disconnect();
  }

  private async subscribe(): Promise<void> {
    const round = ++this.round;
    try {
      if (this.handlers.size) await this.subscriber!.subscribe(...this.handlers.keys());
    } catch (err) {
      this.logger.warn(`cluster subscription failed, local copies stay off: ${(err as Error).message}`);
      return;
    }
    if (round !== this.round || this.subscriber?.status !== 'ready') return;
    this.isLive = true;
    for (const listener of this.liveListeners) listener();
  }

  private down(): void {
    this.round++;
    if (!this.isLive) return;
    this.isLive = false;
    for (const listener of this.downListeners) listener();
  }
}
