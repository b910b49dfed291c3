import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DomainError } from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { REDIS, RedisClient } from '../../infra/redis/redis.module';

/** A slot is a lease: renewed while its export runs, gone this long after its node stops renewing it. */
const LEASE_MS = 60_000;
const RENEW_MS = LEASE_MS / 3;
/** A Redis call slower than this counts as Redis being down (the export then counts on this node). */
const REDIS_WAIT_MS = 500;

/**
 * KEYS[1]: the user's sorted set of slots, scored by lease expiry (Redis
 * clock). Drops expired leases, then adds ARGV[1] if fewer than ARGV[2] are
 * held. Returns 0 when taken, else the ms until the oldest lease ends.
 */
const ACQUIRE = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) - now)
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 0
`;

/** Renews a held lease (XX: a lease that already expired is not brought back). */
const RENEW = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

interface WithScripts {
  exportSlotAcquire(key: string, slot: string, max: number, leaseMs: number): Promise<number>;
  exportSlotRenew(key: string, slot: string, leaseMs: number): Promise<number>;
}

const slotsKey = (userId: string) => `export-slots:${userId}`;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('redis did not answer in time')), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** A held export slot: `release()` frees it (once; later calls do nothing). */
export interface ExportSlot {
  release(): void;
}

/**
 * At most `EXPORT_MAX_PER_USER` CSV statement exports per user at once,
 * across nodes: each export holds a lease in a Redis sorted set per user
 * (taken atomically by a script, renewed while it runs, removed at its end).
 * A node that dies without releasing leaves leases that expire within a
 * minute. With Redis unreachable the count falls back to this node alone
 * (the cap then holds per node), so exports keep working.
 */
@Injectable()
export class ExportSlots implements OnApplicationShutdown {
  private readonly logger = new Logger(ExportSlots.name);
  /** Slots held through this node, by user: the fallback count and what shutdown releases. */
  private readonly local = new Map<string, Set<string>>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    redis.defineCommand('exportSlotAcquire', { numberOfKeys: 1, lua: ACQUIRE });
    redis.defineCommand('exportSlotRenew', { numberOfKeys: 1, lua: RENEW });
  }

  private get scripts(): WithScripts {
    return this.redis as unknown as WithScripts;
  }

  /** Takes a slot for the user, or throws 429 RATE_LIMITED with Retry-After. */
  async acquire(userId: string): Promise<ExportSlot> {
    const max = this.config.exportMaxPerUser;
    const slot = randomUUID();
    const mine = this.local.get(userId) ?? new Set<string>();
    let shared = true;
    let waitMs: number;
    try {
      waitMs = await withTimeout(this.scripts.exportSlotAcquire(slotsKey(userId), slot, max, LEASE_MS), REDIS_WAIT_MS);
    } catch (err) {
      // Redis down: count this node's exports of the user only.
      shared = false;
      waitMs = mine.size >= max ? 1000 : 0;
      this.logger.warn(`export slots counted on this node only: ${(err as Error).message}`);
    }
    if (waitMs > 0) {
      throw new DomainError(
        ErrorCode.RATE_LIMITED,
        `At most ${max} statement exports may run at once per user; retry when one has finished`,
        undefined,
        { 'Retry-After': String(Math.max(1, Math.ceil(waitMs / 1000))) },
      );
    }
    mine.add(slot);
    this.local.set(userId, mine);
    const renew = shared
      ? setInterval(() => {
          void withTimeout(this.scripts.exportSlotRenew(slotsKey(userId), slot, LEASE_MS), REDIS_WAIT_MS).catch(
            () => undefined,
          );
        }, RENEW_MS)
      : undefined;
    if (renew) {
      renew.unref();
      this.timers.add(renew);
    }
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        if (renew) {
          clearInterval(renew);
          this.timers.delete(renew);
        }
        mine.delete(slot);
        if (!mine.size) this.local.delete(userId);
        if (shared) void this.redis.zrem(slotsKey(userId), slot).catch(() => undefined);
      },
    };
  }

  async onApplicationShutdown(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers.clear();
    const pending = [...this.local].flatMap(([userId, slots]) =>
      [...slots].map((slot) => this.redis.zrem(slotsKey(userId), slot).catch(() => 0)),
    );
    this.local.clear();
    await withTimeout(Promise.all(pending), REDIS_WAIT_MS).catch(() => undefined);
  }
}
