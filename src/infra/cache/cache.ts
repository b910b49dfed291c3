import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { randomBytes } from 'node:crypto';
import { APP_CONFIG, AppConfig } from '../config/config';
import { tieredCacheCounters } from '../observability/metrics';
import { ClusterBus } from '../redis/cluster-bus';
import { RedisBreaker } from '../redis/redis-breaker';
import { REDIS, RedisClient } from '../redis/redis.tokens';
import { jitteredTtlMs } from './ttl-jitter';

/** Cluster-bus topic: cached objects a write changed (`<cache>\n<key>\n<key>…`). */
export const CACHE_INVALIDATE_TOPIC = 'cache-invalidate';

/** How long a generation counter outlives its last invalidation (longer than any TTL). */
const GENERATION_TTL_MS = 2 * 86_400_000;
/** How long a node's claim to load a cold key holds at most (a loader that dies lets others in after this). */
const LOCK_MS = 5_000;
const LOCK_POLL_MS = 15;
/** Invalidations kept for a retry while Redis does not take them (past this, the oldest go: TTLs bound them). */
const PENDING_MAX = 100_000;

/**
 * Sets the value only while the key's generation is still the one read
 * before the load: an invalidation that ran meanwhile (a write committed
 * after the loader's read) wins, and the stale value is dropped. Frees this
 * loader's claim in the same step.
 * KEYS: value, generation, lock; ARGV: generation seen, value, ttl ms, lock token.
 */
const SET_IF_GENERATION = `
local ok = 0
if (redis.call('GET', KEYS[2]) or '') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  ok = 1
end
if redis.call('GET', KEYS[3]) == ARGV[4] then redis.call('DEL', KEYS[3]) end
return ok`;

export interface CacheDefinition<T> {
  /** The cache's name: the metric's `cache` label and the Redis key namespace. */
  name: string;
  /** Seconds in Redis (spread by CACHE_TTL_JITTER); default CACHE_TTL_SECONDS. */
  ttlSeconds?: number;
  /** Milliseconds in this node's LRU; default CACHE_LOCAL_TTL_MS, 0: Redis only. */
  localTtlMs?: number;
  /**
   * Turns the parsed JSON back into the value (Date fields are ISO strings in
   * JSON). Without it the value must be plain JSON data.
   */
  revive?: (json: unknown) => T;
}

interface Flight {
  promise: Promise<unknown>;
  /** An invalidation of the key was heard while loading: the value is answered but not kept here. */
  stale: boolean;
}

interface LocalEntry {
  value: unknown;
}

/**
 * Get-or-load in two tiers: a small per-node LRU in front of Redis, the
 * database behind both (the loader).
 *
 * - Single flight: concurrent gets of a cold key on one node share one load;
 *   across nodes, the first takes a short claim (`SET NX PX`) and the others
 *   wait up to CACHE_LOCK_WAIT_MS for its value before loading themselves.
 * - Invalidation after a write commits: the key's generation is bumped and
 *   its value dropped in Redis, and every node drops its local copy, in one
 *   MULTI with the cluster-bus PUBLISH; awaited before the write answers.
 *   A load that read before the write cannot put its value back: it is kept
 *   only if the generation is still the one read before the load.
 * - The local tier is used only while this node hears the cluster bus (and
 *   the Redis breaker is closed); it is cleared when the bus drops or comes
 *   back, since messages may have been missed meanwhile.
 * - Redis down: every get runs the loader (the database answers), never an
 *   error because of the cache; invalidations that Redis did not take are
 *   retried when the bus is back.
 *
 * Values are stored as JSON; a value from any tier is the JSON round trip of
 * what the loader returned (revived by the definition's `revive`), so a hit
 * and a miss answer alike. Callers must not mutate what they get. A loader's
 * null is answered and not cached.
 */
