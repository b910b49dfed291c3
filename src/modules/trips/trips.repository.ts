import { Injectable } from '@nestjs/common';
import { Prisma as PrismaSql } from '../../generated/prisma/client';
import type { Prisma } from '../../generated/prisma/client';
import { decodeCursor, keysetArgs, toPage } from '../../common/pagination/cursor';
import { Page } from '../../common/pagination/page';
import { uuidv7 } from 'uuidv7';
import { Db, DbTx, SqlTx } from '../../infra/db/db.service';
import { DEFAULT_TRIP_FIELDS, tripSelect } from './trip-fields';
import { ACTIVE_STATUSES, TripStatus } from './trip-status';
import {
  CreateTripInput,
  NewTripEvent,
  TrackUpdate,
  TripAccess,
  TripEventType,
  TripEventView,
  TripTrackState,
} from './trips.schemas';

/** A trip row read with a dynamic `select` (see trip-fields.ts). */
export type SelectedTrip = Record<string, unknown> & { id: string; createdAt: Date };

/** Which trips a list may return: any of these, each a plain equality (one index range each). */
export interface TripScope {
  sourceOrgIds: string[];
  destinationOrgIds: string[];
  driverIds: string[];
  /** Narrows every branch to trips touching this org (a DRIVER member listing one org). */
  orgId?: string;
}

export type TransitionResult =
  | { kind: 'ok'; from: TripStatus; at: Date }
  | { kind: 'missing' }
  | { kind: 'illegal'; from: TripStatus }
  | { kind: 'driver-busy'; otherTripId: string }
  | { kind: 'truck-busy'; otherTripId: string };

const TRACK_STATE_SELECT = {
  id: true,
  status: true,
  sourceOrgId: true,
  destinationOrgId: true,
  createdAt: true,
  endLat: true,
  endLng: true,
  distanceKm: true,
  latestLat: true,
  latestLng: true,
  latestSpeed: true,
  latestHeading: true,
  latestRecordedAt: true,
  detectorState: true,
  driverId: true,
  driver: { select: { userId: true, removedAt: true } },
} as const satisfies Prisma.TripSelect;

function toTrackState(row: Prisma.TripGetPayload<{ select: typeof TRACK_STATE_SELECT }>): TripTrackState {
  return {
    id: row.id,
    status: row.status,
    driverId: row.driverId,
    driverUserId: row.driver.removedAt ? null : row.driver.userId,
    sourceOrgId: row.sourceOrgId,
    destinationOrgId: row.destinationOrgId,
    createdAt: row.createdAt,
    endLat: row.endLat,
    endLng: row.endLng,
    distanceKm: row.distanceKm,
    detectorState: row.detectorState,
    latest:
      row.latestRecordedAt && row.latestLat !== null && row.latestLng !== null
        ? {
            lat: row.latestLat,
            lng: row.latestLng,
            speed: row.latestSpeed,
            heading: row.latestHeading,
            recordedAt: row.latestRecordedAt,
          }
        : null,
  };
}

/** Every trip of an after-flush round in one statement (arrays unnested server-side). */
const BULK_TRACK_UPDATE = `
  UPDATE trips AS t SET
    distance_km = t.distance_km + u.delta_km,
    detector_state = u.detector_state::jsonb,
    latest_lat = CASE WHEN u.rec IS NOT NULL AND (t.latest_recorded_at IS NULL OR t.latest_recorded_at < u.rec) THEN u.lat ELSE t.latest_lat END,
    latest_lng = CASE WHEN u.rec IS NOT NULL AND (t.latest_recorded_at IS NULL OR t.latest_recorded_at < u.rec) THEN u.lng ELSE t.latest_lng END,
    latest_speed = CASE WHEN u.rec IS NOT NULL AND (t.latest_recorded_at IS NULL OR t.latest_recorded_at < u.rec) THEN u.speed ELSE t.latest_speed END,
    latest_heading = CASE WHEN u.rec IS NOT NULL AND (t.latest_recorded_at IS NULL OR t.latest_recorded_at < u.rec) THEN u.heading ELSE t.latest_heading END,
    latest_recorded_at = GREATEST(t.latest_recorded_at, u.rec),
    updated_at = now()
  FROM unnest($1::uuid[], $2::float8[], $3::text[], $4::timestamptz[], $5::float8[], $6::float8[], $7::float8[], $8::float8[])
    AS u(id, delta_km, detector_state, rec, lat, lng, speed, heading)
  WHERE t.id = u.id`;

