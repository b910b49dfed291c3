import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentUser } from '../../common/auth/decorators';
import { Principal } from '../../common/auth/principal';
import { Idempotent } from '../../common/idempotency/idempotency.interceptor';
import {
  AddMemberDto,
  CreateDriverDto,
  CreateOrgDto,
  CreateTruckDto,
  DriverParam,
  MemberParam,
  OrgIdParam,
  PageQueryDto,
  TrackerTokenDto,
  UpdateMemberDto,
  UpdateOrgDto,
} from './orgs.schemas';
import { OrgsService } from './orgs.service';

@ApiTags('orgs')
@ApiBearerAuth()
@Controller('orgs')
export class OrgsController {
  constructor(private readonly orgs: OrgsService) {}

  @Post()
  @Idempotent()
  create(@CurrentUser() me: Principal, @Body() body: CreateOrgDto) {
    return this.orgs.createOrg(me, body);
  }

  @Get(':orgId')
  get(@CurrentUser() me: Principal, @Param() p: OrgIdParam) {
    return this.orgs.getOrg(me, p.orgId);
  }

  @Patch(':orgId')
  update(@CurrentUser() me: Principal, @Param() p: OrgIdParam, @Body() body: UpdateOrgDto) {
    return this.orgs.updateOrg(me, p.orgId, body);
  }

  @Get(':orgId/members')
  members(@CurrentUser() me: Principal, @Param() p: OrgIdParam, @Query() q: PageQueryDto) {
    return this.orgs.listMembers(me, p.orgId, q.cursor, q.limit);
  }

  @Post(':orgId/members')
  addMember(@CurrentUser() me: Principal, @Param() p: OrgIdParam, @Body() body: AddMemberDto) {
    return this.orgs.addMember(me, p.orgId, body.phone, body.role);
  }

  @Patch(':orgId/members/:userId')
  changeRole(@CurrentUser() me: Principal, @Param() p: MemberParam, @Body() body: UpdateMemberDto) {
    return this.orgs.changeRole(me, p.orgId, p.userId, body.role);
  }

  @Delete(':orgId/members/:userId')
  @HttpCode(204)
  @ApiOperation({
    summary: 'Remove a member (OWNER/ADMIN; any member may leave)',
    description:
      "Ends the member's driver profile in the org, if any: kept for the trips that name it, but from now on it " +
      'posts no pings, sees none of its trips, frees its device id and takes no new trips, at once on every node. ' +
      "The user's sockets leave the org's room and those trips' rooms at once (`room.revoked`). " +
      'Adding them again as a driver resumes the same profile. A role change keeps the driver profile.',
  })
  async removeMember(@CurrentUser() me: Principal, @Param() p: MemberParam): Promise<void> {
    await this.orgs.removeMember(me, p.orgId, p.userId);
  }

  @Get(':orgId/trucks')
  trucks(@CurrentUser() me: Principal, @Param() p: OrgIdParam, @Query() q: PageQueryDto) {
    return this.orgs.listTrucks(me, p.orgId, q.cursor, q.limit);
  }

  @Post(':orgId/trucks')
  @Idempotent()
  addTruck(@CurrentUser() me: Principal, @Param() p: OrgIdParam, @Body() body: CreateTruckDto) {
    return this.orgs.createTruck(me, p.orgId, body);
  }

  @Get(':orgId/drivers')
  drivers(@CurrentUser() me: Principal, @Param() p: OrgIdParam, @Query() q: PageQueryDto) {
    return this.orgs.listDrivers(me, p.orgId, q.cursor, q.limit);
  }

  @Post(':orgId/drivers')
  @ApiOperation({
    summary: 'Add a driver (the user must exist); OWNER/ADMIN',
    description:
      'The answer is the driver profile plus `trackerToken`, the credential a tracking app (Traccar Client, OsmAnd) ' +
      'sends to /tracking/osmand as its device identifier. It is shown only here (and by the tracker-token route), ' +
      'never in any read. `deviceId` is a label for the phone, not a credential.',
  })
  addDriver(@CurrentUser() me: Principal, @Param() p: OrgIdParam, @Body() body: CreateDriverDto) {
    return this.orgs.createDriver(me, p.orgId, body);
  }

  @Post(':orgId/drivers/:driverId/tracker-token')
  @ApiOperation({
    summary: "Issue a driver's new tracker token; the old one stops working at once",
    description:
      'OWNER/ADMIN of the org, or the driver. 201 `{trackerToken}`, shown only in this answer (stored as a hash). ' +
      'A retried request issues yet another token: use the last one received.',
  })
  @ApiCreatedResponse({ type: TrackerTokenDto })
  rotateTrackerToken(@CurrentUser() me: Principal, @Param() p: DriverParam) {
    return this.orgs.rotateTrackerToken(me, p.orgId, p.driverId);
  }
}
