import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { ClusterBus } from '../../infra/redis/cluster-bus';
import { RedisBreaker } from '../../infra/redis/redis-breaker';
import { REDIS, RedisClient } from '../../infra/redis/redis.module';

const KEY = (sessionId: string) => `revoked-session:${sessionId}`;
/** Every revocation still in force, scored by when it lapses (ms): what a node loads when it (re)connects. */
const INDEX = 'revoked-sessions';
/** The cluster-bus topic a revocation is announced on: "<sessionId> <until ms>". */
const TOPIC = 'revoked-sessions';

/**
 * Sessions ended before their access tokens expire (logout, a reused refresh
 * token), refused on every node for one access-token lifetime.
 *
 * Every authenticated request asks, so the answer comes from a copy in this
 * process, not from a Redis round trip: a revocation is written to Redis (a
 * key per session, for the fallback, and a sorted set of all of them) and
 * published on the cluster bus; each node loads the sorted set whenever its
 * bus subscription (re)starts and every `REVOCATION_RESYNC_MS` as a backstop.
 * The node that revokes refuses the token at once; other nodes as soon as the
 * message arrives (well under a millisecond on one network). While a node's
 * subscription is down it asks Redis per request, as before; while Redis is
 * down altogether it fails open (drivers keep posting; an ended session's
 * access token lives at most one TTL anyway), and those per-request checks
 * go through the Redis breaker so that an outage costs each request nothing
 * once it is open. A revocation that cannot be stored rejects (logout is then
 * a 503 its client retries; this node already refuses the session).
 */
@Injectable()
export class SessionRevocations implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(SessionRevocations.name);
  private redisDownSince = 0;
  /** sessionId → when its revocation lapses (ms since epoch). */
  private readonly revoked = new Map<string, number>();
  /** True while the bus is live and the copy was loaded after it (re)started. */
  private synced = false;
  private syncRound = 0;
  private resyncTimer?: NodeJS.Timeout;
  private readonly revokedListeners: ((sessionId: string) => void)[] = [];

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly bus: ClusterBus,
    private readonly breaker: RedisBreaker,
  ) {
    bus.on(TOPIC, (message) => {
      const [sessionId, until] = message.split(' ');
      this.remember(sessionId, Number(until));
    });
    bus.onLive(() => void this.resync());
    bus.onDown(() => {
      this.syncRound++;
      this.synced = false;
    });
  }

  onModuleInit(): void {
    this.resyncTimer = setInterval(() => {
      this.sweep();
      if (!this.bus.live) return;
      if (this.synced) this.load(this.syncRound).catch(() => undefined);
      else void this.resync();
    }, this.config.revocationResyncMs);
    this.resyncTimer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.resyncTimer);
    this.synced = false;
  }

  /**
   * Runs once per session as this node learns of its revocation: revoked
   * here, announced by another node, or loaded at a resync. The realtime
   * gateway disconnects the session's sockets with it.
   */
  onRevoked(listener: (sessionId: string) => void): void {
    this.revokedListeners.push(listener);
  }

  async revoke(sessionId: string): Promise<void> {
    const ttl = this.config.accessTokenTtlSeconds + 5;
    const until = Date.now() + ttl * 1000;
    this.remember(sessionId, until);
    const res = await this.breaker.run(() =>
      this.redis
        .multi()
        .set(KEY(sessionId), '1', 'EX', ttl)
        .zadd(INDEX, until, sessionId)
        .zremrangebyscore(INDEX, '-inf', Date.now())
        .publish(this.bus.channelOf(TOPIC), `${sessionId} ${until}`)
        .exec(),
    );
    const failed = res?.find(([err]) => err);
    if (!res || failed) throw failed?.[0] ?? new Error('revocation not stored');
  }

  async isRevoked(sessionId: string): Promise<boolean> {
    // What this node knows is in force even while the copy is not complete (a revocation is never undone).
    const until = this.revoked.get(sessionId);
    if (until !== undefined && until > Date.now()) return true;
    if (this.synced) return false;
    try {
      const revoked = (await this.breaker.run(() => this.redis.exists(KEY(sessionId)))) === 1;
      this.redisDownSince = 0;
      return revoked;
    } catch (err) {
      if (!this.redisDownSince) {
        this.redisDownSince = Date.now();
        this.logger.warn(`session revocation check skipped, Redis unavailable: ${(err as Error).message}`);
      }
      return false;
    }
  }

  private remember(sessionId: string, until: number): void {
    if (!sessionId || !Number.isFinite(until) || until <= Date.now()) return;
    const known = this.revoked.get(sessionId);
    if ((known ?? 0) < until) this.revoked.set(sessionId, until);
    if (known !== undefined) return;
    for (const listener of this.revokedListeners) {
      try {
        listener(sessionId);
      } catch (err) {
        this.logger.error(`revocation listener failed: ${(err as Error).message}`);
      }
    }
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, until] of this.revoked) if (until <= now) this.revoked.delete(id);
  }

  /** Loads what is in force once the bus is live: a revocation made meanwhile arrives by message or is in the load. */
  private async resync(): Promise<void> {
    const round = ++this.syncRound;
    this.synced = false;
    try {
      await this.load(round);
    } catch (err) {
      this.logger.warn(`revocation list not loaded, checking Redis per request: ${(err as Error).message}`);
    }
  }

  private async load(round: number): Promise<void> {
    try {
      const flat = await this.redis.zrangebyscore(INDEX, Date.now(), '+inf', 'WITHSCORES');
      for (let i = 0; i < flat.length; i += 2) this.remember(flat[i], Number(flat[i + 1]));
      if (round === this.syncRound && this.bus.live) this.synced = true;
    } catch (err) {
      this.synced = false;
      throw err;
    }
  }

  /** For tests and health: whether answers come from the local copy. */
  get usingLocalCopy(): boolean {
    return this.synced;
  }
}