@Injectable()
export class TripsRepository {
  constructor(private readonly db: Db) {}

  /** The trip's orgs, truck and driver (the driver's user is the orgs module's to tell). */
  findAccess(tripId: string): Promise<Omit<TripAccess, 'driverUserId'> | null> {
    return this.db.primary.trip.findUnique({
      where: { id: tripId },
      select: { id: true, sourceOrgId: true, destinationOrgId: true, truckId: true, driverId: true, createdAt: true },
    });
  }

  /**
   * Inserts the trip and its first event; null (nothing written) when
   * `lockDriver`, run first in the same transaction, says the driver profile
   * ended meanwhile. It keeps the profile locked (OrgsService.lockActiveDriver),
   * so a concurrent removal from the org waits for this trip and then ends
   * its access too.
   */
  async create(
    input: CreateTripInput,
    actorUserId: string,
    lockDriver: (tx: DbTx) => Promise<boolean>,
  ): Promise<{ id: string; createdAt: Date } | null> {
    return this.db.write.$transaction(async (tx) => {
      if (!(await lockDriver(tx))) return null;
      const trip = await tx.trip.create({
        data: {
          sourceOrgId: input.sourceOrgId,
          destinationOrgId: input.destinationOrgId,
          truckId: input.truckId,
          driverId: input.driverId,
          startName: input.startPoint.name,
          startLat: input.startPoint.lat,
          startLng: input.startPoint.lng,
          endName: input.endPoint.name,
          endLat: input.endPoint.lat,
          endLng: input.endPoint.lng,
          estimatedArrival: input.estimatedArrival ? new Date(input.estimatedArrival) : null,
        },
        select: { id: true, createdAt: true },
      });
      await tx.tripEvent.create({
        data: {
          tripId: trip.id,
          type: 'STATUS_CHANGED',
          at: trip.createdAt,
          data: { from: null, to: 'PLANNED' },
          actorUserId,
        },
      });
      return trip;
    });
  }

  /** One trip with exactly the selected fields, in one query. */
  async findSelected(tripId: string, fields: readonly string[], fromPrimary = false): Promise<SelectedTrip | null> {
    const client = fromPrimary ? this.db.primary : this.db.read;
    const row = await client.trip.findUnique({
      where: { id: tripId },
      select: tripSelect(fields) as Prisma.TripSelect,
      relationLoadStrategy: 'join',
    });
    return row as SelectedTrip | null;
  }

