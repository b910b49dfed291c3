import { Injectable, Logger } from '@nestjs/common';
import { Principal } from '../../common/auth/principal';
import { DomainError, ForbiddenError, NotFoundError } from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { isUniqueViolation } from '../../common/errors/prisma-errors';
import { Page } from '../../common/pagination/page';
import { newTrackerToken } from '../../common/auth/tracker-token';
import { RealtimePublisher } from '../../infra/realtime/realtime-publisher';
import { ClusterBus } from '../../infra/redis/cluster-bus';
import { trackerTokenRotated } from '../tracking/tracker-token-cache';
import { AuthService } from '../auth/auth.service';
import { TripsService } from '../trips/trips.service';
import { OrgsRepository } from './orgs.repository';
import { DriverView, MemberView, OrgRole, OrgView, TruckView } from './orgs.schemas';

/** Who may do what inside an org. */
export const ORG_ROLES = {
  any: ['OWNER', 'ADMIN', 'ACCOUNTANT', 'STAFF', 'DRIVER'],
  manage: ['OWNER', 'ADMIN'],
  ledger: ['OWNER', 'ADMIN', 'ACCOUNTANT'],
  operate: ['OWNER', 'ADMIN', 'STAFF'],
} as const satisfies Record<string, readonly OrgRole[]>;

@Injectable()
export class OrgsService {
  constructor(
    private readonly repo: OrgsRepository,
    private readonly auth: AuthService,
    private readonly realtime: RealtimePublisher,
    private readonly trips: TripsService,
    private readonly bus: ClusterBus,
  ) {}

  /**
   * The caller's role in the org, or an error: a non-member gets 404 (the org
   * might as well not exist), a member whose role is not allowed gets 403.
   */
  async requireRole(
    principal: Principal,
    orgId: string,
    allowed: readonly OrgRole[] = ORG_ROLES.any,
  ): Promise<OrgRole> {
    const role = await this.repo.findRole(orgId, principal.userId);
    if (!role) throw new NotFoundError('Org');
    if (!allowed.includes(role)) throw new ForbiddenError();
    return role;
  }

  /** The caller's role in the org, or null when not a member. */
  roleOf(principal: Principal, orgId: string): Promise<OrgRole | null> {
    return this.repo.findRole(orgId, principal.userId);
  }

  createOrg(principal: Principal, data: { name: string; city?: string }): Promise<OrgView> {
    return this.repo.createOrgWithOwner(data, principal.userId);
  }

  async getOrg(principal: Principal, orgId: string): Promise<OrgView> {
    await this.requireRole(principal, orgId);
    const org = await this.repo.findOrg(orgId);
    if (!org) throw new NotFoundError('Org');
    return org;
  }

  async updateOrg(
    principal: Principal,
    orgId: string,
    data: { name?: string; city?: string | null },
  ): Promise<OrgView> {
    await this.requireRole(principal, orgId, ORG_ROLES.manage);
    return this.repo.updateOrg(orgId, data);
  }

  async listMembers(
    principal: Principal,
    orgId: string,
    cursor: string | undefined,
    limit: number,
  ): Promise<Page<MemberView>> {
    await this.requireRole(principal, orgId);
    return this.repo.listMembers(orgId, cursor, limit);
  }

  async addMember(principal: Principal, orgId: string, phone: string, role: OrgRole): Promise<MemberView> {
    const callerRole = await this.requireRole(principal, orgId, ORG_ROLES.manage);
    if (role === 'OWNER' && callerRole !== 'OWNER') throw new ForbiddenError('Only an owner can add an owner');
    const user = await this.auth.findUserByPhone(phone);
    if (!user) throw new DomainError(ErrorCode.USER_NOT_FOUND, 'No registered user has this phone number');
    try {
      return await this.repo.addMember(orgId, user.id, role);
    } catch (err) {
      if (isUniqueViolation(err)) throw new DomainError(ErrorCode.ALREADY_MEMBER, 'This user is already a member');
      throw err;
    }
  }

  async changeRole(principal: Principal, orgId: string, userId: string, role: OrgRole): Promise<MemberView> {
    const callerRole = await this.requireRole(principal, orgId, ORG_ROLES.manage);
    const target = await this.repo.findMember(orgId, userId);
    if (!target) throw new NotFoundError('Member');
    if ((role === 'OWNER' || target.role === 'OWNER') && callerRole !== 'OWNER') {
      throw new ForbiddenError('Only an owner can grant or take away ownership');
    }
    const result = await this.repo.changeRole(orgId, userId, role);
    if (result === null) throw new NotFoundError('Member');
    if (result === 'last-owner') throw new DomainError(ErrorCode.CONFLICT, 'An org must keep at least one owner');
    this.realtime.accessChanged(userId);
    return result;
  }