@Injectable()
export class Cache implements OnApplicationShutdown {
  private readonly logger = new Logger('Cache');
  private readonly local: LRUCache<string, LocalEntry>;
  private readonly flights = new Map<string, Flight>();
  private readonly pending = new Map<string, Set<string>>();
  private readonly defined = new Map<string, NamedCache<unknown>>();
  private closed = false;

  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly bus: ClusterBus,
    private readonly breaker: RedisBreaker,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.local = new LRUCache<string, LocalEntry>({
      max: config.cacheLocalMaxEntries,
      maxSize: config.cacheLocalMaxBytes,
    });
    bus.on(CACHE_INVALIDATE_TOPIC, (message) => {
      const [name, ...keys] = message.split('\n');
      this.dropLocal(name, keys);
    });
    bus.onDown(() => this.forgetLocal());
    bus.onLive(() => {
      this.forgetLocal();
      void this.retryPending();
    });
  }

  /** A named cache; defining a name twice gives the first definition. */
  define<T>(definition: CacheDefinition<T>): NamedCache<T> {
    const known = this.defined.get(definition.name);
    if (known) return known as NamedCache<T>;
    const cache = new NamedCache<T>(this, {
      name: definition.name,
      ttlMs: (definition.ttlSeconds ?? this.config.cacheTtlSeconds) * 1000,
      localTtlMs: definition.localTtlMs ?? this.config.cacheLocalTtlMs,
      revive: definition.revive ?? ((json) => json as T),
      counters: tieredCacheCounters(definition.name),
    });
    this.defined.set(definition.name, cache as NamedCache<unknown>);
    return cache;
  }

  /** @internal */
  localUsable(def: ResolvedDefinition<unknown>): boolean {
    return def.localTtlMs > 0 && this.bus.live && !this.breaker.open;
  }

  /** @internal */
  async get<T>(def: ResolvedDefinition<T>, key: string, load: () => Promise<T | null>): Promise<T | null> {
    const full = `${def.name}:${key}`;
    if (this.localUsable(def)) {
      const hit = this.local.get(full);
      if (hit) {
        def.counters.localHit.inc();
        return hit.value as T;
      }
    }
    const flying = this.flights.get(full);
    if (flying) return flying.promise as Promise<T | null>;
    const flight: Flight = { promise: Promise.resolve(null), stale: false };
    flight.promise = this.fill(def, key, full, load, flight).finally(() => {
      if (this.flights.get(full) === flight) this.flights.delete(full);
    });
    this.flights.set(full, flight);
    return flight.promise as Promise<T | null>;
  }

  private async fill<T>(
    def: ResolvedDefinition<T>,
    key: string,
    full: string,
    load: () => Promise<T | null>,
    flight: Flight,
  ): Promise<T | null> {
    if (this.breaker.open) return this.bypass(def, load);
    const valueKey = `cache:${full}`;
    const genKey = `cache-gen:${full}`;
    const lockKey = `cache-lock:${full}`;
    let generation: string;
    try {
      const [cached, gen] = await this.breaker.run(() => this.redis.mget(valueKey, genKey));
      if (cached !== null) return this.found(def, full, cached, flight);
      generation = gen ?? '';
      const token = randomBytes(9).toString('base64url');
      const claimed = await this.breaker.run(() => this.redis.set(lockKey, token, 'PX', LOCK_MS, 'NX'));
      if (claimed === null) {
        // Another node is loading this key: its value, if it comes in time, saves a load here.
        const theirs = await this.waitForOther(valueKey, lockKey);
        if (theirs !== null) return this.found(def, full, theirs, flight);
      }
      def.counters.miss.inc();
      const value = await load();
      if (value === null) {
        if (claimed !== null) void this.unlock(lockKey, token);
        return null;
      }
      const json = JSON.stringify(value);
      const revived = def.revive(JSON.parse(json));
      const kept = await this.breaker
        .run(() =>
          this.redis.eval(
            SET_IF_GENERATION,
            3,
            valueKey,
            genKey,
            lockKey,
            generation,
            json,
            jitteredTtlMs(def.ttlMs, this.config.cacheTtlJitter),
            claimed === null ? '' : token,
          ),
        )
        .catch(() => 0);
      if (kept === 1) this.keepLocal(def, full, revived, json.length, flight);
      return revived;
    } catch (err) {
      // Redis failed on the way (the breaker counts it): the database answers.
      if (isLoaderError(err)) throw err;
      return this.bypass(def, load);
    }
  }

  private found<T>(def: ResolvedDefinition<T>, full: string, json: string, flight: Flight): T {
    def.counters.hit.inc();
    const value = def.revive(JSON.parse(json));
    this.keepLocal(def, full, value, json.length, flight);
    return value;
  }

  private async bypass<T>(def: ResolvedDefinition<T>, load: () => Promise<T | null>): Promise<T | null> {
    def.counters.bypass.inc();
    const value = await load();
    return value === null ? null : def.revive(JSON.parse(JSON.stringify(value)));
  }

  private keepLocal(
    def: ResolvedDefinition<unknown>,
    full: string,
    value: unknown,
    bytes: number,
    flight: Flight,
  ): void {
    if (flight.stale || !this.localUsable(def)) return;
    this.local.set(full, { value }, { ttl: def.localTtlMs, size: Math.max(1, bytes) });
  }

  private async waitForOther(valueKey: string, lockKey: string): Promise<string | null> {
    const until = Date.now() + this.config.cacheLockWaitMs;
    while (Date.now() < until && !this.closed) {
      await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
      const [value, lock] = await this.breaker.run(() => this.redis.mget(valueKey, lockKey));
      if (value !== null) return value;
      if (lock === null) return null; // they finished without a value to share (or it went stale)
    }
    return null;
  }

  private async unlock(lockKey: string, token: string): Promise<void> {
    await this.breaker
      .run(() =>
        this.redis.eval(
          "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
          1,
          lockKey,
          token,
        ),
      )
      .catch(() => undefined);
  }

  /**
   * Drops these keys everywhere: this node's copies at once, then Redis's
   * values and every other node's copies in one MULTI (generation bumped,
   * value deleted, the bus message published). Call it once the write has
   * committed. Never throws: what Redis does not take is logged and retried
   * when the cluster bus is back (the other nodes' local tiers are off
   * meanwhile, since they do not hear the bus either).
   */
  async invalidate(name: string, keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    this.dropLocal(name, keys);
    try {
      await this.invalidateRemote(name, keys);
    } catch (err) {
      this.logger.warn(
        `cache ${name}: ${keys.length} invalidation(s) not taken by Redis, retried when it is back: ${(err as Error).message}`,
      );
      let set = this.pending.get(name);
      if (!set) this.pending.set(name, (set = new Set()));
      for (const key of keys) {
        if (set.size >= PENDING_MAX) set.delete(set.values().next().value!);
        set.add(key);
      }
    }
  }

  private async invalidateRemote(name: string, keys: readonly string[]): Promise<void> {
    await this.breaker.run(async () => {
      const multi = this.redis.multi();
      for (const key of keys) {
        const full = `${name}:${key}`;
        multi.incr(`cache-gen:${full}`).pexpire(`cache-gen:${full}`, GENERATION_TTL_MS).del(`cache:${full}`);
      }
      multi.publish(this.bus.channelOf(CACHE_INVALIDATE_TOPIC), [name, ...keys].join('\n'));
      const results = await multi.exec();
      const failed = results?.find(([err]) => err);
      if (!results || failed) throw failed?.[0] ?? new Error('MULTI aborted');
    });
  }

  private async retryPending(): Promise<void> {
    for (const [name, keys] of [...this.pending]) {
      this.pending.delete(name);
      await this.invalidate(name, [...keys]);
    }
  }

  private dropLocal(name: string, keys: readonly string[]): void {
    for (const key of keys) {
      const full = `${name}:${key}`;
      this.local.delete(full);
      const flight = this.flights.get(full);
      if (flight) flight.stale = true;
    }
  }

  private forgetLocal(): void {
    this.local.clear();
    for (const flight of this.flights.values()) flight.stale = true;
  }

  onApplicationShutdown(): void {
    this.closed = true;
  }
}