  /**
   * A page of trips, newest first, with exactly the selected fields. One
   * branch (one side of one org, or one driver): one query whose filter and
   * order match an (org, status, created_at, id) index, so the keyset walk
   * stays on the index. Several branches (an org seen from both sides, several
   * orgs, or orgs and the caller's own driver trips): the page's ids come
   * from a UNION of one such index range per branch (each LIMIT n+1), then the
   * selected fields of those ids in a second query — instead of an OR, which
   * for a large org is a scan of all its trips and a sort.
   */
  async list(
    scope: TripScope,
    filter: { status?: TripStatus; driverId?: string },
    fields: readonly string[],
    cursor: string | undefined,
    limit: number,
  ): Promise<Page<SelectedTrip>> {
    const k = keysetArgs(cursor);
    const after = cursor ? decodeCursor(cursor) : undefined;
    const branchCount = scope.sourceOrgIds.length + scope.destinationOrgIds.length + scope.driverIds.length;
    if (branchCount === 0) return new Page([], null);
    if (branchCount > 1) return this.listByBranches(scope, filter, fields, after, limit);

    const and: Record<string, unknown>[] = [];
    if (scope.sourceOrgIds.length) and.push({ sourceOrgId: scope.sourceOrgIds[0] });
    if (scope.destinationOrgIds.length) and.push({ destinationOrgId: scope.destinationOrgIds[0] });
    if (scope.driverIds.length) and.push({ driverId: scope.driverIds[0] });
    if (scope.orgId) and.push({ OR: [{ sourceOrgId: scope.orgId }, { destinationOrgId: scope.orgId }] });
    if (filter.status) and.push({ status: filter.status });
    if (filter.driverId) and.push({ driverId: filter.driverId });
    if (after) {
      // Redundant with the keyset condition, but an index bound: (created_at < c OR (created_at = c AND id < i))
      // alone is a filter, so a deep page would walk the index from the newest row down to the cursor.
      and.push({ createdAt: { lte: after.createdAt } }, k.where);
    }
    const rows = await this.db.read.trip.findMany({
      where: and.length === 1 ? and[0] : { AND: and },
      orderBy: k.orderBy,
      take: limit + 1,
      select: tripSelect(fields) as Prisma.TripSelect,
      relationLoadStrategy: 'join',
    });
    return toPage(rows as unknown as SelectedTrip[], limit);
  }

  private async listByBranches(
    scope: TripScope,
    filter: { status?: TripStatus; driverId?: string },
    fields: readonly string[],
    after: { createdAt: Date; id: string } | undefined,
    limit: number,
  ): Promise<Page<SelectedTrip>> {
    const branches = [
      ...scope.sourceOrgIds.map((id) => PrismaSql.sql`source_org_id = ${id}::uuid`),
      ...scope.destinationOrgIds.map((id) => PrismaSql.sql`destination_org_id = ${id}::uuid`),
      ...scope.driverIds.map((id) => PrismaSql.sql`driver_id = ${id}::uuid`),
    ];
    const extra: Prisma.Sql[] = [];
    if (scope.orgId)
      extra.push(PrismaSql.sql`(source_org_id = ${scope.orgId}::uuid OR destination_org_id = ${scope.orgId}::uuid)`);
    if (filter.status) extra.push(PrismaSql.sql`status = ${filter.status}::trip_status`);
    if (filter.driverId) extra.push(PrismaSql.sql`driver_id = ${filter.driverId}::uuid`);
    if (after) {
      const at = after.createdAt.toISOString();
      extra.push(
        PrismaSql.sql`created_at <= ${at}::timestamptz AND (created_at < ${at}::timestamptz OR (created_at = ${at}::timestamptz AND id < ${after.id}::uuid))`,
      );
    }
    const cond = extra.length ? PrismaSql.sql` AND ${PrismaSql.join(extra, ' AND ')}` : PrismaSql.empty;
    const take = limit + 1;
    const ranges = branches.map(
      (b) =>
        PrismaSql.sql`(SELECT id, created_at FROM trips WHERE ${b}${cond} ORDER BY created_at DESC, id DESC LIMIT ${take})`,
    );
    const keys = await this.db.read.$queryRaw<{ trip_id: string }[]>`
      SELECT page.id::text AS trip_id FROM (${PrismaSql.join(ranges, ' UNION ')}) page
      ORDER BY page.created_at DESC, page.id DESC LIMIT ${take}`;
    if (keys.length === 0) return new Page([], null);
    const rows = (await this.db.read.trip.findMany({
      where: { id: { in: keys.map((r) => r.trip_id) } },
      select: tripSelect(fields) as Prisma.TripSelect,
      relationLoadStrategy: 'join',
    })) as unknown as SelectedTrip[];
    const byId = new Map(rows.map((r) => [r.id, r]));
    const ordered = keys.map((r) => byId.get(r.trip_id)).filter((r): r is SelectedTrip => r !== undefined);
    return toPage(ordered, limit);
  }

