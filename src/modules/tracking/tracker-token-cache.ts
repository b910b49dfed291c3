import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { ClusterBus } from '../../infra/redis/cluster-bus';
import { TRACKER_TOKEN_ROTATED_TOPIC } from '../orgs/orgs.service';
import { DRIVER_ACCESS_TOPIC, TRIP_STATE_TOPIC } from '../trips/trips.service';

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
    // The node making a change runs these at once (ClusterBus.announce), every other node when the message arrives.
    for (const topic of [TRACKER_TOKEN_ROTATED_TOPIC, TRIP_STATE_TOPIC, DRIVER_ACCESS_TOPIC]) bus.on(topic, () => this.clear());
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
