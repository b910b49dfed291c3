import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { ClusterBus } from '../../infra/redis/cluster-bus';

/** Cluster-bus topic: a driver's tracker token was rotated (the driver profile's id). */
const TRACKER_TOKEN_TOPIC = 'tracker-token';
/** Topics after which a cached token → trip answer may be wrong (the trips module announces them). */
const TRIP_STATE_TOPIC = 'trip-state';
const DRIVER_ACCESS_TOPIC = 'driver-access';
/** Tokens this node remembers (the oldest entry goes first). */
const MAX_ENTRIES = 10_000;

export interface TokenTrip {
  driverFound: boolean;
  tripId: string | null;
}

interface Entry {
  at: number;
  found: Promise<TokenTrip>;
}

/** The caches of each node (one ClusterBus per node), so that a change made on a node clears its own at once. */
const cachesOf = new WeakMap<ClusterBus, Set<TrackerTokenCache>>();

/**
 * Drops every cached token → trip answer on this node at once and, before it
 * returns, announces it to every other node: call after a tracker token is
 * rotated (its commit), so the old token is refused everywhere.
 */
export async function trackerTokenRotated(bus: ClusterBus, driverId: string): Promise<void> {
  trackerTokensChangedHere(bus);
  await bus.publish(TRACKER_TOKEN_TOPIC, driverId);
}

/** Drops every cached token → trip answer of this node (a trip's status changed here; the bus tells the others). */
export function trackerTokensChangedHere(bus: ClusterBus): void {
  for (const cache of cachesOf.get(bus) ?? []) cache.clear();
}

/**
 * OsmAnd's token → active trip lookup, remembered per node so that a stream of
 * single fixes does not read the driver profile and its trips each time.
 * Only found drivers are kept (an unknown token is always looked up, and
 * counted). Every trip status change, driver profile ended or resumed, and
 * token rotation, on any node, clears this node's copy (cluster bus; on the
 * node that made the change, before it answers). Entries live up to
 * `tripStateCacheLiveMs` while the bus is heard, `tripStateCacheMs` while it
 * is not (the ingest state cache's ages: the same changes end both).
 */
@Injectable()
export class TrackerTokenCache {
  private readonly logger = new Logger(TrackerTokenCache.name);
  private readonly entries = new Map<string, Entry>();
  /** Bumped by every clear: a lookup that started before it is not stored. */
  private generation = 0;

  constructor(
    private readonly bus: ClusterBus,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    let mine = cachesOf.get(bus);
    if (!mine) cachesOf.set(bus, (mine = new Set()));
    mine.add(this);
    for (const topic of [TRACKER_TOKEN_TOPIC, TRIP_STATE_TOPIC, DRIVER_ACCESS_TOPIC]) bus.on(topic, () => this.clear());
    // Changes made while the subscription was down were not heard.
    bus.onLive(() => this.clear());
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
  }

  /** The answer for this token digest: remembered, or read by `read` (concurrent misses share one read). */
  lookup(tokenHash: string, read: () => Promise<TokenTrip>): Promise<TokenTrip> {
    const maxAgeMs = this.bus.live ? this.config.tripStateCacheLiveMs : this.config.tripStateCacheMs;
    if (maxAgeMs <= 0) return read();
    const now = Date.now();
    const hit = this.entries.get(tokenHash);
    if (hit && now - hit.at < maxAgeMs) return hit.found;
    if (hit) this.entries.delete(tokenHash);
    const generation = this.generation;
    const found = read();
    const entry: Entry = { at: now, found };
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(tokenHash, entry);
    const forget = () => {
      if (this.entries.get(tokenHash) === entry) this.entries.delete(tokenHash);
    };
    found.then(
      (f) => {
        if (!f.driverFound || generation !== this.generation) forget();
      },
      (err: Error) => {
        forget();
        this.logger.debug(`tracker token lookup failed: ${err.message}`);
      },
    );
    return found;
  }
}
