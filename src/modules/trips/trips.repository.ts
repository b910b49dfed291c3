import { Injectable } from '@nestjs/common';
import type { Prisma } from '../../generated/prisma/client';
import { keysetArgs, toPage } from '../../common/pagination/cursor';
import { Page } from '../../common/pagination/page';
import { Db } from '../../infra/db/db.service';
import { tripSelect } from './trip-fields';
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

export type OrgRoleName = 'OWNER' | 'ADMIN' | 'ACCOUNTANT' | 'STAFF' | 'DRIVER';

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

const inOrEq = (ids: string[]) => (ids.length === 1 ? ids[0] : { in: ids });

@Injectable()
export class TripsRepository {
  constructor(private readonly db: Db) {}

  /** The caller's memberships (org, role), read from the primary like every access check. */
  async membershipsOf(userId: string, orgIds?: string[]): Promise<{ orgId: string; role: OrgRoleName }[]> {
    return this.db.primary.membership.findMany({
      where: { userId, ...(orgIds ? { orgId: { in: orgIds } } : {}) },
      select: { orgId: true, role: true },
    });
  }

  async driverProfileIdsOf(userId: string): Promise<string[]> {
    const rows = await this.db.primary.driverProfile.findMany({ where: { userId }, select: { id: true } });
    return rows.map((r) => r.id);
  }

  findTruckOrg(truckId: string): Promise<{ orgId: string } | null> {
    return this.db.primary.truck.findUnique({ where: { id: truckId }, select: { orgId: true } });
  }

  findDriverOrg(driverId: string): Promise<{ orgId: string } | null> {
    return this.db.primary.driverProfile.findUnique({ where: { id: driverId }, select: { orgId: true } });
  }

  async findAccess(tripId: string): Promise<TripAccess | null> {
    const row = await this.db.primary.trip.findUnique({
      where: { id: tripId },
      select: {
        id: true,
        sourceOrgId: true,
        destinationOrgId: true,
        truckId: true,
        driverId: true,
        createdAt: true,
        driver: { select: { userId: true } },
      },
    });
    if (!row) return null;
    const { driver, ...rest } = row;
    return { ...rest, driverUserId: driver.userId };
  }

