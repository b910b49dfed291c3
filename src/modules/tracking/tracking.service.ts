import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import type { Counter } from 'prom-client';
import { Principal } from '../../common/auth/principal';
import { DomainError, NotFoundError, ValidationError } from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
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
import { HistoryPoint, TrackingRepository } from './tracking.repository';

export interface PingResult {
  accepted: number;
  duplicates: number;
  rejected: Rejection[];
}

interface TripPlan {
  state: TripTrackState;
  /** The round's inserted points of the trip, in time order. */
  points: TrackFix[];
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

/** One bound counter per reason, each series present (at 0) from the start. */
const rejectedByReason = Object.fromEntries(
  REJECT_REASONS.map((reason) => {
    const counter = pingsRejected.labels(reason);
    counter.inc(0);
    return [reason, counter];
  }),
) as Record<RejectReason, Counter.Internal>;
const latestCache = cacheCounters('trip_latest');

const toLatest = (p: TrackPoint): LatestLocation => ({
  lat: p.lat,
  lng: p.lng,
  speed: p.speed,
  heading: p.heading,
  recordedAt: p.recordedAt.toISOString(),
});

@Injectable()
export class TrackingService implements OnModuleInit {
  private readonly logger = new Logger(TrackingService.name);
  /**
   * The newest point this process committed per trip, known at the commit
   * (before the writers are answered), while the trip row and Redis catch up
   * behind the answers: the next request's speed filter and GET latest use it.
   */
  private readonly committedLatest = new Map<string, TrackPoint>();

  constructor(
    private readonly trips: TripsService,
    private readonly repo: TrackingRepository,
    private readonly writer: PingWriter,
    private readonly realtime: RealtimePublisher,
    @Inject(REDIS) private readonly redis: RedisClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    this.writer.onCommit((byTrip) => this.noteCommitted(byTrip));
    this.writer.onFlush((byTrip) => this.afterFlush(byTrip));
  }

  /** POST /tracking/ping: only the trip's driver, only while the trip is active. */
  async ping(principal: Principal, tripId: string, locations: readonly unknown[]): Promise<PingResult> {
    const state = await this.ingestState(tripId);
    if (!state || state.driverUserId !== principal.userId) throw new NotFoundError('Trip');
    return this.ingest(state, locations);
  }

  /** The trip's ingest state (cached for about a second) with the newest point this process has committed. */
  private async ingestState(tripId: string): Promise<TripTrackState | null> {
    const state = await this.trips.trackStateCached(tripId, this.config.tripStateCacheMs);
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

  /** One OsmAnd fix: the device's driver's active trip. */
  async osmand(fix: OsmAndFix): Promise<PingResult> {
    const found = await this.trips.findActiveTripByDevice(fix.deviceId);
    if (!found.driverFound) throw new NotFoundError('Device');
    if (!found.tripId) throw new DomainError(ErrorCode.NO_ACTIVE_TRIP, 'This device has no active trip');
    const state = await this.ingestState(found.tripId);
    if (!state) throw new DomainError(ErrorCode.NO_ACTIVE_TRIP, 'This device has no active trip');
    const { deviceId: _deviceId, ...point } = fix;
    return this.ingest(state, [point]);
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
      const times = checked.candidates.map((c) => c.row.recordedAt.getTime());
      const min = Math.min(...times);
      if (min <= state.latest.recordedAt.getTime()) {
        // A backlog reaching into the stored track: compare with the stored neighbours, not the latest fix.
        stored = await this.repo.fixesAround(state.id, new Date(min), new Date(Math.max(...times)), false);
      }
    }
    const speed = speedFilter(checked.candidates, stored, this.config.maxSpeedMps);
    const written = await this.writer.write(speed.kept.map((c) => c.row));
    const rejected = [...checked.rejected, ...speed.rejected].sort((a, b) => a.index - b.index);
    for (const r of rejected) rejectedByReason[r.reason].inc();
    return { accepted: written.accepted, duplicates: written.duplicates, rejected };
  }

  /**
   * After one or more flushes (behind the answers, one round at a time), once
   * per trip: distance and latest location (never moved backwards by late
   * points) and detectors, written for all trips in one statement; then Redis.
   * (`trip.location` went out at the commit: see publishLocations.)
   */
  async afterFlush(byTrip: Map<string, PingRow[]>): Promise<void> {
    const states = await this.trips.trackStates([...byTrip.keys()]);
    const planned = await Promise.all(
      [...byTrip].map(async ([tripId, rows]) => {
        const state = states.get(tripId);
        if (!state) return null;
        try {
          return await this.planTripUpdate(state, rows);
        } catch (err) {
          this.logger.error(
            `updating trip ${tripId} after a flush failed: ${(err as Error).stack ?? (err as Error).message}`,
          );
          return null;
        }
      }),
    );
    const plans = planned.filter((p): p is TripPlan => p !== null);
    await this.trips.applyTrackUpdates(plans.map((p) => ({ state: p.state, update: p.update })));

    const latest = plans.filter((p) => p.update.latest);
    if (latest.length) {
      const pipe = this.redis.pipeline();
      for (const p of latest)
        pipe.set(latestKey(p.state.id), JSON.stringify(toLatest(p.update.latest!)), 'EX', LATEST_TTL_S);
      await pipe.exec().catch(() => undefined);
    }
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

  private async planTripUpdate(state: TripTrackState, rows: PingRow[]): Promise<TripPlan> {
    const tripId = state.id;
    const points: TrackFix[] = rows
      .map((r) => ({ lat: r.lat, lng: r.lng, speed: r.speed, heading: r.heading, recordedAt: r.recordedAt }))
      .sort((a, b) => a.recordedAt.getTime() - b.recordedAt.getTime());
    const latestMs = state.latest?.recordedAt.getTime() ?? -Infinity;
    const newer = points.filter((p) => p.recordedAt.getTime() > latestMs);

    let deltaM: number;
    if (newer.length === points.length) {
      deltaM = pathLengthM(state.latest ? [state.latest, ...points] : points);
    } else {
      // Late points: the track between their stored neighbours changes; recount just that stretch.
      const first = points[0].recordedAt;
      const last = points[points.length - 1].recordedAt;
      const around = await this.repo.fixesAround(tripId, first, last, true);
      const fresh = new Set(points.map((p) => p.recordedAt.getTime()));
      deltaM = pathLengthM(around) - pathLengthM(around.filter((f) => !fresh.has(f.recordedAt.getTime())));
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
      points,
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
  if (!at || Number.isNaN(at.getTime())) throw new ValidationError([{ path: 'cursor', message: 'Invalid cursor' }]);
  return at;
}
