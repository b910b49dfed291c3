import { Inject, Injectable, Logger } from '@nestjs/common';
import { createHash, randomBytes } from 'node:crypto';
import { uuidv7 } from 'uuidv7';
import { AccessTokenService } from '../../common/auth/access-token.service';
import { Principal } from '../../common/auth/principal';
import { SessionRevocations } from '../../common/auth/session-revocations';
import { requestContext } from '../../common/context/request-context';
import { DomainError, NotFoundError, UnauthenticatedError } from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { isUniqueViolation } from '../../common/errors/prisma-errors';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import type { SqlTx } from '../../infra/db/db.service';
import { AuthRepository, UserRecord } from './auth.repository';
import { TokenPair, UserView } from './auth.schemas';
import { PasswordHasher } from './password-hasher';

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * Told of what happens to login families that another feature tracks (access
 * codes: a code session is one family). Awaited before the request is answered.
 */
export interface SessionListener {
  /** A refresh token of the family was rotated: the session is in use. */
  rotated?(familyId: string): Promise<void>;
  /** The family was ended by auth itself (logout, a reused refresh token). */
  ended?(familyId: string): Promise<void>;
}

/** A new user with no phone and its first login, made inside the caller's transaction. */
export interface PhonelessSession {
  userId: string;
  familyId: string;
  refreshToken: string;
}

export function toUserView(u: Omit<UserRecord, 'passwordHash'>): UserView {
  return { id: u.id, phone: u.phone, name: u.name, createdAt: u.createdAt };
}

@Injectable()
export class AuthService {
  private readonly logger = new Logger(AuthService.name);
  private readonly listeners: SessionListener[] = [];

