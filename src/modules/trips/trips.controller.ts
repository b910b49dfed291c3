import { Body, Controller, Get, HttpCode, Param, Post, Query, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CurrentUser } from '../../common/auth/decorators';
import { Principal } from '../../common/auth/principal';
import { emptyBody, notModified } from '../../common/http/etag';
import { Idempotent } from '../../common/idempotency/idempotency.interceptor';
import {
  CreateTripDto,
  EventsQuery,
  ListTripsQuery,
  TransitionDto,
  TripDetailQuery,
  TripIdParam,
} from './trips.schemas';
import { TripsService } from './trips.service';

@ApiTags('trips')
@ApiBearerAuth()
@Controller('trips')
export class TripsController {
  constructor(private readonly trips: TripsService) {}

  @Post()
  @Idempotent()
  @ApiOperation({
    summary: 'Create a trip (OWNER/ADMIN/STAFF of the source or destination org)',
    description:
      'The truck and the driver must belong to one of the two orgs in which the caller is OWNER, ADMIN or STAFF: ' +
      "an org never assigns the other org's truck or driver. A driver who left their org (their profile ended) " +
      'takes no new trips. Each refusal is a 422 VALIDATION_FAILED naming `truckId` or `driverId`; an unknown ' +
      'counterparty org (the one the caller is not a member of) is a 422 naming `sourceOrgId` or `destinationOrgId`. ' +
      'A caller in neither org: 404; a member of them with no such role: 403.',
  })
  create(@CurrentUser() me: Principal, @Body() body: CreateTripDto) {
    return this.trips.create(me, body);
  }

  @Get()
  @ApiOperation({
    summary: 'Trips visible to the caller, newest first',
    description:
      'Without `orgId`: trips of every org where the caller is a non-DRIVER member, plus trips assigned to the caller. ' +
      '`side` narrows to trips where that org is the source or the destination. `fields` selects fields (default: the trip without relations).',
  })
  list(@CurrentUser() me: Principal, @Query() q: ListTripsQuery) {
    return this.trips.list(me, q);
  }

  @Get(':tripId')
  @ApiOperation({
    summary: 'A trip',
    description:
      'Strong `ETag`, `Cache-Control: private, no-cache`: the same request with `If-None-Match` is a 304 with no body ' +
      'while the trip (status, distance, latest location) is unchanged, and a 200 with a new ETag once it changed.',
  })
  async get(
    @CurrentUser() me: Principal,
    @Param() p: TripIdParam,
    @Query() q: TripDetailQuery,
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) res: FastifyReply,
  ) {
    const { trip, etag } = await this.trips.detail(me, p.tripId, q.fields);
    return notModified(req, res, etag) ? emptyBody() : trip;
  }

  @Post(':tripId/status')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Move a trip through PLANNED → LOADING → IN_TRANSIT → ARRIVED → COMPLETED (CANCELLED before ARRIVED)',
    description:
      'OWNER/ADMIN/STAFF of either org; the assigned driver may move to LOADING, IN_TRANSIT and ARRIVED. 409 ILLEGAL_TRANSITION, DRIVER_BUSY, TRUCK_BUSY.',
  })
  transition(@CurrentUser() me: Principal, @Param() p: TripIdParam, @Body() body: TransitionDto) {
    return this.trips.transition(me, p.tripId, body.status, body.note);
  }

  @Get(':tripId/events')
  @ApiOperation({ summary: "The trip's log, newest first: status changes, arrival, overspeed, stops, scans" })
  events(@CurrentUser() me: Principal, @Param() p: TripIdParam, @Query() q: EventsQuery) {
    return this.trips.events(me, p.tripId, q.cursor, q.limit);
  }
}
