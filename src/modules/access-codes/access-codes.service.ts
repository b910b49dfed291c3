import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { Principal } from '../../common/auth/principal';
import { DomainError, NotFoundError, UnauthenticatedError } from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { Page } from '../../common/pagination/page';
import { Cache, NamedCache } from '../../infra/cache/cache';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { OutboxWriter } from '../../infra/outbox/outbox-writer';
import type { SqlTx } from '../../infra/db/db.service';
import { AuthService } from '../auth/auth.service';
import { ORG_ROLES } from '../orgs/org-roles';
import { OrgsService } from '../orgs/orgs.service';
import { codeStatus, hashAccessCode, isWellFormedAccessCode, loginRefusal, newAccessCode } from './access-code-rules';
import { AccessCodeRecord, AccessCodesRepository, CodeSessionRecord } from './access-codes.repository';
import { AccessCodeView, CodeLoginResult, CodeRole, CodeSessionView, CreatedAccessCodeView } from './access-codes.schemas';

/** Who may manage an org's codes. */
const MANAGE_CODES = ORG_ROLES.manage;

/** What one run of the idle sweep did. */
export interface IdleSweepResult {
  ended: number;
  batches: number;
}

/** A code session as the login answers it and its webhook event carries it (never its tokens). */
function sessionView(s: CodeSessionRecord, code: { orgId: string; role: CodeRole }): CodeSessionView {
  return {
    id: s.id,
    codeId: s.codeId,
    orgId: code.orgId,
    role: code.role,
    userId: s.userId,
    name: s.name,
    deviceId: s.deviceId,
    createdAt: s.createdAt,
  };
}

export function toCodeView(c: AccessCodeRecord, now = new Date()): AccessCodeView {
  return {
    id: c.id,
    orgId: c.orgId,
    label: c.label,
    role: c.role,
    maxSessions: c.maxSessions,
    activeSessions: c.activeSessions,
    expiresAt: c.expiresAt,
    status: codeStatus(c.status, c.expiresAt, now),
    disabledAt: c.disabledAt,
    createdAt: c.createdAt,
  };
}

/**
 * Bulk access codes: a crew shares one code, up to `maxSessions` people are
 * logged in with it at once. A code session is an ordinary user with no phone,
 * one membership (the code's org and role) and its own login family, so every
 * access check, refresh rotation and revocation applies to it unchanged
 * (docs/access-codes.md). The seat count is exact: a login takes a seat with
 * one conditional UPDATE in the transaction that creates the session, and an
 * ended session frees exactly one, once.
 */
/** What a code login needs of a code before its transaction (no seat count: that changes with every login). */
type CodeLookup = Pick<AccessCodeRecord, 'id' | 'orgId' | 'role' | 'maxSessions' | 'status' | 'expiresAt'>;

@Injectable()
export class AccessCodesService implements OnModuleInit {
  /** Code hashes → the code (Cache `access_code`), dropped on every node when the code is disabled. */
  private readonly codes: NamedCache<CodeLookup>;

  constructor(
    private readonly repo: AccessCodesRepository,
    private readonly orgs: OrgsService,
    private readonly auth: AuthService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly outbox: OutboxWriter,
    cache: Cache,
  ) {
    this.codes = cache.define<CodeLookup>({
      name: 'access_code',
      revive: (json) => {
        const c = json as CodeLookup & { expiresAt: string | null };
        return { ...c, expiresAt: c.expiresAt === null ? null : new Date(c.expiresAt) };
      },
    });
  }

  onModuleInit(): void {
    // A code session's family ended by auth itself (logout, a reused refresh token) frees its seat;
    // a refresh marks the session as in use for the idle sweep.
    this.auth.onSession({
      ended: async (familyId) => void (await this.repo.endByFamily(familyId, 'LOGOUT')),
      rotated: (familyId) => this.repo.touchByFamily(familyId),
    });
  }

  async create(
    principal: Principal,
    orgId: string,
    input: { label: string; role: CodeRole; maxSessions: number; expiresAt?: Date },
  ): Promise<CreatedAccessCodeView> {
    await this.orgs.requireRole(principal, orgId, MANAGE_CODES);
    const code = newAccessCode();
    const row = await this.repo.create({
      orgId,
      label: input.label,
      role: input.role,
      maxSessions: input.maxSessions,
      expiresAt: input.expiresAt ?? null,
      codeHash: hashAccessCode(code),
      createdById: principal.userId,
    });
    return { ...toCodeView(row), code };
  }