  /**
   * Moves a trip to `to` if the state machine allows it from the state it is
   * in now (row locked, so of two concurrent moves from one state exactly one
   * wins). Entering LOADING also locks the driver and the truck
   * (`lockAssignees`, OrgsService.lockDriverAndTruck) and refuses when either
   * already has an active trip.
   */
  transition(
    tripId: string,
    to: TripStatus,
    allowed: (from: TripStatus) => boolean,
    actorUserId: string,
    lockAssignees: (tx: DbTx, driverId: string, truckId: string) => Promise<void>,
    note?: string,
    afterChange?: (tx: DbTx, trip: SelectedTrip) => Promise<void>,
  ): Promise<TransitionResult> {
    return this.db.write.$transaction(async (tx) => {
      const [trip] = await tx.$queryRaw<{ status: TripStatus; driver_id: string; truck_id: string }[]>`
        SELECT status::text AS status, driver_id::text AS driver_id, truck_id::text AS truck_id
        FROM trips WHERE id = ${tripId}::uuid FOR UPDATE`;
      if (!trip) return { kind: 'missing' } as const;
      if (!allowed(trip.status)) return { kind: 'illegal', from: trip.status } as const;
      if (ACTIVE_STATUSES.includes(to) && !ACTIVE_STATUSES.includes(trip.status)) {
        await lockAssignees(tx, trip.driver_id, trip.truck_id);
        const busyDriver = await tx.trip.findFirst({
          where: { driverId: trip.driver_id, status: { in: [...ACTIVE_STATUSES] }, id: { not: tripId } },
          select: { id: true },
        });
        if (busyDriver) return { kind: 'driver-busy', otherTripId: busyDriver.id } as const;
        const busyTruck = await tx.trip.findFirst({
          where: { truckId: trip.truck_id, status: { in: [...ACTIVE_STATUSES] }, id: { not: tripId } },
          select: { id: true },
        });
        if (busyTruck) return { kind: 'truck-busy', otherTripId: busyTruck.id } as const;
      }
      const updated = await tx.trip.update({
        where: { id: tripId },
        data: { status: to },
        select: { updatedAt: true },
      });
      await tx.tripEvent.create({
        data: {
          tripId,
          type: 'STATUS_CHANGED',
          at: updated.updatedAt,
          data: { from: trip.status, to, ...(note ? { note } : {}) },
          actorUserId,
        },
      });
      if (afterChange) {
        const selected = await tx.trip.findUnique({
          where: { id: tripId },
          select: tripSelect(DEFAULT_TRIP_FIELDS) as Prisma.TripSelect,
        });
        await afterChange(tx, selected as unknown as SelectedTrip);
      }
      return { kind: 'ok', from: trip.status, at: updated.updatedAt } as const;
    });
  }

  async listEvents(tripId: string, cursor: string | undefined, limit: number): Promise<Page<TripEventView>> {
    const k = keysetArgs(cursor);
    const rows = await this.db.read.tripEvent.findMany({
      where: { tripId, ...k.where },
      orderBy: k.orderBy,
      take: limit + 1,
      select: { id: true, tripId: true, type: true, at: true, data: true, actorUserId: true, createdAt: true },
    });
    return toPage(rows as TripEventView[], limit);
  }

  async appendEvent(tripId: string, event: NewTripEvent): Promise<TripEventView> {
    return (await this.db.write.tripEvent.create({
      data: {
        tripId,
        type: event.type,
        at: event.at,
        data: event.data as Prisma.InputJsonValue | undefined,
        actorUserId: event.actorUserId ?? null,
      },
      select: { id: true, tripId: true, type: true, at: true, data: true, actorUserId: true, createdAt: true },
    })) as TripEventView;
  }

