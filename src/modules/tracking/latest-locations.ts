import { Inject, Injectable } from '@nestjs/common';
import { cacheCounters } from '../../infra/observability/metrics';
import { RedisBreaker } from '../../infra/redis/redis-breaker';
import { REDIS, RedisClient } from '../../infra/redis/redis.module';
import { TrackPoint } from '../trips/trips.schemas';
import { TripsService } from '../trips/trips.service';
import { PingRow } from './ping-filters';

/** A trip's latest location as the API shows it. */
export interface LatestLocation {
  lat: number;
  lng: number;
  speed: number | null;
  heading: number | null;
  recordedAt: string;
}

const LATEST_TTL_S = 7 * 24 * 3600;
/** Trips whose last committed point this process remembers (the oldest entry goes first). */
const COMMITTED_LATEST_MAX = 10_000;
const latestKey = (tripId: string) => `trip-latest:${tripId}`;
/** SET key value EX ttl, unless the stored value's recordedAt (ISO, so comparable as text) is as new or newer. */
const SET_LATEST_IF_NEWER = `
  local current = redis.call('GET', KEYS[1])
  if current then
    local ok, stored = pcall(cjson.decode, current)
    if ok and type(stored) == 'table' and type(stored.recordedAt) == 'string' and stored.recordedAt >= ARGV[2] then
      return 0
    end
  end
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
  return 1`;

const latestCache = cacheCounters('trip_latest');

const toLatest = (p: TrackPoint): LatestLocation => ({
  lat: p.lat,
  lng: p.lng,
  speed: p.speed,
  heading: p.heading,
  recordedAt: p.recordedAt.toISOString(),
});

/**
 * A trip's latest location, in one place. It is known at three depths:
 *
 * - the newest point this node committed, remembered at the commit (before
 *   the writers are answered), while the after-flush round catches up behind
 *   the answers;
 * - Redis `trip-latest:<id>`, written after each round (never moved backwards:
 *   rounds of two nodes may reach Redis out of order);
 * - the trip row's `latest_*` columns, which the round writes under the trip's
 *   row lock (trips owns the table; `TripTrackState.latest` is that column's
 *   value as read).
 *
 * Everything that needs "the latest location" of a trip asks this class, which
 * merges them: the ping filters (through `newest`, with the row's value the
 * ingest state already carries, so no extra read) and
 * `GET /tracking/trips/:id/latest` (`read`). `GET /trips/:id` shows the row's
 * columns only (trips does not depend on tracking; the contract lets trip
 * reads lag briefly behind the points).
 */
@Injectable()
export class LatestLocations {
  /** The newest point this process committed per trip; the map's order is its age. */
  private readonly committed = new Map<string, TrackPoint>();

  constructor(
    private readonly trips: TripsService,
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly redisBreaker: RedisBreaker,
  ) {}

  /** Remembers the newest of a flush's committed points per trip (synchronously, before its writers are answered). */
  noteCommitted(byTrip: Map<string, PingRow[]>): void {
    for (const [tripId, rows] of byTrip) {
      let newest = this.committed.get(tripId);
      for (const r of rows) {
        if (!newest || r.recordedAt.getTime() > newest.recordedAt.getTime()) {
          newest = { lat: r.lat, lng: r.lng, speed: r.speed, heading: r.heading ?? null, recordedAt: r.recordedAt };
        }
      }
      if (!newest) continue;
      this.committed.delete(tripId); // re-inserted last: the map's order is its age
      if (this.committed.size >= COMMITTED_LATEST_MAX) this.committed.delete(this.committed.keys().next().value!);
      this.committed.set(tripId, newest);
    }
  }

  /**
   * The newer of `stored` (the trip row's latest, as the caller read it) and
   * the newest point this process committed: `stored` itself unless the
   * committed one is newer.
   */
  newest(tripId: string, stored: TrackPoint | null): TrackPoint | null {
    const committed = this.committed.get(tripId);
    if (committed && (!stored || committed.recordedAt.getTime() > stored.recordedAt.getTime())) return committed;
    return stored;
  }

  /**
   * After a round's commit: the points it moved these trips' latest location
   * to, into Redis in one pipeline. An older point never replaces a newer one.
   * Best effort: a Redis failure leaves the trip row as the truth.
   */
  async counted(points: readonly { tripId: string; point: TrackPoint }[]): Promise<void> {
    if (points.length === 0) return;
    const pipe = this.redis.pipeline();
    for (const { tripId, point } of points) {
      const value = toLatest(point);
      pipe.eval(SET_LATEST_IF_NEWER, 1, latestKey(tripId), JSON.stringify(value), value.recordedAt, LATEST_TTL_S);
    }
    await pipe.exec().catch(() => undefined);
  }

  /**
   * The trip's latest location (its access already checked), or null: Redis
   * first, the trip row on a miss (then written to Redis); a newer point this
   * process has committed but not yet counted wins (read-your-writes on this
   * node while the after-flush round catches up).
   */
  async read(tripId: string): Promise<LatestLocation | null> {
    const committed = this.committed.get(tripId);
    // Behind the Redis breaker: with Redis down the read goes to the trip row at once, not after a command timeout.
    const cached = await this.redisBreaker.run(() => this.redis.get(latestKey(tripId))).catch(() => null);
    let value: LatestLocation | null = cached ? (JSON.parse(cached) as LatestLocation) : null;
    (value ? latestCache.hit : latestCache.miss).inc();
    if (!value) {
      const state = await this.trips.trackState(tripId);
      if (state?.latest) {
        value = toLatest(state.latest);
        await this.redisBreaker
          .run(() => this.redis.set(latestKey(tripId), JSON.stringify(value), 'EX', LATEST_TTL_S))
          .catch(() => undefined);
      }
    }
    if (committed && (!value || committed.recordedAt.getTime() > Date.parse(value.recordedAt)))
      return toLatest(committed);
    return value;
  }
}
