import { Inject, Injectable, Logger } from '@nestjs/common';
import { Principal } from '../../common/auth/principal';
import {
  DomainError,
  ErrorDetail,
  ForbiddenError,
  NotFoundError,
  UnprocessableFieldsError,
} from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { Page } from '../../common/pagination/page';
import type { SqlTx } from '../../infra/db/db.service';
import { strongEtag } from '../../common/http/etag';
import { Cache, NamedCache } from '../../infra/cache/cache';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { ImmutableMemo } from '../../infra/cache/immutable-memo';
import { cacheCounters } from '../../infra/observability/metrics';
import { ClusterBus } from '../../infra/redis/cluster-bus';
import { orgRoom, RealtimePublisher, tripRoom } from '../../infra/realtime/realtime-publisher';
import { parseTripFields, projectTrip, DEFAULT_TRIP_FIELDS } from './trip-fields';
import { canTransition, DRIVER_MOVES, TripStatus } from './trip-status';
import { tripStatusEvents } from './trip-outbox-events';
import { OutboxWriter } from '../../infra/outbox/outbox-writer';
import { ORG_ROLES, OrgRole, roleIn } from '../orgs/org-roles';
import { OrgsService } from '../orgs/orgs.service';
import { TripScope, TripsRepository } from './trips.repository';
import {
  CreateTripInput,
  ListTripsFilter,
  TripAccess,
  TripEventView,
  TripTrackState,
  TripTrackUpdate,
} from './trips.schemas';

const ACCESS_CACHE_MAX = 10_000;
const tripStateCache = cacheCounters('trip_state');

export interface TripViewer {
  access: TripAccess;
  /** Non-DRIVER roles the caller holds in the trip's two orgs. */
  orgRoles: OrgRole[];
  isDriver: boolean;
}

/** Cluster-bus topic: a trip whose status changed (its id). */
export const TRIP_STATE_TOPIC = 'trip-state';
/** Cluster-bus topic: driver profiles that ended or resumed (their ids, space-separated). */
export const DRIVER_ACCESS_TOPIC = 'driver-access';

/** A trip with the default fields (its own columns, no relations) as JSON data, and its strong ETag. */
interface CachedTripDetail {
  trip: Record<string, unknown>;
  etag: string;
}

/** A trip as `GET /trips/:id` answers it, and the ETag of that answer. */
export interface TripDetail {
  trip: Record<string, unknown>;
  etag: string;
}

interface TrackStateEntry {
  at: number;
  state: Promise<TripTrackState | null>;
  /** The trip's driver profile, once the read has answered. */
  driverId?: string;
}

@Injectable()
export class TripsService {
  private readonly logger = new Logger(TripsService.name);
  /** Trip ids → their orgs and driver: immutable after creation, so safe to keep (whether the driver's profile still grants access is asked fresh). */
  private readonly accessCache = new ImmutableMemo<TripAccess>('trip_access', ACCESS_CACHE_MAX);
  /** Trip ids → their ingest state (see trackStateCached). Concurrent misses share one read. */
  private readonly trackStateCache = new Map<string, TrackStateEntry>();
  /**
   * Trip ids → the trip's own columns as `GET /trips/:id` shows them (Cache
   * `trip_detail`), dropped on every node once a status change or an
   * after-flush round's track update commits: nothing else writes a trip row.
   */
  private readonly details: NamedCache<CachedTripDetail>;

  constructor(
    private readonly repo: TripsRepository,
    private readonly orgs: OrgsService,
    private readonly realtime: RealtimePublisher,
    private readonly bus: ClusterBus,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    cache: Cache,
    private readonly outbox: OutboxWriter,
  ) {
    this.details = cache.define<CachedTripDetail>({ name: 'trip_detail' });
    // Another node changed a trip's status: its cached ingest state goes at once.
    bus.on(TRIP_STATE_TOPIC, (tripId) => this.trackStateCache.delete(tripId));
    bus.on(DRIVER_ACCESS_TOPIC, (ids) => this.forgetDriverTrips(ids.split(' ')));
    // Changes made while the subscription was down were not heard: nothing cached before is trusted.
    bus.onLive(() => this.trackStateCache.clear());
    // A member left their org (their driver profile ended) or a profile resumed.
    orgs.onDriverAccessChanged((driverIds) => this.driverAccessChanged(driverIds));
  }