  async findTrackState(tripId: string): Promise<TripTrackState | null> {
    const row = await this.db.primary.trip.findUnique({ where: { id: tripId }, select: TRACK_STATE_SELECT });
    return row ? toTrackState(row) : null;
  }

  /**
   * Several trips' ingest state, their rows locked (FOR NO KEY UPDATE, in id
   * order) until the transaction ends: one after-flush round at a time per
   * trip, on any node. Pings can still be inserted meanwhile (their foreign
   * key takes only a KEY SHARE lock).
   */
  async lockTrackStates(tx: SqlTx, tripIds: readonly string[]): Promise<TripTrackState[]> {
    if (tripIds.length === 0) return [];
    const rows = await tx.query<{
      id: string;
      status: TripStatus;
      driver_id: string;
      driver_user_id: string;
      driver_removed_at: Date | null;
      source_org_id: string;
      destination_org_id: string;
      created_at: Date;
      end_lat: number;
      end_lng: number;
      distance_km: number;
      latest_lat: number | null;
      latest_lng: number | null;
      latest_speed: number | null;
      latest_heading: number | null;
      latest_recorded_at: Date | null;
      detector_state: unknown;
    }>(
      `SELECT t.id::text AS id, t.status::text AS status, t.driver_id::text AS driver_id,
              d.user_id::text AS driver_user_id, d.removed_at AS driver_removed_at,
              t.source_org_id::text AS source_org_id, t.destination_org_id::text AS destination_org_id,
              t.created_at, t.end_lat, t.end_lng, t.distance_km, t.latest_lat, t.latest_lng, t.latest_speed,
              t.latest_heading, t.latest_recorded_at, t.detector_state
       FROM trips t JOIN driver_profiles d ON d.id = t.driver_id
       WHERE t.id = ANY($1::uuid[]) ORDER BY t.id FOR NO KEY UPDATE OF t`,
      [tripIds],
      'lock-track-states',
    );
    return rows.map((r) =>
      toTrackState({
        id: r.id,
        status: r.status,
        driverId: r.driver_id,
        driver: { userId: r.driver_user_id, removedAt: r.driver_removed_at },
        sourceOrgId: r.source_org_id,
        destinationOrgId: r.destination_org_id,
        createdAt: r.created_at,
        endLat: r.end_lat,
        endLng: r.end_lng,
        distanceKm: r.distance_km,
        latestLat: r.latest_lat,
        latestLng: r.latest_lng,
        latestSpeed: r.latest_speed,
        latestHeading: r.latest_heading,
        latestRecordedAt: r.latest_recorded_at,
        detectorState: r.detector_state as Prisma.JsonValue,
      }),
    );
  }

  /** The driver's active trip (at most one), read from the primary. */
  async findActiveTripIdOfDriver(driverId: string): Promise<string | null> {
    const trip = await this.db.primary.trip.findFirst({
      where: { driverId, status: { in: [...ACTIVE_STATUSES] } },
      select: { id: true },
    });
    return trip?.id ?? null;
  }

  /**
   * Applies one after-flush round's effect on its trips, inside the round's
   * transaction (rows locked by lockTrackStates): distance, the latest location
   * (never backwards: guarded by recorded_at) and detector state of every trip
   * in one UPDATE, then the IN_TRANSIT → ARRIVED moves and the events.
   */
  /** Trips with the columns of the default field selection, read inside the caller's transaction (camelCase, as Prisma returns them). */
  async selectDefaultIn(tx: SqlTx, tripIds: readonly string[]): Promise<SelectedTrip[]> {
    if (tripIds.length === 0) return [];
    return tx.query<SelectedTrip>(
      `SELECT id::text AS "id", status::text AS "status", source_org_id::text AS "sourceOrgId",
              destination_org_id::text AS "destinationOrgId", truck_id::text AS "truckId", driver_id::text AS "driverId",
              start_name AS "startName", start_lat AS "startLat", start_lng AS "startLng",
              end_name AS "endName", end_lat AS "endLat", end_lng AS "endLng",
              estimated_arrival AS "estimatedArrival", distance_km AS "distanceKm",
              latest_lat AS "latestLat", latest_lng AS "latestLng", latest_speed AS "latestSpeed",
              latest_heading AS "latestHeading", latest_recorded_at AS "latestRecordedAt",
              created_at AS "createdAt", updated_at AS "updatedAt"
       FROM trips WHERE id = ANY($1::uuid[])`,
      [tripIds],
    );
  }

