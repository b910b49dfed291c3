import { Injectable } from '@nestjs/common';
import { keysetArgs, toPage } from '../../common/pagination/cursor';
import { Page } from '../../common/pagination/page';
import { uuidv7 } from 'uuidv7';
import { Db, DbTx, SqlTx } from '../../infra/db/db.service';
import { OrgRole } from './org-roles';
import { DriverView, MemberView, OrgView, TruckView } from './orgs.schemas';

const memberSelect = {
  id: true,
  orgId: true,
  userId: true,
  role: true,
  createdAt: true,
  user: { select: { id: true, name: true, phone: true } },
} as const;

const driverSelect = {
  id: true,
  orgId: true,
  userId: true,
  licenseNo: true,
  deviceId: true,
  createdAt: true,
  user: { select: { name: true, phone: true } },
} as const;

type DriverRow = {
  id: string;
  orgId: string;
  userId: string;
  licenseNo: string | null;
  deviceId: string | null;
  createdAt: Date;
  user: { name: string; phone: string | null };
};

function toDriverView(row: DriverRow): DriverView {
  const { user, ...rest } = row;
  return { ...rest, name: user.name, phone: user.phone };
}

@Injectable()
export class OrgsRepository {
  constructor(private readonly db: Db) {}

  /** Every membership of the user (org, role), read from the primary like every access check. */
  membershipsOf(userId: string): Promise<{ orgId: string; role: OrgRole }[]> {
    return this.db.primary.membership.findMany({ where: { userId }, select: { orgId: true, role: true } });
  }

  /** Which of these orgs exist. */
  async existingOrgIds(orgIds: readonly string[]): Promise<string[]> {
    if (orgIds.length === 0) return [];
    const rows = await this.db.primary.org.findMany({ where: { id: { in: [...orgIds] } }, select: { id: true } });
    return rows.map((r) => r.id);
  }

  createOrgWithOwner(data: { name: string; city?: string }, ownerId: string): Promise<OrgView> {
    return this.db.write.org.create({
      data: { ...data, memberships: { create: { userId: ownerId, role: 'OWNER' } } },
    });
  }

  /** The org; `fromPrimary` for a value that will be cached (a replica may lag a write just invalidated). */
  findOrg(orgId: string, fromPrimary = false): Promise<OrgView | null> {
    return (fromPrimary ? this.db.primary : this.db.read).org.findUnique({ where: { id: orgId } });
  }

  updateOrg(orgId: string, data: { name?: string; city?: string | null }): Promise<OrgView> {
    return this.db.write.org.update({ where: { id: orgId }, data });
  }

  async listMembers(orgId: string, cursor: string | undefined, limit: number): Promise<Page<MemberView>> {
    const k = keysetArgs(cursor);
    const rows = await this.db.read.membership.findMany({
      // A code session's user (no phone) is a member for access checks, not a person on the list.
      where: { orgId, user: { phone: { not: null } }, ...k.where },
      orderBy: k.orderBy,
      take: limit + 1,
      select: memberSelect,
    });
    return toPage(rows, limit);
  }

  /** Inside the caller's SQL transaction: a membership row (a code session's single membership). */
  async addMemberIn(tx: SqlTx, orgId: string, userId: string, role: OrgRole): Promise<void> {
    await tx.query(
      `INSERT INTO memberships (id, org_id, user_id, role) VALUES ($1::uuid, $2::uuid, $3::uuid, $4::role)`,
      [uuidv7(), orgId, userId, role],
      'orgs-add-member-in',
    );
  }

  addMember(orgId: string, userId: string, role: OrgRole): Promise<MemberView> {
    return this.db.write.membership.create({ data: { orgId, userId, role }, select: memberSelect });
  }

  findMember(orgId: string, userId: string): Promise<MemberView | null> {
    return this.db.primary.membership.findUnique({ where: { orgId_userId: { orgId, userId } }, select: memberSelect });
  }

  /** Changes a role, refusing (null) when it would leave the org without an owner. */
  changeRole(orgId: string, userId: string, role: OrgRole): Promise<MemberView | 'last-owner' | null> {
    return this.db.write.$transaction(async (tx) => {
      // Lock the org's owners so two demotions cannot both pass the check.
      const owners = await tx.$queryRaw<{ user_id: string }[]>`
        SELECT user_id FROM memberships WHERE org_id = ${orgId}::uuid AND role = 'OWNER' FOR UPDATE`;
      const member = await tx.membership.findUnique({ where: { orgId_userId: { orgId, userId } } });
      if (!member) return null;
      if (member.role === 'OWNER' && role !== 'OWNER' && owners.length <= 1) return 'last-owner';
      return tx.membership.update({ where: { id: member.id }, data: { role }, select: memberSelect });
    });
  }

  /**
   * Removes a member, refusing when it would leave the org without an owner.
   * Their driver profile in the org, if any, ends with the membership, in the
   * same transaction: the row stays (trips keep naming their driver), marked
   * removed, its device id freed. Returns the ended profiles' ids.
   */
  removeMember(orgId: string, userId: string): Promise<{ endedDriverIds: string[] } | 'last-owner' | null> {
    return this.db.write.$transaction(async (tx) => {
      const owners = await tx.$queryRaw<{ user_id: string }[]>`
        SELECT user_id FROM memberships WHERE org_id = ${orgId}::uuid AND role = 'OWNER' FOR UPDATE`;
      const member = await tx.membership.findUnique({ where: { orgId_userId: { orgId, userId } } });
      if (!member) return null;
      if (member.role === 'OWNER' && owners.length <= 1) return 'last-owner';
      await tx.membership.delete({ where: { id: member.id } });
      const ended = await tx.$queryRaw<{ id: string }[]>`
        UPDATE driver_profiles SET removed_at = now(), device_id = NULL, tracker_token_hash = NULL
        WHERE org_id = ${orgId}::uuid AND user_id = ${userId}::uuid AND removed_at IS NULL
        RETURNING id::text`;
      return { endedDriverIds: ended.map((r) => r.id) };
    });
  }

