import { Injectable, Logger } from '@nestjs/common';
import { Principal } from '../../common/auth/principal';
import { DomainError, ForbiddenError, NotFoundError } from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { isUniqueViolation } from '../../common/errors/prisma-errors';
import { Page } from '../../common/pagination/page';
import { newTrackerToken } from '../../common/auth/tracker-token';
import type { DbTx, SqlTx } from '../../infra/db/db.service';
import { Cache, NamedCache } from '../../infra/cache/cache';
import { RealtimePublisher } from '../../infra/realtime/realtime-publisher';
import { ClusterBus } from '../../infra/redis/cluster-bus';
import { AuthService } from '../auth/auth.service';
import { ORG_ROLES, OrgRole, roleIn } from './org-roles';
import { OrgsRepository } from './orgs.repository';
import { DriverView, MemberView, OrgView, TruckView } from './orgs.schemas';

/** Cluster-bus topic: a driver's tracker token was rotated (the driver profile's id); OsmAnd's remembered answers go. */
export const TRACKER_TOKEN_ROTATED_TOPIC = 'tracker-token';

/** Told of driver profiles that ended (their user left the org) or resumed; awaited before the change is answered. */
export type DriverAccessListener = (driverIds: readonly string[]) => Promise<void>;

/** A driver profile as other features see it. */
export interface DriverRef {
  id: string;
  orgId: string;
  userId: string;
  /** The profile ended: its user left the org (the row stays, trips keep naming it). */
  ended: boolean;
}

/**
 * Orgs, their members and roles, trucks and drivers. The one owner of those
 * tables: other features ask here (roles, a truck's org, a driver) rather
 * than reading them.
 */
type Membership = { orgId: string; role: OrgRole };

@Injectable()
export class OrgsService {
  private readonly driverAccessListeners: DriverAccessListener[] = [];
  /**
   * A user's memberships (every org, with the role), asked by every access
   * check: cached, dropped on every node once a write that adds, changes or
   * removes one of them commits.
   */
  private readonly memberships: NamedCache<Membership[]>;
  /** Orgs by id (detail, and the name public pages show): dropped when the org is updated. */
  private readonly orgs: NamedCache<OrgView>;
  /** Driver profiles by id (DriverRef): dropped when the profile ends or resumes. */
  private readonly drivers: NamedCache<DriverRef>;

  constructor(
    private readonly repo: OrgsRepository,
    private readonly auth: AuthService,
    private readonly realtime: RealtimePublisher,
    private readonly bus: ClusterBus,
    cache: Cache,
  ) {
    this.memberships = cache.define<Membership[]>({ name: 'member_roles' });
    this.orgs = cache.define<OrgView>({
      name: 'org',
      revive: (o) => {
        const org = o as OrgView;
        return { ...org, createdAt: new Date(org.createdAt), updatedAt: new Date(org.updatedAt) };
      },
    });
    this.drivers = cache.define<DriverRef>({ name: 'driver' });
  }

  /** The user's memberships, through the cache (loaded from the primary). */
  private membershipsCached(userId: string): Promise<Membership[]> {
    return this.memberships.get(userId, () => this.repo.membershipsOf(userId)).then((m) => m ?? []);
  }

  private orgCached(orgId: string): Promise<OrgView | null> {
    return this.orgs.get(orgId, () => this.repo.findOrg(orgId, true));
  }

  /**
   * The caller's role in the org, or an error: a non-member gets 404 (the org
   * might as well not exist), a member whose role is not allowed gets 403.
   */
  async requireRole(
    principal: Principal,
    orgId: string,
    allowed: readonly OrgRole[] = ORG_ROLES.any,
  ): Promise<OrgRole> {
    const role = await this.roleOf(principal, orgId);
    if (!role) throw new NotFoundError('Org');
    if (!allowed.includes(role)) throw new ForbiddenError();
    return role;
  }

  /** The caller's role in the org, or null when not a member. */
  async roleOf(principal: Principal, orgId: string): Promise<OrgRole | null> {
    return (await this.membershipsCached(principal.userId)).find((m) => m.orgId === orgId)?.role ?? null;
  }

  // ---- for other features ----

  /** An org's display name (null: no such org), for public pages that show it without a caller. */
  async orgName(orgId: string): Promise<string | null> {
    return (await this.orgCached(orgId))?.name ?? null;
  }

  /**
   * The user's roles in these orgs, by org id (absent: not a member): from
   * the user's cached memberships (loaded from the primary, dropped on every
   * node when a membership write commits).
   */
  async rolesOf(userId: string, orgIds: readonly string[]): Promise<Map<string, OrgRole>> {
    const roles = new Map<string, OrgRole>();
    if (orgIds.length === 0) return roles;
    for (const m of await this.membershipsCached(userId)) if (orgIds.includes(m.orgId)) roles.set(m.orgId, m.role);
    return roles;
  }