  async applyTrackUpdates(
    tx: SqlTx,
    items: { tripId: string; update: TrackUpdate }[],
  ): Promise<Map<string, { arrivedAt: Date | null; events: TripEventView[] }>> {
    const results = new Map<string, { arrivedAt: Date | null; events: TripEventView[] }>();
    if (items.length === 0) return results;
    const sorted = [...items].sort((a, b) => (a.tripId < b.tripId ? -1 : a.tripId > b.tripId ? 1 : 0));
    await tx.query(
      BULK_TRACK_UPDATE,
      [
        sorted.map((i) => i.tripId),
        sorted.map((i) => i.update.distanceDeltaKm),
        sorted.map((i) => JSON.stringify(i.update.detectorState ?? null)),
        sorted.map((i) => i.update.latest?.recordedAt.toISOString() ?? null),
        sorted.map((i) => i.update.latest?.lat ?? null),
        sorted.map((i) => i.update.latest?.lng ?? null),
        sorted.map((i) => i.update.latest?.speed ?? null),
        sorted.map((i) => i.update.latest?.heading ?? null),
      ],
      'bulk-track-update',
    );
    for (const i of sorted) results.set(i.tripId, { arrivedAt: null, events: [] });
    for (const { tripId, update } of sorted) {
      if (!update.arrive && update.events.length === 0) continue;
      let arrivedAt: Date | null = null;
      const events: NewTripEvent[] = [...update.events];
      if (update.arrive) {
        const rows = await tx.query<{ updated_at: Date }>(
          `UPDATE trips SET status = 'ARRIVED', updated_at = now()
           WHERE id = $1::uuid AND status = 'IN_TRANSIT' RETURNING updated_at`,
          [tripId],
        );
        if (rows[0]) {
          arrivedAt = rows[0].updated_at;
          events.push({
            type: 'STATUS_CHANGED',
            at: arrivedAt,
            data: { from: 'IN_TRANSIT', to: 'ARRIVED', reason: 'arrival detected' },
          });
        }
      }
      // Arrival is logged once, with the move to ARRIVED.
      const logged = events.filter((e) => e.type !== 'ARRIVAL' || arrivedAt);
      const created = logged.length
        ? await tx.query<{
            id: string;
            trip_id: string;
            type: TripEventType;
            at: Date;
            data: unknown;
            actor_user_id: string | null;
            created_at: Date;
          }>(
            `INSERT INTO trip_events (id, trip_id, type, at, data, actor_user_id)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::trip_event_type[], $4::timestamptz[], $5::jsonb[], $6::uuid[])
             RETURNING id::text, trip_id::text, type::text, at, data, actor_user_id::text, created_at`,
            [
              logged.map(() => uuidv7()),
              logged.map(() => tripId),
              logged.map((e) => e.type),
              logged.map((e) => e.at.toISOString()),
              logged.map((e) => (e.data === undefined ? null : JSON.stringify(e.data))),
              logged.map((e) => e.actorUserId ?? null),
            ],
          )
        : [];
      results.set(tripId, {
        arrivedAt,
        events: created.map((r) => ({
          id: r.id,
          tripId: r.trip_id,
          type: r.type,
          at: r.at,
          data: r.data,
          actorUserId: r.actor_user_id,
          createdAt: r.created_at,
        })),
      });
    }
    return results;
  }
}