  async list(
    principal: Principal,
    orgId: string,
    cursor: string | undefined,
    limit: number,
  ): Promise<Page<AccessCodeView>> {
    await this.orgs.requireRole(principal, orgId, MANAGE_CODES);
    const page = await this.repo.list(orgId, cursor, limit);
    const now = new Date();
    return new Page(
      page.items.map((c) => toCodeView(c, now)),
      page.nextCursor,
    );
  }

  /** Disables the code and ends its sessions (their access tokens are refused at once on every node). Idempotent. */
  async disable(principal: Principal, orgId: string, codeId: string): Promise<AccessCodeView> {
    await this.orgs.requireRole(principal, orgId, MANAGE_CODES);
    const result = await this.repo.disable(orgId, codeId, (tx, ids) => this.auth.revokeFamiliesIn(tx, ids));
    if (!result) throw new NotFoundError('Access code');
    if (result.changed) await this.codes.invalidate(result.codeHash);
    await this.auth.revokeEverywhere(result.familyIds);
    const code = await this.repo.find(orgId, codeId);
    if (!code) throw new NotFoundError('Access code');
    return toCodeView(code);
  }

  async login(input: { code: string; name: string; deviceId?: string }): Promise<CodeLoginResult> {
    if (!isWellFormedAccessCode(input.code)) throw invalidCode();
    const hash = hashAccessCode(input.code);
    const code = await this.codes.get(hash, async () => {
      const c = await this.repo.findByHash(hash);
      return (
        c && {
          id: c.id,
          orgId: c.orgId,
          role: c.role,
          maxSessions: c.maxSessions,
          status: c.status,
          expiresAt: c.expiresAt,
        }
      );
    });
    if (!code) throw invalidCode();
    // A cheap refusal first (disabled, expired; the cached code has no seat count); the conditional UPDATE in the
    // transaction is what decides.
    const early = loginRefusal({ ...code, activeSessions: 0 });
    if (early) throw refusal(early);
    const done = await this.repo.login(
      code.id,
      { name: input.name, deviceId: input.deviceId ?? null },
      async (tx) => {
        const session = await this.auth.createPhonelessSessionIn(tx, input.name);
        await this.orgs.addMemberIn(tx, code.orgId, session.userId, code.role);
        return session;
      },
      // The webhook event, in the login's transaction.
      (tx, s) =>
        this.outbox.writeIn(tx, [
          {
            type: 'access_code.login',
            orgId: code.orgId,
            // The session as the login answer shows it (never its tokens).
            data: sessionView(s, code),
          },
        ]),
    );
    if (!done) {
      const now = await this.repo.findByHash(hash);
      throw refusal((now && loginRefusal(now)) ?? 'FULL');
    }
    return {
      session: sessionView(done.session, code),
      ...this.auth.tokensOf(done.prepared),
    };
  }

  /** Ends the session of this refresh token and frees its seat; a second call (or any unknown token) does nothing. */
  logout(refreshToken: string): Promise<void> {
    // auth ends the family and tells this service (onModuleInit), which frees the seat once.
    return this.auth.logout(refreshToken);
  }

  /**
   * Ends sessions not refreshed within ACCESS_CODE_SESSION_IDLE_MS, one
   * statement per batch of ACCESS_CODE_IDLE_BATCH, freeing their seats and
   * ending their login families; their access tokens are refused at once.
   */
  async endIdleSessions(now: Date = new Date()): Promise<IdleSweepResult> {
    const cutoff = new Date(now.getTime() - this.config.accessCodeSessionIdleMs);
    const batch = this.config.accessCodeIdleBatch;
    let ended = 0;
    let batches = 0;
    for (;;) {
      const familyIds = await this.repo.endIdleBatch(cutoff, batch, (tx: SqlTx, ids) =>
        this.auth.revokeFamiliesIn(tx, ids),
      );
      if (familyIds.length === 0) break;
      batches++;
      ended += familyIds.length;
      await this.auth.revokeEverywhere(familyIds);
      if (familyIds.length < batch) break;
    }
    return { ended, batches };
  }
}

const invalidCode = () => new UnauthenticatedError(ErrorCode.INVALID_CODE, 'This access code is not valid');

function refusal(why: 'DISABLED' | 'EXPIRED' | 'FULL'): DomainError {
  if (why === 'DISABLED') return new DomainError(ErrorCode.CODE_DISABLED, 'This access code has been disabled');
  if (why === 'EXPIRED') return new DomainError(ErrorCode.CODE_EXPIRED, 'This access code has expired');
  return new DomainError(ErrorCode.CODE_CAPACITY_REACHED, 'Every session of this access code is in use');
}