  async listTrucks(orgId: string, cursor: string | undefined, limit: number): Promise<Page<TruckView>> {
    const k = keysetArgs(cursor);
    const rows = await this.db.read.truck.findMany({
      where: { orgId, ...k.where },
      orderBy: k.orderBy,
      take: limit + 1,
    });
    return toPage(rows, limit);
  }

  createTruck(orgId: string, data: { number: string; type?: string; capacityKg?: number }): Promise<TruckView> {
    return this.db.write.truck.create({ data: { orgId, ...data } });
  }

  async listDrivers(orgId: string, cursor: string | undefined, limit: number): Promise<Page<DriverView>> {
    const k = keysetArgs(cursor);
    const rows = await this.db.read.driverProfile.findMany({
      where: { orgId, removedAt: null, ...k.where },
      orderBy: k.orderBy,
      take: limit + 1,
      select: driverSelect,
    });
    return toPage(rows, limit).map(toDriverView);
  }

  /**
   * A driver profile with the digest of its first tracker token, and a DRIVER
   * membership when the user is not yet a member. A profile the user had
   * before leaving the org resumes (same id, so their past trips are theirs
   * again) with the new licence, device and token.
   */
  createDriver(
    orgId: string,
    userId: string,
    data: { licenseNo?: string; deviceId?: string; trackerTokenHash: string },
  ): Promise<{ driver: DriverView; resumed: boolean }> {
    return this.db.write.$transaction(async (tx) => {
      await tx.membership.upsert({
        where: { orgId_userId: { orgId, userId } },
        create: { orgId, userId, role: 'DRIVER' },
        update: {},
      });
      const resumed = await tx.driverProfile.updateManyAndReturn({
        where: { orgId, userId, removedAt: { not: null } },
        data: {
          removedAt: null,
          licenseNo: data.licenseNo ?? null,
          deviceId: data.deviceId ?? null,
          trackerTokenHash: data.trackerTokenHash,
        },
        select: { id: true },
      });
      const row = resumed.length
        ? await tx.driverProfile.findUniqueOrThrow({ where: { id: resumed[0].id }, select: driverSelect })
        : await tx.driverProfile.create({ data: { orgId, userId, ...data }, select: driverSelect });
      return { driver: toDriverView(row), resumed: resumed.length > 0 };
    });
  }

  /** A driver profile of this org (its id and user), read from the primary: access checks never lag. */
  findDriver(orgId: string, driverId: string): Promise<{ id: string; userId: string } | null> {
    return this.db.primary.driverProfile.findFirst({
      where: { id: driverId, orgId, removedAt: null },
      select: { id: true, userId: true },
    });
  }

  /** A driver profile of any org, ended or not (ended: its user left the org), read from the primary. */
  async findDriverById(
    driverId: string,
  ): Promise<{ id: string; orgId: string; userId: string; ended: boolean } | null> {
    const row = await this.db.primary.driverProfile.findUnique({
      where: { id: driverId },
      select: { id: true, orgId: true, userId: true, removedAt: true },
    });
    if (!row) return null;
    const { removedAt, ...rest } = row;
    return { ...rest, ended: removedAt !== null };
  }

  /** The ids of the user's driver profiles that have not ended. */
  async activeDriverIdsOf(userId: string): Promise<string[]> {
    const rows = await this.db.primary.driverProfile.findMany({
      where: { userId, removedAt: null },
      select: { id: true },
    });
    return rows.map((r) => r.id);
  }

  /** The driver profile (not ended) whose tracker token has this digest, read from the primary. */
  findDriverByTrackerToken(trackerTokenHash: string): Promise<{ id: string } | null> {
    return this.db.primary.driverProfile.findFirst({
      where: { trackerTokenHash, removedAt: null },
      select: { id: true },
    });
  }

  findTruckOrg(truckId: string): Promise<{ orgId: string } | null> {
    return this.db.primary.truck.findUnique({ where: { id: truckId }, select: { orgId: true } });
  }

  /**
   * Inside the caller's transaction: share-locks the driver profile if it has
   * not ended (true) until that transaction ends, so a concurrent removal
   * from the org waits for it. False when it has ended or does not exist.
   */
  async shareLockActiveDriver(tx: DbTx, driverId: string): Promise<boolean> {
    const rows = await tx.$queryRaw<{ id: string }[]>`
      SELECT id::text FROM driver_profiles
      WHERE id = ${driverId}::uuid AND removed_at IS NULL FOR SHARE`;
    return rows.length > 0;
  }

  /**
   * Inside the caller's transaction: locks the driver profile and the truck
   * rows (FOR UPDATE, driver first) until that transaction ends, so that two
   * transactions giving the same driver or truck work serialize.
   */
  async lockDriverAndTruck(tx: DbTx, driverId: string, truckId: string): Promise<void> {
    await tx.$queryRaw`SELECT id FROM driver_profiles WHERE id = ${driverId}::uuid FOR UPDATE`;
    await tx.$queryRaw`SELECT id FROM trucks WHERE id = ${truckId}::uuid FOR UPDATE`;
  }

  /** Replaces the driver's tracker token digest: the old token stops matching with this commit. */
  async setTrackerTokenHash(orgId: string, driverId: string, trackerTokenHash: string): Promise<boolean> {
    const { count } = await this.db.write.driverProfile.updateMany({
      where: { id: driverId, orgId, removedAt: null },
      data: { trackerTokenHash },
    });
    return count === 1;
  }
}
