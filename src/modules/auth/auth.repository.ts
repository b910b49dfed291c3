import { Injectable } from '@nestjs/common';
import { Db, SqlTx } from '../../infra/db/db.service';
import { Role } from '../../generated/prisma/client';

export interface UserRecord {
  id: string;
  phone: string | null;
  name: string;
  passwordHash: string;
  createdAt: Date;
}

export interface RefreshTokenRecord {
  id: string;
  familyId: string;
  userId: string;
  expiresAt: Date;
  usedAt: Date | null;
  familyRevokedAt: Date | null;
}

/** A user (without its password hash) and the orgs it belongs to, for GET /me. */
export interface UserWithMemberships {
  id: string;
  phone: string | null;
  name: string;
  createdAt: Date;
  memberships: { orgId: string; role: Role; orgName: string }[];
}

export type RotateResult = 'rotated' | 'reused';

@Injectable()
export class AuthRepository {
  constructor(private readonly db: Db) {}

  createUser(data: { phone: string; name: string; passwordHash: string }): Promise<UserRecord> {
    return this.db.write.user.create({ data });
  }

  findUserByPhone(phone: string): Promise<UserRecord | null> {
    return this.db.write.user.findUnique({ where: { phone } });
  }

  /** Swaps the password hash if it is still `current`; false when it changed meanwhile. */
  async replacePasswordHash(userId: string, current: string, next: string): Promise<boolean> {
    const res = await this.db.write.user.updateMany({
      where: { id: userId, passwordHash: current },
      data: { passwordHash: next },
    });
    return res.count === 1;
  }

  /**
   * The user and the orgs it belongs to (oldest membership first, with the
   * org's name) in one statement, where reads go (read-your-writes holds);
   * null for an unknown user.
   */
  async findUserWithMemberships(id: string): Promise<UserWithMemberships | null> {
    const [row] = await this.db.read.$queryRaw<UserWithMemberships[]>`
      SELECT u.id, u.phone, u.name, u.created_at AS "createdAt",
        COALESCE((
          SELECT json_agg(json_build_object('orgId', m.org_id, 'role', m.role, 'orgName', o.name)
                          ORDER BY m.created_at, m.id)
          FROM memberships m JOIN orgs o ON o.id = m.org_id
          WHERE m.user_id = u.id
        ), '[]'::json) AS memberships
      FROM users u
      WHERE u.id = ${id}::uuid`;
    return row ?? null;
  }

  /** A new login: a token family and its first refresh token. */
  async startFamily(userId: string, tokenHash: string, expiresAt: Date): Promise<string> {
    const family = await this.db.write.refreshTokenFamily.create({
      data: { userId, tokens: { create: { tokenHash, expiresAt } } },
      select: { id: true },
    });
    return family.id;
  }

  async findRefreshToken(tokenHash: string): Promise<RefreshTokenRecord | null> {
    const row = await this.db.write.refreshToken.findUnique({
      where: { tokenHash },
      select: {
        id: true,
        familyId: true,
        expiresAt: true,
        usedAt: true,
        family: { select: { userId: true, revokedAt: true } },
      },
    });
    if (!row) return null;
    return {
      id: row.id,
      familyId: row.familyId,
      expiresAt: row.expiresAt,
      usedAt: row.usedAt,
      userId: row.family.userId,
      familyRevokedAt: row.family.revokedAt,
    };
  }

  /**
   * Marks the token used and issues its successor in one transaction. When
   * the token was used already (a replay), nothing is issued.
   */
  rotate(tokenId: string, familyId: string, nextHash: string, expiresAt: Date): Promise<RotateResult> {
    return this.db.write.$transaction(async (tx) => {
      const used = await tx.refreshToken.updateMany({
        where: { id: tokenId, usedAt: null },
        data: { usedAt: new Date() },
      });
      if (used.count === 0) return 'reused';
      const live = await tx.refreshTokenFamily.count({ where: { id: familyId, revokedAt: null } });
      if (live === 0) return 'reused';
      await tx.refreshToken.create({ data: { familyId, tokenHash: nextHash, expiresAt } });
      return 'rotated';
    });
  }

  /**
   * Inside the caller's SQL transaction, one statement: a user with no phone
   * (so no password login) and its first login family and refresh token.
   */
  async createPhonelessUserIn(
    tx: SqlTx,
    ids: { userId: string; familyId: string; tokenId: string },
    name: string,
    tokenHash: string,
    expiresAt: Date,
  ): Promise<void> {
    await tx.query(
      `WITH u AS (
         INSERT INTO users (id, phone, name, password_hash, updated_at) VALUES ($1::uuid, NULL, $4, '', now()) RETURNING id
       ), f AS (
         INSERT INTO refresh_token_families (id, user_id) SELECT $2::uuid, id FROM u RETURNING id
       )
       INSERT INTO refresh_tokens (id, family_id, token_hash, expires_at) SELECT $3::uuid, id, $5, $6 FROM f`,
      [ids.userId, ids.familyId, ids.tokenId, name, tokenHash, expiresAt],
      'auth-create-phoneless-user',
    );
  }

  /** Inside the caller's SQL transaction: revokes these families (already revoked ones stay as they are). */
  async revokeFamiliesIn(tx: SqlTx, familyIds: readonly string[]): Promise<void> {
    if (familyIds.length === 0) return;
    await tx.query(
      `UPDATE refresh_token_families SET revoked_at = now() WHERE id = ANY($1::uuid[]) AND revoked_at IS NULL`,
      [familyIds],
      'auth-revoke-families-in',
    );
  }

  async revokeFamily(familyId: string): Promise<void> {
    await this.db.write.refreshTokenFamily.updateMany({
      where: { id: familyId, revokedAt: null },
      data: { revokedAt: new Date() },
    });
  }
}