  /** Drops the trip's cached ingest state here and, through the cluster bus, on every other node. */
  private trackStateChanged(tripId: string): void {
    // This node's handlers (this cache, OsmAnd's token → trip answers) at once; the other nodes through the bus.
    this.bus
      .announce(TRIP_STATE_TOPIC, tripId)
      .catch((err: Error) =>
        this.logger.warn(
          `status change of trip ${tripId} not announced to other nodes (they see it within their cache age): ${err.message}`,
        ),
      );
  }

  /**
   * These driver profiles ended (their user left the org) or resumed: the
   * cached ingest state of their trips goes here and, before this returns, is
   * announced to every other node, so that pings are judged by the change at
   * once everywhere.
   */
  async driverAccessChanged(driverIds: readonly string[]): Promise<void> {
    if (driverIds.length === 0) return;
    await this.bus
      .announce(DRIVER_ACCESS_TOPIC, driverIds.join(' '))
      .catch((err: Error) =>
        this.logger.warn(
          `access change of driver profiles ${driverIds.join(', ')} not announced to other nodes (they see it within their cache age): ${err.message}`,
        ),
      );
  }

  /** Drops cached ingest states of these drivers' trips, and those still being read (they may predate the change). */
  private forgetDriverTrips(driverIds: readonly string[]): void {
    const ids = new Set(driverIds);
    for (const [tripId, entry] of this.trackStateCache) {
      if (entry.driverId === undefined || ids.has(entry.driverId)) this.trackStateCache.delete(tripId);
    }
  }

  /**
   * The caller must be OWNER, ADMIN or STAFF of the source or the destination
   * org, and the truck and the driver must belong to an org of the two in
   * which the caller holds one of those roles: an org never assigns the other
   * org's truck or driver. The counterparty org (the one the caller is not a
   * member of) must exist. Each refusal is a 422 naming its field.
   */
  async create(principal: Principal, input: CreateTripInput): Promise<Record<string, unknown>> {
    const orgIds = [...new Set([input.sourceOrgId, input.destinationOrgId])];
    const roles = await this.orgs.rolesOf(principal.userId, orgIds);
    if (roles.size === 0) throw new NotFoundError('Org');
    const operated = [...roles].filter(([, role]) => roleIn(role, ORG_ROLES.operate)).map(([orgId]) => orgId);
    if (operated.length === 0)
      throw new ForbiddenError('Only an owner, admin or staff of either org can create a trip');

    const counterparties = orgIds.filter((id) => !roles.has(id));
    const [truck, assigned, existing] = await Promise.all([
      this.orgs.findTruckOrg(input.truckId),
      this.orgs.findDriver(input.driverId),
      counterparties.length ? this.orgs.existingOrgIds(counterparties) : Promise.resolve([]),
    ]);
    const driver = assigned && !assigned.ended ? assigned : null;
    const details: ErrorDetail[] = [];
    for (const field of ['sourceOrgId', 'destinationOrgId'] as const) {
      if (counterparties.includes(input[field]) && !existing.includes(input[field]))
        details.push({ path: field, message: 'is not a known org' });
    }
    if (!truck || !operated.includes(truck.orgId))
      details.push({ path: 'truckId', message: 'is not a truck of an org of this trip that you operate' });
    if (!driver || !operated.includes(driver.orgId))
      details.push({ path: 'driverId', message: 'is not a driver of an org of this trip that you operate' });
    if (details.length) throw new UnprocessableFieldsError(details, 'The trip names what you may not assign');

    const trip = await this.repo.create(input, principal.userId, (tx) =>
      this.orgs.lockActiveDriver(tx, input.driverId),
    );
    if (!trip)
      throw new UnprocessableFieldsError([
        { path: 'driverId', message: 'is not a driver of an org of this trip that you operate' },
      ]);
    const at = trip.createdAt.toISOString();
    for (const orgId of orgIds)
      this.realtime.publish(orgRoom(orgId), 'trip.status', { tripId: trip.id, status: 'PLANNED', at });
    const row = await this.repo.findSelected(trip.id, DEFAULT_TRIP_FIELDS, true);
    return projectTrip(row!, DEFAULT_TRIP_FIELDS);
  }

