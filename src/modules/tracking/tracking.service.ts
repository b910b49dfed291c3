import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnModuleInit,
} from '@nestjs/common';
import type { Counter } from 'prom-client';
import { Principal } from '../../common/auth/principal';
import { hashTrackerToken } from '../../common/auth/tracker-token';
import { DomainError, NotFoundError, ValidationError } from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { isStorableTime } from '../../common/validation/zod';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import type { SqlTx } from '../../infra/db/db.service';
import { cacheCounters, pingsRejected } from '../../infra/observability/metrics';
import { RealtimePublisher, tripRoom } from '../../infra/realtime/realtime-publisher';
import { REDIS, RedisClient } from '../../infra/redis/redis.module';
import { isActive } from '../trips/trip-status';
import { TrackPoint, TrackUpdate, TripTrackState } from '../trips/trips.schemas';
import { TripsService } from '../trips/trips.service';
import { detect, readDetectorState, TrackFix } from './detectors';
import { pathLengthM } from './geo';
import { OsmAndFix } from './osmand';
import { checkPoints, Fix, PingRow, REJECT_REASONS, RejectReason, Rejection, speedFilter } from './ping-filters';
import { PingWriter } from './ping-writer';
import { TrackerTokenCache } from './tracker-token-cache';
import { UnknownTokenLimiter } from './unknown-token-limiter';
import { HistoryPoint, TrackingRepository } from './tracking.repository';

export interface PingResult {
  accepted: number;
  duplicates: number;
  rejected: Rejection[];
}

interface TripPlan {
  state: TripTrackState;
  update: TrackUpdate;
}

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

/** One bound counter per reason, each series present (at 0) from the start. */
const rejectedByReason = Object.fromEntries(
  REJECT_REASONS.map((reason) => {
    const counter = pingsRejected.labels(reason);
    counter.inc(0);
    return [reason, counter];
  }),
) as Record<RejectReason, Counter.Internal>;
const latestCache = cacheCounters('trip_latest');

const tooManyUnknownTokens = (retryAfterS: number) =>
  new DomainError(ErrorCode.RATE_LIMITED, `Too many unknown tracker tokens; retry in ${retryAfterS} s`, undefined, {
    'Retry-After': String(retryAfterS),
  });

const toLatest = (p: TrackPoint): LatestLocation => ({
  lat: p.lat,
  lng: p.lng,
  speed: p.speed,
  heading: p.heading,
  recordedAt: p.recordedAt.toISOString(),
});