  /**
   * Removes a member; a driver profile they hold in the org ends with it
   * (their pings and their view of its trips stop at once on every node,
   * their sockets leave the org's and those trips' rooms). A role change, by
   * contrast, keeps a driver profile: any member may hold one (see createDriver).
   */
  async removeMember(principal: Principal, orgId: string, userId: string): Promise<void> {
    const isSelf = userId === principal.userId;
    const callerRole = await this.requireRole(principal, orgId, isSelf ? ORG_ROLES.any : ORG_ROLES.manage);
    const target = await this.repo.findMember(orgId, userId);
    if (!target) throw new NotFoundError('Member');
    if (target.role === 'OWNER' && callerRole !== 'OWNER')
      throw new ForbiddenError('Only an owner can remove an owner');
    const result = await this.repo.removeMember(orgId, userId);
    if (result === null) throw new NotFoundError('Member');
    if (result === 'last-owner') throw new DomainError(ErrorCode.CONFLICT, 'An org must keep at least one owner');
    await this.trips.driverAccessChanged(result.endedDriverIds);
    this.realtime.accessChanged(userId);
  }

  async listTrucks(
    principal: Principal,
    orgId: string,
    cursor: string | undefined,
    limit: number,
  ): Promise<Page<TruckView>> {
    await this.requireRole(principal, orgId);
    return this.repo.listTrucks(orgId, cursor, limit);
  }

  async createTruck(
    principal: Principal,
    orgId: string,
    data: { number: string; type?: string; capacityKg?: number },
  ): Promise<TruckView> {
    await this.requireRole(principal, orgId, ORG_ROLES.manage);
    try {
      return await this.repo.createTruck(orgId, data);
    } catch (err) {
      if (isUniqueViolation(err))
        throw new DomainError(ErrorCode.ALREADY_EXISTS, `Truck ${data.number} already exists in this org`);
      throw err;
    }
  }

  async listDrivers(
    principal: Principal,
    orgId: string,
    cursor: string | undefined,
    limit: number,
  ): Promise<Page<DriverView>> {
    await this.requireRole(principal, orgId);
    return this.repo.listDrivers(orgId, cursor, limit);
  }

  /** A new driver with a first tracker token: this answer is the only one that ever shows it. */
  async createDriver(
    principal: Principal,
    orgId: string,
    data: { phone: string; licenseNo?: string; deviceId?: string },
  ): Promise<DriverView & { trackerToken: string }> {
    await this.requireRole(principal, orgId, ORG_ROLES.manage);
    const user = await this.auth.findUserByPhone(data.phone);
    if (!user) throw new DomainError(ErrorCode.USER_NOT_FOUND, 'No registered user has this phone number');
    const { token, hash } = newTrackerToken();
    try {
      const { driver, resumed } = await this.repo.createDriver(orgId, user.id, {
        licenseNo: data.licenseNo,
        deviceId: data.deviceId,
        trackerTokenHash: hash,
      });
      if (resumed) await this.trips.driverAccessChanged([driver.id]);
      return { ...driver, trackerToken: token };
    } catch (err) {
      if (isUniqueViolation(err, 'device_id') || isUniqueViolation(err, 'deviceId')) {
        throw new DomainError(ErrorCode.ALREADY_EXISTS, 'This deviceId is registered to another driver', [
          { path: 'deviceId', message: 'already registered' },
        ]);
      }
      if (isUniqueViolation(err))
        throw new DomainError(ErrorCode.ALREADY_EXISTS, 'This user is already a driver of this org');
      throw err;
    }
  }

  /**
   * Issues the driver a new tracker token; the old one stops working with
   * this commit, on every node (OsmAnd's per-node copies of token → trip are
   * cleared here and, before this answers, on the other nodes through the
   * cluster bus). OWNER/ADMIN of the driver's org, or the driver.
   */
  async rotateTrackerToken(principal: Principal, orgId: string, driverId: string): Promise<{ trackerToken: string }> {
    const role = await this.requireRole(principal, orgId);
    const driver = await this.repo.findDriver(orgId, driverId);
    if (!driver) throw new NotFoundError('Driver');
    const manages = (ORG_ROLES.manage as readonly OrgRole[]).includes(role);
    if (!manages && driver.userId !== principal.userId) throw new ForbiddenError();
    const { token, hash } = newTrackerToken();
    if (!(await this.repo.setTrackerTokenHash(orgId, driverId, hash))) throw new NotFoundError('Driver');
    await trackerTokenRotated(this.bus, driverId).catch((err: Error) =>
      new Logger(OrgsService.name).warn(
        `rotation of driver ${driverId}'s tracker token not announced to other nodes (they refuse the old token within their cache age): ${err.message}`,
      ),
    );
    return { trackerToken: token };
  }
}