  constructor(
    private readonly repo: AuthRepository,
    private readonly passwords: PasswordHasher,
    private readonly accessTokens: AccessTokenService,
    private readonly revocations: SessionRevocations,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async register(input: { phone: string; name: string; password: string }) {
    const passwordHash = await this.passwords.hash(input.password);
    let user: UserRecord;
    try {
      user = await this.repo.createUser({ phone: input.phone, name: input.name, passwordHash });
    } catch (err) {
      if (isUniqueViolation(err))
        throw new DomainError(ErrorCode.PHONE_TAKEN, 'This phone number is already registered');
      throw err;
    }
    return { user: toUserView(user), ...(await this.startSession(user.id)) };
  }

  async login(input: { phone: string; password: string }) {
    const user = await this.repo.findUserByPhone(input.phone);
    // The same work whether or not the phone exists, so timing reveals nothing.
    const ok = await this.passwords.verify(input.password, user?.passwordHash ?? this.passwords.decoyHash);
    if (!user || !ok) throw new UnauthenticatedError(ErrorCode.INVALID_CREDENTIALS, 'Wrong phone or password');
    if (this.passwords.needsRehash(user.passwordHash)) await this.upgradeHash(user, input.password);
    return { user: toUserView(user), ...(await this.startSession(user.id)) };
  }

  /**
   * Rotates a refresh token. A token presented a second time means it leaked
   * (or a client replayed it): the whole family is revoked.
   */
  async refresh(refreshToken: string): Promise<TokenPair> {
    const record = await this.repo.findRefreshToken(hashToken(refreshToken));
    if (!record || record.familyRevokedAt) {
      throw new UnauthenticatedError(ErrorCode.INVALID_TOKEN, 'The refresh token is not valid');
    }
    if (record.usedAt) return this.revokeReused(record.familyId);
    if (record.expiresAt.getTime() <= Date.now()) {
      throw new UnauthenticatedError(ErrorCode.TOKEN_EXPIRED, 'The refresh token has expired');
    }
    const next = randomBytes(32).toString('base64url');
    const outcome = await this.repo.rotate(record.id, record.familyId, hashToken(next), this.refreshExpiry());
    if (outcome === 'reused') return this.revokeReused(record.familyId);
    for (const l of this.listeners) await l.rotated?.(record.familyId);
    return this.tokenPair({ userId: record.userId, sessionId: record.familyId }, next);
  }

  /**
   * Ends the login the token belongs to. Unknown or already-ended tokens are fine: logout is idempotent,
   * so when the revocation cannot reach Redis after the database has it (a 503), the client's retry completes it.
   */
  async logout(refreshToken: string): Promise<void> {
    const record = await this.repo.findRefreshToken(hashToken(refreshToken));
    if (!record) return;
    await this.repo.revokeFamily(record.familyId);
    await this.sessionEnded(record.familyId);
    await this.revocations.revoke(record.familyId);
  }

  /** Registers a listener of rotations and endings of login families (see SessionListener). */
  onSession(listener: SessionListener): void {
    this.listeners.push(listener);
  }

  /**
   * Inside the caller's SQL transaction: a user with no phone (it can never
   * log in with a password) and its first login family. Access codes make
   * each code session's user this way.
   */
  async createPhonelessSessionIn(tx: SqlTx, name: string): Promise<PhonelessSession> {
    const refreshToken = randomBytes(32).toString('base64url');
    const ids = { userId: uuidv7(), familyId: uuidv7(), tokenId: uuidv7() };
    await this.repo.createPhonelessUserIn(tx, ids, name, hashToken(refreshToken), this.refreshExpiry());
    return { userId: ids.userId, familyId: ids.familyId, refreshToken };
  }

  /** The access and refresh tokens of a session made by createPhonelessSessionIn, once it committed. */
  tokensOf(session: PhonelessSession): TokenPair {
    return this.tokenPair({ userId: session.userId, sessionId: session.familyId }, session.refreshToken);
  }

  /** Inside the caller's SQL transaction: ends these login families in the database (see revokeEverywhere). */
  revokeFamiliesIn(tx: SqlTx, familyIds: readonly string[]): Promise<void> {
    return this.repo.revokeFamiliesIn(tx, familyIds);
  }

  /** Refuses the access tokens of these (already revoked) families on every node, at once. */
  async revokeEverywhere(familyIds: readonly string[]): Promise<void> {
    await Promise.all(familyIds.map((id) => this.revocations.revoke(id)));
  }

  private async sessionEnded(familyId: string): Promise<void> {
    for (const l of this.listeners) await l.ended?.(familyId);
  }

  async me(principal: Principal) {
    const found = await this.repo.findUserWithMemberships(principal.userId);
    if (!found) throw new NotFoundError('User');
    const { memberships, ...user } = found;
    return { user: toUserView(user), memberships };
  }

  findUserByPhone(phone: string): Promise<UserView | null> {
    return this.repo.findUserByPhone(phone).then((u) => (u ? toUserView(u) : null));
  }

  /**
   * Replaces a hash made under weaker parameters, now that the password is at
   * hand. Only if the stored hash is still the one checked (a password change
   * in between wins); a failure leaves the old hash, which still verifies.
   */
  private async upgradeHash(user: UserRecord, password: string): Promise<void> {
    try {
      await this.repo.replacePasswordHash(user.id, user.passwordHash, await this.passwords.hash(password));
    } catch (err) {
      this.logger.warn(`password hash upgrade failed: ${(err as Error).message}`);
    }
  }

  private async revokeReused(familyId: string): Promise<never> {
    await this.repo.revokeFamily(familyId);
    await this.sessionEnded(familyId);
    await this.revocations.revoke(familyId);
    throw new UnauthenticatedError(
      ErrorCode.REFRESH_TOKEN_REUSED,
      'This refresh token was already used; the session has been ended',
    );
  }

  private async startSession(userId: string): Promise<TokenPair> {
    const refreshToken = randomBytes(32).toString('base64url');
    const familyId = await this.repo.startFamily(userId, hashToken(refreshToken), this.refreshExpiry());
    return this.tokenPair({ userId, sessionId: familyId }, refreshToken);
  }

  private tokenPair(principal: Principal, refreshToken: string): TokenPair {
    requestContext.actFor(principal.userId);
    return {
      accessToken: this.accessTokens.sign(principal),
      refreshToken,
      expiresIn: this.config.accessTokenTtlSeconds,
    };
  }

  private refreshExpiry(): Date {
    return new Date(Date.now() + this.config.refreshTokenTtlDays * 86_400_000);
  }
}
