import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';
import { pageQuerySchema } from '../../common/pagination/cursor';
import { isoDateTimeSchema } from '../../common/validation/zod';
import { TRIP_STATUSES, TripStatus } from './trip-status';

export const tripIdParamSchema = z.strictObject({ tripId: z.uuid() });
export class TripIdParam extends createZodDto(tripIdParamSchema) {}

const placeSchema = z.strictObject({
  name: z.string().trim().min(1).max(200),
  lat: z.number().min(-90).max(90),
  lng: z.number().min(-180).max(180),
});

export const createTripSchema = z.strictObject({
  sourceOrgId: z.uuid(),
  destinationOrgId: z.uuid(),
  truckId: z.uuid(),
  driverId: z.uuid().describe('a driver profile id (GET /orgs/:orgId/drivers)'),
  startPoint: placeSchema,
  endPoint: placeSchema,
  estimatedArrival: isoDateTimeSchema.optional(),
});
export class CreateTripDto extends createZodDto(createTripSchema) {}
export type CreateTripInput = z.infer<typeof createTripSchema>;

const fieldsSchema = z
  .string()
  .max(2000)
  .optional()
  .describe(
    'comma-separated fields, dotted into relations: id,status,truck.number,driver.name,sourceOrg.name,latestLocation',
  );

export const listTripsQuerySchema = pageQuerySchema.extend({
  status: z.enum(TRIP_STATUSES).optional(),
  orgId: z.uuid().optional(),
  side: z.enum(['source', 'destination']).optional(),
  driverId: z.uuid().optional(),
  fields: fieldsSchema,
});
export class ListTripsQuery extends createZodDto(listTripsQuerySchema) {}
export type ListTripsFilter = z.infer<typeof listTripsQuerySchema>;

export const tripDetailQuerySchema = z.strictObject({ fields: fieldsSchema });
export class TripDetailQuery extends createZodDto(tripDetailQuerySchema) {}

export const transitionSchema = z.strictObject({
  status: z.enum(TRIP_STATUSES),
  note: z.string().trim().min(1).max(500).optional(),
});
export class TransitionDto extends createZodDto(transitionSchema) {}

export class EventsQuery extends createZodDto(pageQuerySchema) {}

/**
 * What access checks need of a trip; none of it changes after creation.
 * `driverUserId` is the user of the assigned driver profile, whether or not
 * that profile still grants access (it ends when the user leaves the org):
 * ask `OrgsService.findDriver` whether it has ended.
 */
export interface TripAccess {
  id: string;
  sourceOrgId: string;
  destinationOrgId: string;
  truckId: string;
  driverId: string;
  driverUserId: string;
  createdAt: Date;
}

/**
 * What ping ingest and the after-flush round need of a trip. `latest` is the
 * row's latest_* columns as read (the round moves them): tracking's
 * LatestLocations merges it with what is newer.
 */
export interface TripTrackState {
  id: string;
  status: TripStatus;
  /** The assigned driver profile (kept on the trip even after the profile ended). */
  driverId: string;
  /** The user who may post the trip's pings: its driver's, or null once that driver left the org. */
  driverUserId: string | null;
  sourceOrgId: string;
  destinationOrgId: string;
  createdAt: Date;
  endLat: number;
  endLng: number;
  latest: TrackPoint | null;
  distanceKm: number;
  detectorState: unknown;
}

export interface TrackPoint {
  lat: number;
  lng: number;
  speed: number | null;
  heading: number | null;
  recordedAt: Date;
}

export type TripEventType = 'STATUS_CHANGED' | 'ARRIVAL' | 'OVERSPEED' | 'STOPPED' | 'SCAN';

export interface TripEventView {
  id: string;
  tripId: string;
  type: TripEventType;
  at: Date;
  data: unknown;
  actorUserId: string | null;
  createdAt: Date;
}

export interface NewTripEvent {
  type: TripEventType;
  at: Date;
  data?: Record<string, unknown>;
  actorUserId?: string | null;
}

/** One trip's update of an after-flush round: its locked state (from lockTrackStates) and the change. */
export interface TripTrackUpdate {
  state: TripTrackState;
  update: TrackUpdate;
}

/** The row changes of one trip after a ping flush. */
export interface TrackUpdate {
  /** Set when the flush moved the latest location forward. */
  latest: TrackPoint | null;
  distanceDeltaKm: number;
  detectorState: unknown;
  events: NewTripEvent[];
  /** IN_TRANSIT → ARRIVED because the truck reached the end point. */
  arrive: boolean;
}