  /**
   * The caller's view of a trip, or 404: members of either org see it, except
   * that a DRIVER member sees only trips assigned to them.
   */
  async requireVisible(principal: Principal, tripId: string): Promise<TripViewer> {
    const access = await this.access(tripId);
    if (!access) throw new NotFoundError('Trip');
    // The assignment never changes, but the driver's access ends when they leave the org: asked fresh.
    const [roles, isDriver] = await Promise.all([
      this.orgs.rolesOf(principal.userId, [access.sourceOrgId, access.destinationOrgId]),
      access.driverUserId === principal.userId
        ? this.orgs.findDriver(access.driverId).then((d) => !!d && !d.ended && d.userId === principal.userId)
        : Promise.resolve(false),
    ]);
    const orgRoles = [...roles.values()].filter((r) => roleIn(r, ORG_ROLES.staff));
    if (!isDriver && orgRoles.length === 0) throw new NotFoundError('Trip');
    return { access, orgRoles, isDriver };
  }

  async get(principal: Principal, tripId: string, rawFields?: string): Promise<Record<string, unknown>> {
    return (await this.detail(principal, tripId, rawFields)).trip;
  }

  /**
   * The trip with the requested fields and the strong ETag of that answer.
   * The trip's own columns come from the `trip_detail` cache (one read of the
   * primary per change of the row); fields of its relations (truck, driver,
   * orgs) are read each time. Access is checked on every call (cached
   * memberships and driver profiles make it cheap).
   */
  async detail(principal: Principal, tripId: string, rawFields?: string): Promise<TripDetail> {
    const fields = parseTripFields(rawFields);
    await this.requireVisible(principal, tripId);
    if (fields.some((f) => f.includes('.'))) {
      const row = await this.repo.findSelected(tripId, fields);
      if (!row) throw new NotFoundError('Trip');
      const trip = projectTrip(row, fields);
      return { trip, etag: strongEtag(JSON.stringify(trip)) };
    }
    const cached = await this.details.get(tripId, async () => {
      const row = await this.repo.findSelected(tripId, DEFAULT_TRIP_FIELDS, true);
      if (!row) return null;
      const trip = projectTrip(row, DEFAULT_TRIP_FIELDS);
      return { trip, etag: strongEtag(JSON.stringify(trip)) };
    });
    if (!cached) throw new NotFoundError('Trip');
    // The default answer as cached; any other selection (or order) is its own answer with its own ETag.
    if (fields.length === DEFAULT_TRIP_FIELDS.length && fields.every((f, i) => f === DEFAULT_TRIP_FIELDS[i]))
      return cached;
    const trip: Record<string, unknown> = {};
    for (const f of fields) trip[f] = cached.trip[f];
    return { trip, etag: strongEtag(cached.etag, fields.join(',')) };
  }

  async list(principal: Principal, q: ListTripsFilter): Promise<Page<Record<string, unknown>>> {
    const fields = parseTripFields(q.fields);
    const [memberships, driverIds] = await Promise.all([
      q.orgId
        ? this.orgs
            .rolesOf(principal.userId, [q.orgId])
            .then((roles) => [...roles].map(([orgId, role]) => ({ orgId, role })))
        : this.orgs.membershipsOf(principal.userId),
      this.orgs.activeDriverIdsOf(principal.userId),
    ]);
    if (q.orgId && memberships.length === 0) throw new NotFoundError('Org');
    const staffOrgs = memberships.filter((m) => roleIn(m.role, ORG_ROLES.staff)).map((m) => m.orgId);
    const scope: TripScope = {
      sourceOrgIds: q.side === 'destination' ? [] : staffOrgs,
      destinationOrgIds: q.side === 'source' ? [] : staffOrgs,
      driverIds,
    };
    // A DRIVER member listing one org sees their own trips of that org only.
    if (q.orgId && staffOrgs.length === 0) scope.orgId = q.orgId;
    if (q.orgId && staffOrgs.length > 0) scope.driverIds = [];
    const page = await this.repo.list(scope, { status: q.status, driverId: q.driverId }, fields, q.cursor, q.limit);
    return page.map((row) => projectTrip(row, fields));
  }