  async create(input: CreateTripInput, actorUserId: string): Promise<{ id: string; createdAt: Date }> {
    return this.db.write.$transaction(async (tx) => {
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
        data: { tripId: trip.id, type: 'STATUS_CHANGED', at: trip.createdAt, data: { from: null, to: 'PLANNED' }, actorUserId },
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
   * A page of trips, newest first, with exactly the selected fields: one
   * query whose filter and order match the (org, status, created_at, id)
   * indexes, so the keyset walk stays on the index.
   */
  async list(
    scope: TripScope,
    filter: { status?: TripStatus; driverId?: string },
    fields: readonly string[],
    cursor: string | undefined,
    limit: number,
  ): Promise<Page<SelectedTrip>> {
    const k = keysetArgs(cursor);
    const branches: Record<string, unknown>[] = [];
    if (scope.sourceOrgIds.length) branches.push({ sourceOrgId: inOrEq(scope.sourceOrgIds) });
    if (scope.destinationOrgIds.length) branches.push({ destinationOrgId: inOrEq(scope.destinationOrgIds) });
    if (scope.driverIds.length) branches.push({ driverId: inOrEq(scope.driverIds) });
    if (branches.length === 0) return new Page([], null);
    const and: Record<string, unknown>[] = [branches.length === 1 ? branches[0] : { OR: branches }];
    if (scope.orgId) and.push({ OR: [{ sourceOrgId: scope.orgId }, { destinationOrgId: scope.orgId }] });
    if (filter.status) and.push({ status: filter.status });
    if (filter.driverId) and.push({ driverId: filter.driverId });
    if (cursor) and.push(k.where);
    const rows = await this.db.read.trip.findMany({
      where: and.length === 1 ? and[0] : { AND: and },
      orderBy: k.orderBy,
      take: limit + 1,
      select: tripSelect(fields) as Prisma.TripSelect,
      relationLoadStrategy: 'join',
    });
    return toPage(rows as unknown as SelectedTrip[], limit);
  }

  /**
   * Moves a trip to `to` if the state machine allows it from the state it is
   * in now (row locked, so of two concurrent moves from one state exactly one
   * wins). Entering LOADING also locks the driver and the truck and refuses
   * when either already has an active trip.
   */
  transition(
    tripId: string,
    to: TripStatus,
    allowed: (from: TripStatus) => boolean,
    actorUserId: string,
    note?: string,
  ): Promise<TransitionResult> {
    return this.db.write.$transaction(async (tx) => {
      const [trip] = await tx.$queryRaw<{ status: TripStatus; driver_id: string; truck_id: string }[]>`
        SELECT status::text AS status, driver_id::text AS driver_id, truck_id::text AS truck_id
        FROM trips WHERE id = ${tripId}::uuid FOR UPDATE`;
      if (!trip) return { kind: 'missing' } as const;
      if (!allowed(trip.status)) return { kind: 'illegal', from: trip.status } as const;
      if (ACTIVE_STATUSES.includes(to) && !ACTIVE_STATUSES.includes(trip.status)) {
        await tx.$queryRaw`SELECT id FROM driver_profiles WHERE id = ${trip.driver_id}::uuid FOR UPDATE`;
        await tx.$queryRaw`SELECT id FROM trucks WHERE id = ${trip.truck_id}::uuid FOR UPDATE`;
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
      const updated = await tx.trip.update({ where: { id: tripId }, data: { status: to }, select: { updatedAt: true } });
      await tx.tripEvent.create({
        data: {
          tripId,
          type: 'STATUS_CHANGED',
          at: updated.updatedAt,
          data: { from: trip.status, to, ...(note ? { note } : {}) },
          actorUserId,
        },
      });
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
      data: { tripId, type: event.type, at: event.at, data: event.data as Prisma.InputJsonValue | undefined, actorUserId: event.actorUserId ?? null },
      select: { id: true, tripId: true, type: true, at: true, data: true, actorUserId: true, createdAt: true },
    })) as TripEventView;
  }

  async findTrackState(tripId: string): Promise<TripTrackState | null> {
    const row = await this.db.primary.trip.findUnique({
      where: { id: tripId },
      select: {
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
        driver: { select: { userId: true } },
      },
    });
    if (!row) return null;
    return {
      id: row.id,
      status: row.status,
      driverUserId: row.driver.userId,
      sourceOrgId: row.sourceOrgId,
      destinationOrgId: row.destinationOrgId,
      createdAt: row.createdAt,
      endLat: row.endLat,
      endLng: row.endLng,
      distanceKm: row.distanceKm,
      detectorState: row.detectorState,
      latest:
        row.latestRecordedAt && row.latestLat !== null && row.latestLng !== null
          ? { lat: row.latestLat, lng: row.latestLng, speed: row.latestSpeed, heading: row.latestHeading, recordedAt: row.latestRecordedAt }
          : null,
    };
  }

  /** The active trip of the driver profile registered with this device id. */
  async findActiveTripByDevice(deviceId: string): Promise<{ driverFound: boolean; tripId: string | null }> {
    const driver = await this.db.primary.driverProfile.findUnique({ where: { deviceId }, select: { id: true } });
    if (!driver) return { driverFound: false, tripId: null };
    const trip = await this.db.primary.trip.findFirst({
      where: { driverId: driver.id, status: { in: [...ACTIVE_STATUSES] } },
      select: { id: true },
    });
    return { driverFound: true, tripId: trip?.id ?? null };
  }

  /**
   * Applies one flush's effect on a trip in one transaction: distance, the
   * latest location (never backwards: guarded by recorded_at), detector
   * state, the detected events, and IN_TRANSIT → ARRIVED on arrival.
   */
  applyTrackUpdate(
    tripId: string,
    update: TrackUpdate,
  ): Promise<{ arrivedAt: Date | null; events: TripEventView[] }> {
    return this.db.write.$transaction(async (tx) => {
      const l = update.latest;
      await tx.$executeRaw`
        UPDATE trips SET
          distance_km = distance_km + ${update.distanceDeltaKm},
          detector_state = ${JSON.stringify(update.detectorState ?? null)}::jsonb,
          latest_lat = CASE WHEN ${l?.recordedAt ?? null}::timestamptz IS NOT NULL
                             AND (latest_recorded_at IS NULL OR latest_recorded_at < ${l?.recordedAt ?? null}::timestamptz)
                            THEN ${l?.lat ?? null}::float8 ELSE latest_lat END,
          latest_lng = CASE WHEN ${l?.recordedAt ?? null}::timestamptz IS NOT NULL
                             AND (latest_recorded_at IS NULL OR latest_recorded_at < ${l?.recordedAt ?? null}::timestamptz)
                            THEN ${l?.lng ?? null}::float8 ELSE latest_lng END,
          latest_speed = CASE WHEN ${l?.recordedAt ?? null}::timestamptz IS NOT NULL
                             AND (latest_recorded_at IS NULL OR latest_recorded_at < ${l?.recordedAt ?? null}::timestamptz)
                            THEN ${l?.speed ?? null}::float8 ELSE latest_speed END,
          latest_heading = CASE WHEN ${l?.recordedAt ?? null}::timestamptz IS NOT NULL
                             AND (latest_recorded_at IS NULL OR latest_recorded_at < ${l?.recordedAt ?? null}::timestamptz)
                            THEN ${l?.heading ?? null}::float8 ELSE latest_heading END,
          latest_recorded_at = GREATEST(latest_recorded_at, ${l?.recordedAt ?? null}::timestamptz),
          updated_at = now()
        WHERE id = ${tripId}::uuid`;
      let arrivedAt: Date | null = null;
      const events: NewTripEvent[] = [...update.events];
      if (update.arrive) {
        const rows = await tx.$queryRaw<{ updated_at: Date }[]>`
          UPDATE trips SET status = 'ARRIVED', updated_at = now()
          WHERE id = ${tripId}::uuid AND status = 'IN_TRANSIT' RETURNING updated_at`;
        if (rows[0]) {
          arrivedAt = rows[0].updated_at;
          events.push({ type: 'STATUS_CHANGED', at: arrivedAt, data: { from: 'IN_TRANSIT', to: 'ARRIVED', reason: 'arrival detected' } });
        }
      }
      const created: TripEventView[] = [];
      for (const e of events) {
        if (e.type === 'ARRIVAL' && !arrivedAt) continue; // arrival is logged once, with the move to ARRIVED
        created.push(
          (await tx.tripEvent.create({
            data: { tripId, type: e.type as TripEventType, at: e.at, data: e.data as Prisma.InputJsonValue | undefined, actorUserId: e.actorUserId ?? null },
            select: { id: true, tripId: true, type: true, at: true, data: true, actorUserId: true, createdAt: true },
          })) as TripEventView,
        );
      }
      return { arrivedAt, events: created };
    });
  }
}