  /** Every org the user is a member of, with their role there (cached like rolesOf). */
  async membershipsOf(userId: string): Promise<{ orgId: string; role: OrgRole }[]> {
    return [...(await this.membershipsCached(userId))];
  }

  /** Which of these orgs exist. */
  existingOrgIds(orgIds: readonly string[]): Promise<string[]> {
    return this.repo.existingOrgIds([...new Set(orgIds)]);
  }

  /** The org of a truck, or null when there is no such truck. */
  findTruckOrg(truckId: string): Promise<{ orgId: string } | null> {
    return this.repo.findTruckOrg(truckId);
  }

  /** A driver profile of any org, ended or not, from the primary. */
  findDriver(driverId: string): Promise<DriverRef | null> {
    return this.drivers.get(driverId, () => this.repo.findDriverById(driverId));
  }

  /** The ids of the user's driver profiles that have not ended. */
  activeDriverIdsOf(userId: string): Promise<string[]> {
    return this.repo.activeDriverIdsOf(userId);
  }

  /** The driver profile (not ended) whose tracker token has this digest (see hashTrackerToken). */
  findDriverByTrackerToken(trackerTokenHash: string): Promise<{ id: string } | null> {
    return this.repo.findDriverByTrackerToken(trackerTokenHash);
  }

  /**
   * Inside the caller's transaction: true, with the driver profile
   * share-locked until it ends, when the profile has not ended; a concurrent
   * removal from the org waits for that transaction and then ends it.
   */
  lockActiveDriver(tx: DbTx, driverId: string): Promise<boolean> {
    return this.repo.shareLockActiveDriver(tx, driverId);
  }

  /** Inside the caller's transaction: locks the driver profile and the truck until it ends (their work serializes). */
  lockDriverAndTruck(tx: DbTx, driverId: string, truckId: string): Promise<void> {
    return this.repo.lockDriverAndTruck(tx, driverId, truckId);
  }

  /**
   * Inside the caller's SQL transaction: makes the user a member with this
   * role. Access codes give each code session's user its one membership this
   * way, so every role check answers for it as for any member.
   */
  async addMemberIn(tx: SqlTx, orgId: string, userId: string, role: OrgRole): Promise<void> {
    await this.repo.addMemberIn(tx, orgId, userId, role);
    tx.afterCommit(() => void this.memberships.invalidate(userId));
  }

  /** Registers a listener told of driver profiles that ended or resumed (see DriverAccessListener). */
  onDriverAccessChanged(listener: DriverAccessListener): void {
    this.driverAccessListeners.push(listener);
  }

  private async driverAccessChanged(driverIds: readonly string[]): Promise<void> {
    if (driverIds.length === 0) return;
    await this.drivers.invalidate(...driverIds);
    await Promise.all(this.driverAccessListeners.map((listener) => listener(driverIds)));
  }

  // ---- HTTP ----

  async createOrg(principal: Principal, data: { name: string; city?: string }): Promise<OrgView> {
    const org = await this.repo.createOrgWithOwner(data, principal.userId);
    await this.memberships.invalidate(principal.userId);
    return org;
  }

  async getOrg(principal: Principal, orgId: string): Promise<OrgView> {
    await this.requireRole(principal, orgId);
    const org = await this.orgCached(orgId);
    if (!org) throw new NotFoundError('Org');
    return org;
  }

  async updateOrg(
    principal: Principal,
    orgId: string,
    data: { name?: string; city?: string | null },
  ): Promise<OrgView> {
    await this.requireRole(principal, orgId, ORG_ROLES.manage);
    const org = await this.repo.updateOrg(orgId, data);
    await this.orgs.invalidate(orgId);
    return org;
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
      const member = await this.repo.addMember(orgId, user.id, role);
      await this.memberships.invalidate(user.id);
      return member;
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
    if (result !== null && result !== 'last-owner') await this.memberships.invalidate(userId);
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
    if (result !== null && result !== 'last-owner') await this.memberships.invalidate(userId);
    if (result === null) throw new NotFoundError('Member');
    if (result === 'last-owner') throw new DomainError(ErrorCode.CONFLICT, 'An org must keep at least one owner');
    await this.driverAccessChanged(result.endedDriverIds);
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
      if (resumed) await this.driverAccessChanged([driver.id]);
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
    const manages = roleIn(role, ORG_ROLES.manage);
    if (!manages && driver.userId !== principal.userId) throw new ForbiddenError();
    const { token, hash } = newTrackerToken();
    if (!(await this.repo.setTrackerTokenHash(orgId, driverId, hash))) throw new NotFoundError('Driver');
    await this.bus
      .announce(TRACKER_TOKEN_ROTATED_TOPIC, driverId)
      .catch((err: Error) =>
        new Logger(OrgsService.name).warn(
          `rotation of driver ${driverId}'s tracker token not announced to other nodes (they refuse the old token within their cache age): ${err.message}`,
        ),
      );
    return { trackerToken: token };
  }
}