interface ResolvedDefinition<T> {
  name: string;
  ttlMs: number;
  localTtlMs: number;
  revive: (json: unknown) => T;
  counters: ReturnType<typeof tieredCacheCounters>;
}

/** A loader's own failure, told apart from Redis's on the way. */
class LoaderError extends Error {
  constructor(readonly original: unknown) {
    super('loader failed');
  }
}
const isLoaderError = (err: unknown): err is LoaderError => err instanceof LoaderError;

/** One named cache of the Cache service: `get(key, load)` and `invalidate(keys)`. */
export class NamedCache<T> {
  constructor(
    private readonly cache: Cache,
    private readonly def: ResolvedDefinition<T>,
  ) {}

  get name(): string {
    return this.def.name;
  }

  /** The cached value of the key, or the loader's (kept for the next get unless null). */
  get(key: string, load: () => Promise<T | null>): Promise<T | null> {
    return this.cache
      .get(this.def, key, () =>
        load().catch((err: unknown) => {
          throw new LoaderError(err);
        }),
      )
      .catch((err: unknown) => {
        throw isLoaderError(err) ? err.original : err;
      });
  }

  /** Drops the keys on every node and in Redis (see Cache.invalidate); call after the write commits. */
  invalidate(...keys: string[]): Promise<void> {
    return this.cache.invalidate(this.def.name, keys);
  }
}