@Injectable()
export class TrackingService implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(TrackingService.name);
  /**
   * The newest point this process committed per trip, known at the commit
   * (before the writers are answered), while the trip row and Redis catch up
   * behind the answers: the next request's speed filter and GET latest use it.
   */
  private readonly committedLatest = new Map<string, TrackPoint>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | null = null;

  constructor(
    private readonly trips: TripsService,
    private readonly repo: TrackingRepository,
    private readonly writer: PingWriter,
    private readonly realtime: RealtimePublisher,
    private readonly unknownTokens: UnknownTokenLimiter,
    private readonly tokenTrips: TrackerTokenCache,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    this.writer.onCommit((byTrip) => this.noteCommitted(byTrip));
    this.writer.onFlush((byTrip) => this.afterFlush(byTrip));
  }

  /** The backlog sweep: at start (after a crash) and every `pingBacklogSweepMs`. */
  onApplicationBootstrap(): void {
    const every = this.config.pingBacklogSweepMs;
    if (every <= 0) return;
    const run = () => {
      if (this.sweeping) return;
      this.sweeping = this.sweepBacklog()
        .then(() => undefined)
        .catch((err: Error) => this.logger.error(`backlog sweep failed: ${err.message}`))
        .finally(() => (this.sweeping = null));
    };
    this.sweepTimer = setInterval(run, every);
    this.sweepTimer.unref();
    run();
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.sweepTimer);
    await this.sweeping;
  }

  /**
   * POST /tracking/ping: only the trip's driver (while their driver profile
   * lasts: leaving the org ends it), only while the trip is active. A member
   * who sees the trip but is not its driver gets 403 NOT_TRIP_DRIVER, anyone
   * else 404, whatever the trip's status.
   */
  async ping(principal: Principal, tripId: string, locations: readonly unknown[]): Promise<PingResult> {
    const state = await this.ingestState(tripId);
    if (!state) throw new NotFoundError('Trip');
    if (state.driverUserId !== principal.userId) {
      // Off the hot path: only a refused request reads who the caller is to the trip.
      await this.trips.requireVisible(principal, tripId);
      throw new DomainError(ErrorCode.NOT_TRIP_DRIVER, "Only the trip's driver posts its locations");
    }
    return this.ingest(state, locations);
  }

  /** The trip's ingest state (cached: see TripsService.trackStateCached) with the newest point this process has committed. */
  private async ingestState(tripId: string): Promise<TripTrackState | null> {
    const state = await this.trips.trackStateCached(tripId);
    if (!state) return null;
    const committed = this.committedLatest.get(tripId);
    if (committed && (!state.latest || committed.recordedAt.getTime() > state.latest.recordedAt.getTime())) {
      return { ...state, latest: committed };
    }
    return state;
  }

  private noteCommitted(byTrip: Map<string, PingRow[]>): void {
    for (const [tripId, rows] of byTrip) {
      let newest = this.committedLatest.get(tripId);
      for (const r of rows) {
        if (!newest || r.recordedAt.getTime() > newest.recordedAt.getTime()) {
          newest = { lat: r.lat, lng: r.lng, speed: r.speed, heading: r.heading ?? null, recordedAt: r.recordedAt };
        }
      }
      if (!newest) continue;
      this.committedLatest.delete(tripId); // re-inserted last: the map's order is its age
      if (this.committedLatest.size >= COMMITTED_LATEST_MAX)
        this.committedLatest.delete(this.committedLatest.keys().next().value!);
      this.committedLatest.set(tripId, newest);
    }
    setImmediate(() => this.publishLocations(byTrip));
  }

  /**
   * The active trip of the driver whose tracker token this is (the OsmAnd
   * credential), looked up by its digest on the primary and remembered per
   * node (TrackerTokenCache: a rotation, a status change or a driver's access
   * change clears it on every node before it is answered, so a rotated token
   * fails at once on every node). An unknown (or missing) token
   * is one uniform 404, and counted per client address: past the limit the
   * address gets 429 with Retry-After, before any lookup.
   */
  async osmandTrip(token: string | undefined, clientAddress: string): Promise<string> {
    const wait = this.unknownTokens.retryAfter(clientAddress);
    if (wait !== null) throw tooManyUnknownTokens(wait);
    const hash = token ? hashTrackerToken(token) : undefined;
    const found = hash
      ? await this.tokenTrips.lookup(hash, () => this.trips.findActiveTripByTrackerToken(hash))
      : { driverFound: false, tripId: null };
    if (!found.driverFound) {
      const over = await this.unknownTokens.countUnknown(clientAddress);
      if (over !== null) throw tooManyUnknownTokens(over);
      throw new NotFoundError('Tracker token');
    }
    if (!found.tripId) throw new DomainError(ErrorCode.NO_ACTIVE_TRIP, "This tracker's driver has no active trip");
    return found.tripId;
  }

  /** One OsmAnd fix into the trip `osmandTrip` found. */
  async osmand(tripId: string, fix: OsmAndFix): Promise<PingResult> {
    const state = await this.ingestState(tripId);
    if (!state) throw new DomainError(ErrorCode.NO_ACTIVE_TRIP, "This tracker's driver has no active trip");
    return this.ingest(state, [fix]);
  }

  private async ingest(state: TripTrackState, locations: readonly unknown[]): Promise<PingResult> {
    if (!isActive(state.status)) {
      throw new DomainError(
        ErrorCode.TRIP_NOT_ACTIVE,
        `The trip is ${state.status}; locations are taken only while LOADING, IN_TRANSIT or ARRIVED`,
      );
    }
    const now = new Date();
    const checked = checkPoints(locations, { tripId: state.id, tripCreatedAt: state.createdAt, now });
    let stored: Fix[] = state.latest ? [state.latest] : [];
    if (checked.candidates.length && state.latest) {
      const latestMs = state.latest.recordedAt.getTime();
      if (checked.candidates.some((c) => c.row.recordedAt.getTime() <= latestMs)) {
        // A backlog reaching into the stored track: compare each point with its stored neighbour
        // (the fix at or before it, fetched per point), not with the latest fix.
        stored = await this.repo.fixesAround(
          state.id,
          checked.candidates.map((c) => c.row.recordedAt),
        );
      }
    }
    const speed = speedFilter(checked.candidates, stored, this.config.maxSpeedMps);
    const written = await this.writer.write(speed.kept.map((c) => c.row));
    const rejected = [...checked.rejected, ...speed.rejected].sort((a, b) => a.index - b.index);
    for (const r of rejected) rejectedByReason[r.reason].inc();
    return { accepted: written.accepted, duplicates: written.duplicates, rejected };
  }

  /**
   * One after-flush round (behind the answers, one at a time on this node)
   * over the trips this node stored points of: see countBacklog.
   */
  async afterFlush(byTrip: Map<string, PingRow[]>): Promise<void> {
    await this.countBacklog([...byTrip.keys()]);
  }

  /**
   * Counts every stored point of these trips not yet counted (their backlog,
   * whichever node stored it) in one transaction under the trips' row locks:
   * distance, latest location (never moved backwards by late points) and
   * detectors, written for all trips in one statement; then Redis. Because the
   * backlog says exactly which stored points are not yet counted, distance is
   * exact even when one trip's points reach several nodes at once. If the
   * round fails, the backlog stays for the next round or the sweep.
   */
  async countBacklog(tripIds: readonly string[]): Promise<void> {
    const plans = await this.trips.updateTracks(tripIds, async (tx, states) => {
      const backlog = await this.repo.takeBacklog(tx, tripIds);
      const out: TripPlan[] = [];
      for (const state of states) {
        const points = backlog.get(state.id);
        // None: another round (another node's, say) counted them first.
        if (points?.length) out.push(await this.planTripUpdate(tx, state, points));
      }
      return out;
    });

    const latest = plans.filter((p) => p.update.latest);
    if (latest.length) {
      const pipe = this.redis.pipeline();
      for (const p of latest) {
        const value = toLatest(p.update.latest!);
        // Rounds of two nodes may reach Redis out of order: an older point never replaces a newer one.
        pipe.eval(SET_LATEST_IF_NEWER, 1, latestKey(p.state.id), JSON.stringify(value), value.recordedAt, LATEST_TTL_S);
      }
      await pipe.exec().catch(() => undefined);
    }
  }

  /**
   * Counts backlog left behind for longer than `pingBacklogSweepMs`: points of
   * a node that was killed between a commit and its round, with no later
   * points of the same trip to bring them along.
   */
  async sweepBacklog(): Promise<number> {
    const tripIds = await this.repo.tripsWithStaleBacklog(this.config.pingBacklogSweepMs, 500);
    if (tripIds.length) await this.countBacklog(tripIds);
    return tripIds.length;
  }

  /**
   * `trip.location` with a flush's points, per trip, right after its commit
   * (behind the answers, in commit order): watchers need not wait for the
   * after-flush round that updates the trip row.
   */
  private publishLocations(byTrip: Map<string, PingRow[]>): void {
    for (const [tripId, rows] of byTrip) {
      const points = [...rows].sort((a, b) => a.recordedAt.getTime() - b.recordedAt.getTime());
      this.realtime.publish(tripRoom(tripId), 'trip.location', {
        tripId,
        points: points.map((p) => ({
          lat: p.lat,
          lng: p.lng,
          speed: p.speed,
          heading: p.heading ?? null,
          recordedAt: p.recordedAt.toISOString(),
        })),
      });
    }
  }

  /** One trip's update from its locked state and its backlog (`points`, in time order). */
  private async planTripUpdate(tx: SqlTx, state: TripTrackState, points: TrackFix[]): Promise<TripPlan> {
    const latestMs = state.latest?.recordedAt.getTime() ?? -Infinity;
    const newer = points.filter((p) => p.recordedAt.getTime() > latestMs);

    let deltaM: number;
    if (newer.length === points.length) {
      // The latest location is the newest counted point: these all come after it.
      deltaM = pathLengthM(state.latest ? [state.latest, ...points] : points);
    } else {
      // Late points: the counted track changes only between each run of new points' counted neighbours
      // (the last counted fix before it, the first after). With every point's two neighbours in a list,
      // each run sits between its own neighbours, and any other pair of consecutive fixes appears with or
      // without the new points alike: the difference of the two lengths is the change of the whole track.
      const fresh = new Set(points.map((p) => p.recordedAt.getTime()));
      const neighbours = (
        await this.repo.countedAround(
          tx,
          state.id,
          points.map((p) => p.recordedAt),
        )
      ).filter((f) => !fresh.has(f.recordedAt.getTime()));
      const withPoints = [...neighbours, ...points].sort((a, b) => a.recordedAt.getTime() - b.recordedAt.getTime());
      deltaM = pathLengthM(withPoints) - pathLengthM(neighbours);
    }

    const detected = detect(
      {
        status: state.status,
        end: { lat: state.endLat, lng: state.endLng },
        previous: state.latest ? { ...state.latest } : null,
        points: newer,
        state: readDetectorState(state.detectorState),
      },
      this.config,
    );
    const latest = newer.length ? newer[newer.length - 1] : null;
    const latestPoint: TrackPoint | null = latest
      ? {
          lat: latest.lat,
          lng: latest.lng,
          speed: latest.speed,
          heading: latest.heading ?? null,
          recordedAt: latest.recordedAt,
        }
      : null;
    return {
      state,
      update: {
        latest: latestPoint,
        distanceDeltaKm: deltaM / 1000,
        detectorState: detected.state,
        events: detected.events,
        arrive: detected.arrive,
      },
    };
  }

  /**
   * The latest location: Redis first, the trip row on a miss; a newer point
   * this process has committed but not yet written there wins (read-your-writes
   * on this node while the after-flush work catches up).
   */
  async latest(principal: Principal, tripId: string): Promise<LatestLocation> {
    await this.trips.requireVisible(principal, tripId);
    const committed = this.committedLatest.get(tripId);
    const cached = await this.redis.get(latestKey(tripId)).catch(() => null);
    let value: LatestLocation | null = cached ? (JSON.parse(cached) as LatestLocation) : null;
    (value ? latestCache.hit : latestCache.miss).inc();
    if (!value) {
      const state = await this.trips.trackState(tripId);
      if (state?.latest) {
        value = toLatest(state.latest);
        await this.redis.set(latestKey(tripId), JSON.stringify(value), 'EX', LATEST_TTL_S).catch(() => undefined);
      }
    }
    if (committed && (!value || committed.recordedAt.getTime() > Date.parse(value.recordedAt)))
      return toLatest(committed);
    if (!value) throw new NotFoundError('Location');
    return value;
  }
  async history(
    principal: Principal,
    tripId: string,
    q: { from?: string; to?: string; cursor?: string; limit: number },
  ): Promise<{ points: HistoryPoint[]; nextCursor: string | null }> {
    await this.trips.requireVisible(principal, tripId);
    const after = q.cursor ? decodeHistoryCursor(q.cursor) : undefined;
    const rows = await this.repo.history(
      tripId,
      { from: q.from ? new Date(q.from) : undefined, to: q.to ? new Date(q.to) : undefined, after },
      q.limit + 1,
    );
    const more = rows.length > q.limit;
    const points = more ? rows.slice(0, q.limit) : rows;
    return { points, nextCursor: more ? encodeHistoryCursor(points[points.length - 1].recordedAt) : null };
  }
}

export function encodeHistoryCursor(at: Date): string {
  return Buffer.from(at.toISOString()).toString('base64url');
}

export function decodeHistoryCursor(cursor: string): Date {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const at = /^\d{4}-\d{2}-\d{2}T[\d:.]+Z$/.test(text) ? new Date(text) : null;
  if (!at || !isStorableTime(at.getTime())) throw new ValidationError([{ path: 'cursor', message: 'Invalid cursor' }]);
  return at;
}
