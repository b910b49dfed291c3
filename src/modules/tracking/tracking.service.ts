import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import type { Counter } from 'prom-client';
import { Principal } from '../../common/auth/principal';
import { hashTrackerToken } from '../../common/auth/tracker-token';
import { DomainError, NotFoundError, ValidationError } from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { UserRateLimits } from '../../common/rate-limit/user-rate-limits';
import { isStorableTime } from '../../common/validation/zod';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { pingsRejected } from '../../infra/observability/metrics';
import { RealtimePublisher, tripRoom } from '../../infra/realtime/realtime-publisher';
import { isActive } from '../trips/trip-status';
import { TripTrackState } from '../trips/trips.schemas';
import { TripsService } from '../trips/trips.service';
import { LatestLocation, LatestLocations } from './latest-locations';
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

/** One bound counter per reason, each series present (at 0) from the start. */
const rejectedByReason = Object.fromEntries(
  REJECT_REASONS.map((reason) => {
    const counter = pingsRejected.labels(reason);
    counter.inc(0);
    return [reason, counter];
  }),
) as Record<RejectReason, Counter.Internal>;

const tooManyUnknownTokens = (retryAfterS: number) =>
  new DomainError(ErrorCode.RATE_LIMITED, `Too many unknown tracker tokens; retry in ${retryAfterS} s`, undefined, {
    'Retry-After': String(retryAfterS),
  });

/**
 * Ping ingest (access, filters, the group-committing writer) and the track
 * reads. What happens after a commit: `LatestLocations` remembers the newest
 * points and `trip.location` goes out here; the after-flush round is `TrackRound`.
 */
@Injectable()
export class TrackingService implements OnModuleInit {
  constructor(
    private readonly trips: TripsService,
    private readonly repo: TrackingRepository,
    private readonly writer: PingWriter,
    private readonly latestLocations: LatestLocations,
    private readonly realtime: RealtimePublisher,
    private readonly unknownTokens: UnknownTokenLimiter,
    private readonly tokenTrips: TrackerTokenCache,
    private readonly limits: UserRateLimits,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    this.writer.onCommit((byTrip) => {
      this.latestLocations.noteCommitted(byTrip);
      setImmediate(() => this.publishLocations(byTrip));
    });
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

  /** The trip's ingest state (cached: see TripsService.trackStateCached), its latest location as LatestLocations knows it. */
  private async ingestState(tripId: string): Promise<TripTrackState | null> {
    const state = await this.trips.trackStateCached(tripId);
    if (!state) return null;
    const latest = this.latestLocations.newest(tripId, state.latest);
    return latest === state.latest ? state : { ...state, latest };
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

  /**
   * One OsmAnd fix into the trip `osmandTrip` found. The request counts
   * against the driver's ping budget, the one POST /tracking/ping spends (the
   * auth guard counts those).
   */
  async osmand(tripId: string, fix: OsmAndFix): Promise<PingResult> {
    const state = await this.ingestState(tripId);
    if (!state) throw new DomainError(ErrorCode.NO_ACTIVE_TRIP, "This tracker's driver has no active trip");
    await this.limits.check('ping-driver', state.driverUserId ?? state.driverId);
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

  /** The latest location (see LatestLocations.read), or 404. */
  async latest(principal: Principal, tripId: string): Promise<LatestLocation> {
    await this.trips.requireVisible(principal, tripId);
    const value = await this.latestLocations.read(tripId);
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