  async transition(
    principal: Principal,
    tripId: string,
    to: TripStatus,
    note?: string,
  ): Promise<Record<string, unknown>> {
    const viewer = await this.requireVisible(principal, tripId);
    const mayOperate = viewer.orgRoles.some((r) => roleIn(r, ORG_ROLES.operate));
    if (!mayOperate && !(viewer.isDriver && DRIVER_MOVES.includes(to))) {
      throw new ForbiddenError('Your role does not allow this status change');
    }
    const result = await this.repo.transition(
      tripId,
      to,
      (from) => canTransition(from, to),
      principal.userId,
      (tx, driverId, truckId) => this.orgs.lockDriverAndTruck(tx, driverId, truckId),
      note,
      // The webhook events, in the transaction of the change.
      (tx, row) =>
        this.outbox.writeInPrisma(tx, tripStatusEvents(viewer.access, to, projectTrip(row, DEFAULT_TRIP_FIELDS))),
    );
    switch (result.kind) {
      case 'missing':
        throw new NotFoundError('Trip');
      case 'illegal':
        throw new DomainError(ErrorCode.ILLEGAL_TRANSITION, `A trip cannot move from ${result.from} to ${to}`, [
          { path: 'status', message: `illegal transition ${result.from} -> ${to}`, from: result.from, to },
        ]);
      case 'driver-busy':
        throw new DomainError(ErrorCode.DRIVER_BUSY, 'The driver already has an active trip', [
          { path: 'driverId', message: 'has an active trip', tripId: result.otherTripId },
        ]);
      case 'truck-busy':
        throw new DomainError(ErrorCode.TRUCK_BUSY, 'The truck already has an active trip', [
          { path: 'truckId', message: 'has an active trip', tripId: result.otherTripId },
        ]);
      case 'ok':
        await this.details.invalidate(tripId);
        this.outbox.written();
        this.trackStateChanged(tripId);
        this.publishStatus(viewer.access, to, result.at);
    }
    const row = await this.repo.findSelected(tripId, DEFAULT_TRIP_FIELDS, true);
    return projectTrip(row!, DEFAULT_TRIP_FIELDS);
  }

  async events(
    principal: Principal,
    tripId: string,
    cursor: string | undefined,
    limit: number,
  ): Promise<Page<TripEventView>> {
    await this.requireVisible(principal, tripId);
    return this.repo.listEvents(tripId, cursor, limit);
  }

  /** Appends an event to a trip's log (QR scans and other features) and announces it. */
  async appendEvent(
    tripId: string,
    event: { type: 'SCAN'; at: Date; data?: Record<string, unknown>; actorUserId?: string },
  ): Promise<TripEventView> {
    const view = await this.repo.appendEvent(tripId, event);
    this.realtime.publish(tripRoom(tripId), 'trip.event', {
      tripId,
      type: view.type,
      at: view.at.toISOString(),
      data: view.data ?? null,
    });
    return view;
  }

  // ---- for tracking ----

  /** The trip's current state for ping ingest, read fresh from the primary. */
  trackState(tripId: string): Promise<TripTrackState | null> {
    return this.repo.findTrackState(tripId);
  }

  /**
   * The trip's ingest state, reused so that a stream of pings does not read
   * the trip each time. A status change on any node drops the entry on every
   * node at once (cluster bus); entries are reused for up to
   * `tripStateCacheLiveMs` while this node hears the bus, and only up to
   * `tripStateCacheMs` while it does not. Its `latest` may lag: callers merge
   * in what they committed since.
   */
  trackStateCached(tripId: string): Promise<TripTrackState | null> {
    const maxAgeMs = this.bus.live ? this.config.tripStateCacheLiveMs : this.config.tripStateCacheMs;
    if (maxAgeMs <= 0) return this.repo.findTrackState(tripId);
    const now = Date.now();
    const hit = this.trackStateCache.get(tripId);
    if (hit && now - hit.at < maxAgeMs) {
      tripStateCache.hit.inc();
      return hit.state;
    }
    tripStateCache.miss.inc();
    const state = this.repo.findTrackState(tripId);
    const entry: TrackStateEntry = { at: now, state };
    if (hit)
      this.trackStateCache.delete(tripId); // re-inserted last: the map's order is its age
    else if (this.trackStateCache.size >= ACCESS_CACHE_MAX)
      this.trackStateCache.delete(this.trackStateCache.keys().next().value!);
    this.trackStateCache.set(tripId, entry);
    const forget = () => {
      if (this.trackStateCache.get(tripId) === entry) this.trackStateCache.delete(tripId);
    };
    state.then((s) => {
      if (s) entry.driverId = s.driverId;
      else forget();
    }, forget);
    return state;
  }

