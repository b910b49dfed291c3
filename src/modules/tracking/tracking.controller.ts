import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Req } from '@nestjs/common';
import { RouteSchema } from '@nestjs/platform-fastify';
import type { FastifyRequest } from 'fastify';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentUser, Public } from '../../common/auth/decorators';
import { Principal } from '../../common/auth/principal';
import { UserRateLimit } from '../../common/rate-limit/user-rate-limits';
import { ValidationError } from '../../common/errors/domain-error';
import { enveloped } from '../../common/http/envelope';
import { Page } from '../../common/pagination/page';
import { osmandToken, parseOsmAnd } from './osmand';
import { HistoryQuery, PingDto, TrackingTripParam } from './tracking.schemas';
import { TrackingService } from './tracking.service';
import { HistoryPoint } from './tracking.repository';

const OSMAND_DESCRIPTION =
  "`id` or `deviceid` (`device_id` in the JSON form) is the driver's `trackerToken` (from POST /orgs/:orgId/drivers " +
  'or POST /orgs/:orgId/drivers/:driverId/tracker-token); a `deviceId` is never accepted. ' +
  'lat/lon or location=lat,lon, timestamp (s, ms or ISO), speed in knots (m/s in the JSON form), bearing/heading, ' +
  'altitude, accuracy. 200 with an empty body (also for a repeated point). Unknown or missing token: 404 NOT_FOUND, ' +
  'the same answer whatever was sent; past OSMAND_UNKNOWN_TOKEN_LIMIT_PER_MINUTE unknown tokens from one client ' +
  'address a minute, 429 RATE_LIMITED with Retry-After (for any token from that address until the minute ends). ' +
  'No active trip: 409 NO_ACTIVE_TRIP. Missing coordinates: 400. A known token counts against its driver\'s ' +
  'PING_RATE_LIMIT_PER_MINUTE (shared with POST /tracking/ping): past it, 429 RATE_LIMITED with Retry-After.';

function toGeoJson(tripId: string, points: HistoryPoint[], nextCursor: string | null) {
  const coords = points.map((p) => (p.altitude === null ? [p.lng, p.lat] : [p.lng, p.lat, p.altitude]));
  const properties = {
    tripId,
    count: points.length,
    times: points.map((p) => p.recordedAt.toISOString()),
    speeds: points.map((p) => p.speed),
  };
  const features =
    points.length === 0
      ? []
      : [
          points.length === 1
            ? { type: 'Feature', geometry: { type: 'Point', coordinates: coords[0] }, properties }
            : { type: 'Feature', geometry: { type: 'LineString', coordinates: coords }, properties },
        ];
  return { type: 'FeatureCollection', features, nextCursor };
}

/** The ping's answer (PingResult), written by a serializer compiled from this schema. */
const PING_ACK = enveloped({
  type: 'object',
  properties: {
    accepted: { type: 'integer' },
    duplicates: { type: 'integer' },
    rejected: {
      type: 'array',
      items: {
        type: 'object',
        properties: { index: { type: 'integer' }, reason: { type: 'string' }, message: { type: 'string' } },
        required: ['index', 'reason'],
        additionalProperties: false,
      },
    },
  },
  required: ['accepted', 'duplicates', 'rejected'],
  additionalProperties: false,
});

@ApiTags('tracking')
@Controller('tracking')
export class TrackingController {
  constructor(private readonly tracking: TrackingService) {}

  @Post('ping')
  @UserRateLimit('ping-driver')
  @HttpCode(200)
  @RouteSchema({ response: { 200: PING_ACK } })
  @ApiBearerAuth()
  @ApiOperation({
    summary: "Post a batch of the driver's fixes (1..1000)",
    description:
      "200 means the accepted points are committed. The trip's `latestLocation`, `distanceKm`, detected events and the " +
      '`trip.location` room event follow right behind the answer (milliseconds later, in commit order per trip): ' +
      'GET /tracking/trips/:tripId/latest on the node that took the points already shows them, trip reads may lag briefly. ' +
      '`duplicates` counts points already stored (same trip and timestamp); ' +
      '`rejected` lists `{index, reason}`: INVALID, OUT_OF_RANGE, NULL_ISLAND, FUTURE_TIMESTAMP, BEFORE_TRIP_START, SPEED_JUMP. ' +
      "Only the trip's driver posts: a member who sees the trip but is not its driver gets 403 NOT_TRIP_DRIVER, " +
      'anyone else 404 (also a driver who has left the org: removal ends their profile at once on every node). ' +
      "The driver's trip not LOADING/IN_TRANSIT/ARRIVED is 409 TRIP_NOT_ACTIVE. " +
      'Past PING_RATE_LIMIT_PER_MINUTE requests of one driver a minute (this endpoint and /tracking/osmand together): ' +
      '429 RATE_LIMITED with Retry-After.',
  })
  ping(@CurrentUser() me: Principal, @Body() body: PingDto) {
    return this.tracking.ping(me, body.tripId, body.locations);
  }

  @Get('trips/:tripId/latest')
  @ApiBearerAuth()
  latest(@CurrentUser() me: Principal, @Param() p: TrackingTripParam) {
    return this.tracking.latest(me, p.tripId);
  }

  @Get('trips/:tripId/history')
  @ApiBearerAuth()
  @ApiOperation({
    summary: 'The track, oldest first (limit up to 5000)',
    description:
      '`format=geojson` returns a FeatureCollection with one LineString (a Point for a single fix), `nextCursor` as a foreign member.',
  })
  async history(@CurrentUser() me: Principal, @Param() p: TrackingTripParam, @Query() q: HistoryQuery) {
    const page = await this.tracking.history(me, p.tripId, q);
    if (q.format === 'geojson') return toGeoJson(p.tripId, page.points, page.nextCursor);
    return new Page(page.points, page.nextCursor);
  }

  @Get('osmand')
  @Public()
  @HttpCode(200)
  @ApiOperation({
    summary: 'OsmAnd protocol (Traccar Client, OsmAnd, GPSLogger): query string',
    description: OSMAND_DESCRIPTION,
  })
  osmandGet(@Query() query: Record<string, unknown>, @Req() request: FastifyRequest): Promise<void> {
    return this.osmand(query, undefined, request.ip);
  }

  @Post('osmand')
  @Public()
  @HttpCode(200)
  @ApiOperation({
    summary: 'OsmAnd protocol: query string, form body, or the JSON body of newer Traccar Client versions',
    description: OSMAND_DESCRIPTION,
  })
  osmandPost(
    @Query() query: Record<string, unknown>,
    @Body() body: unknown,
    @Req() request: FastifyRequest,
    @Headers('content-type') _type?: string,
  ): Promise<void> {
    return this.osmand(query, body, request.ip);
  }

  private async osmand(query: Record<string, unknown>, body: unknown, clientAddress: string): Promise<void> {
    // The credential first: an unknown token is the same 404 whatever else was sent.
    const tripId = await this.tracking.osmandTrip(osmandToken(query ?? {}, body), clientAddress);
    const parsed = parseOsmAnd(query ?? {}, body, new Date());
    if ('errors' in parsed) throw new ValidationError(parsed.errors);
    // A point the filters drop is still a 200: the app would otherwise resend it forever.
    await this.tracking.osmand(tripId, parsed.fix);
  }
}