  /**
   * The active trip of the driver whose tracker token has this digest (see
   * hashTrackerToken), read on the primary: a rotated token stops matching
   * with its commit, an ended profile matches nothing.
   */
  async findActiveTripByTrackerToken(
    trackerTokenHash: string,
  ): Promise<{ driverFound: boolean; tripId: string | null }> {
    const driver = await this.orgs.findDriverByTrackerToken(trackerTokenHash);
    if (!driver) return { driverFound: false, tripId: null };
    return { driverFound: true, tripId: await this.repo.findActiveTripIdOfDriver(driver.id) };
  }

  /**
   * These trips' track state, their rows locked until the transaction ends:
   * the first step of an after-flush round (tracking's TrackRound), one round
   * per trip at a time on any node.
   */
  lockTrackStates(tx: SqlTx, tripIds: readonly string[]): Promise<TripTrackState[]> {
    return this.repo.lockTrackStates(tx, tripIds);
  }

  /**
   * Writes an after-flush round's updates in its transaction (rows locked by
   * lockTrackStates): distance, latest location (never moved backwards),
   * detector state, arrivals and events. Once the transaction commits, the
   * status changes and events are announced.
   */
  async applyTrackUpdates(tx: SqlTx, updates: readonly TripTrackUpdate[]): Promise<void> {
    if (updates.length === 0) return;
    const results = await this.repo.applyTrackUpdates(
      tx,
      updates.map((u) => ({ tripId: u.state.id, update: u.update })),
    );
    // Arrivals' webhook events, in the round's transaction.
    const arrived = updates.filter((u) => results.get(u.state.id)?.arrivedAt);
    if (arrived.length > 0) {
      const rows = await this.repo.selectDefaultIn(
        tx,
        arrived.map((u) => u.state.id),
      );
      await this.outbox.writeIn(
        tx,
        rows.flatMap((row) =>
          tripStatusEvents(
            row as unknown as { sourceOrgId: string; destinationOrgId: string },
            'ARRIVED',
            projectTrip(row, DEFAULT_TRIP_FIELDS),
          ),
        ),
      );
    }
    tx.afterCommit(() => {
      // The rows' distance and latest location changed: their cached details go on every node.
      void this.details.invalidate(...[...results.keys()]);
      for (const { state } of updates) {
        const result = results.get(state.id);
        if (!result) continue;
        if (result.arrivedAt) {
          this.trackStateChanged(state.id);
          this.publishStatus(
            { sourceOrgId: state.sourceOrgId, destinationOrgId: state.destinationOrgId, id: state.id },
            'ARRIVED',
            result.arrivedAt,
          );
        }
        for (const e of result.events) {
          if (e.type === 'STATUS_CHANGED') continue;
          this.realtime.publish(tripRoom(state.id), 'trip.event', {
            tripId: state.id,
            type: e.type,
            at: e.at.toISOString(),
            data: e.data ?? null,
          });
        }
      }
    });
  }

  private publishStatus(
    trip: Pick<TripAccess, 'id' | 'sourceOrgId' | 'destinationOrgId'>,
    status: TripStatus,
    at: Date,
  ): void {
    const payload = { tripId: trip.id, status, at: at.toISOString() };
    this.realtime.publish(tripRoom(trip.id), 'trip.status', payload);
    for (const orgId of new Set([trip.sourceOrgId, trip.destinationOrgId]))
      this.realtime.publish(orgRoom(orgId), 'trip.status', payload);
  }

  private access(tripId: string): Promise<TripAccess | null> {
    return this.accessCache.get(tripId, async () => {
      const trip = await this.repo.findAccess(tripId);
      if (!trip) return null;
      // The assigned profile's row is never deleted (trips name it): its user is known for good.
      const driver = await this.orgs.findDriver(trip.driverId);
      if (!driver) throw new Error(`trip ${tripId} names driver profile ${trip.driverId}, which does not exist`);
      return { ...trip, driverUserId: driver.userId };
    });
  }
}
