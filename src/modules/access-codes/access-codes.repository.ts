import { Injectable } from '@nestjs/common';
import { uuidv7 } from 'uuidv7';
import { keysetArgs, toPage } from '../../common/pagination/cursor';
import { Page } from '../../common/pagination/page';
import { Db, SqlTx } from '../../infra/db/db.service';
import type { StoredCodeStatus } from './access-code-rules';
import type { CodeRole } from './access-codes.schemas';

/** A code row as stored (status ACTIVE|DISABLED; EXPIRED is derived). */
export interface AccessCodeRecord {
  id: string;
  orgId: string;
  label: string;
  role: CodeRole;
  maxSessions: number;
  activeSessions: number;
  expiresAt: Date | null;
  status: StoredCodeStatus;
  disabledAt: Date | null;
  createdAt: Date;
}

/** A session row as inserted. */
export interface CodeSessionRecord {
  id: string;
  codeId: string;
  userId: string;
  familyId: string;
  name: string;
  deviceId: string | null;
  createdAt: Date;
}

/** Sessions ended by one statement: their login families. */
export interface EndedSessions {
  familyIds: string[];
}

const codeSelect = {
  id: true,
  orgId: true,
  label: true,
  role: true,
  maxSessions: true,
  activeSessions: true,
  expiresAt: true,
  status: true,
  disabledAt: true,
  createdAt: true,
} as const;

/**
 * Ends the open sessions that `pick` selects (a subquery of ids) and frees
 * exactly their seats, in one statement: a session already ended (by a
 * concurrent logout, sweep or disable) is not picked again by the
 * `ended_at IS NULL` re-check, so no seat is freed twice, and the count never
 * goes below zero (the CHECK would refuse it; GREATEST keeps it there).
 */
const endSessionsSql = (pick: string) => `
  WITH ended AS (
    UPDATE access_code_sessions s SET ended_at = now(), end_reason = $1
    WHERE s.id IN (${pick}) AND s.ended_at IS NULL
    RETURNING s.code_id, s.family_id
  ), freed AS (
    UPDATE access_codes c SET active_sessions = GREATEST(c.active_sessions - n.n, 0)
    FROM (SELECT code_id, count(*)::int AS n FROM ended GROUP BY code_id) n
    WHERE c.id = n.code_id
  )
  SELECT family_id::text FROM ended`;

@Injectable()
export class AccessCodesRepository {
  constructor(private readonly db: Db) {}

  async create(data: {
    orgId: string;
    label: string;
    role: CodeRole;
    maxSessions: number;
    expiresAt: Date | null;
    codeHash: string;
    createdById: string;
  }): Promise<AccessCodeRecord> {
    return (await this.db.write.accessCode.create({ data, select: codeSelect })) as AccessCodeRecord;
  }

  /** A page of the org's codes, newest first: one query (the seat count is a column of the code). */
  async list(orgId: string, cursor: string | undefined, limit: number): Promise<Page<AccessCodeRecord>> {
    const k = keysetArgs(cursor);
    const rows = await this.db.read.accessCode.findMany({
      where: { orgId, ...k.where },
      orderBy: k.orderBy,
      take: limit + 1,
      select: codeSelect,
    });
    return toPage(rows as AccessCodeRecord[], limit);
  }

  async find(orgId: string, codeId: string): Promise<AccessCodeRecord | null> {
    return (await this.db.primary.accessCode.findFirst({
      where: { id: codeId, orgId },
      select: codeSelect,
    })) as AccessCodeRecord | null;
  }

  async findByHash(codeHash: string): Promise<AccessCodeRecord | null> {
    return (await this.db.primary.accessCode.findUnique({
      where: { codeHash },
      select: codeSelect,
    })) as AccessCodeRecord | null;
  }

  /**
   * One login, in one transaction: `prepare` writes the session's user,
   * membership and login family; then the session row; then the one
   * conditional UPDATE that takes a seat. Taking the seat last keeps the code's
   * row locked only from that UPDATE to the commit. No seat (full, disabled,
   * expired meanwhile): everything rolls back and null is returned.
   */
  async login<T extends { userId: string; familyId: string }>(
    codeId: string,
    session: { name: string; deviceId: string | null },
    prepare: (tx: SqlTx) => Promise<T>,
    inTransaction?: (tx: SqlTx, session: CodeSessionRecord) => Promise<void>,
  ): Promise<{ prepared: T; session: CodeSessionRecord } | null> {
    try {
      return await this.db.sqlTransaction(async (tx) => {
        const prepared = await prepare(tx);
        const [row] = await tx.query<CodeSessionRecord>(
          `INSERT INTO access_code_sessions (id, code_id, user_id, family_id, name, device_id)
           VALUES ($1::uuid, $2::uuid, $3::uuid, $4::uuid, $5, $6)
           RETURNING id::text, code_id::text AS "codeId", user_id::text AS "userId", family_id::text AS "familyId",
                     name, device_id AS "deviceId", created_at AS "createdAt"`,
          [uuidv7(), codeId, prepared.userId, prepared.familyId, session.name, session.deviceId],
          'access-code-session-insert',
        );
        const seat = await tx.query(
          `UPDATE access_codes SET active_sessions = active_sessions + 1
           WHERE id = $1::uuid AND status = 'ACTIVE' AND (expires_at IS NULL OR expires_at > now())
             AND active_sessions < max_sessions
           RETURNING id`,
          [codeId],
          'access-code-take-seat',
        );
        if (seat.length === 0) throw NO_SEAT;
        await inTransaction?.(tx, row);
        return { prepared, session: row };
      });
    } catch (err) {
      if (err === NO_SEAT) return null;
      throw err;
    }
  }

  /** Ends the open session of this login family, if any, freeing its seat: the family ids ended (0 or 1). */
  async endByFamily(familyId: string, reason: string): Promise<string[]> {
    const rows = await this.db.sql<{ family_id: string }>(
      endSessionsSql(`SELECT id FROM access_code_sessions WHERE family_id = $2::uuid`),
      [reason, familyId],
      'access-code-end-by-family',
    );
    return rows.map((r) => r.family_id);
  }

  /**
   * Disables the code and ends its open sessions in one transaction, and in it
   * `revoke` ends their login families. The UPDATE of the code waits for a
   * login holding its row, so the sessions statement after it sees that login's
   * session. Null when there is no such code in the org; `changed` false when
   * it was disabled already (nothing is done).
   */
  async disable(
    orgId: string,
    codeId: string,
    revoke: (tx: SqlTx, familyIds: string[]) => Promise<void>,
  ): Promise<{ changed: boolean; familyIds: string[]; codeHash: string } | null> {
    return this.db.sqlTransaction(async (tx) => {
      const [code] = await tx.query<{ status: StoredCodeStatus; code_hash: string }>(
        `SELECT status, code_hash FROM access_codes WHERE id = $1::uuid AND org_id = $2::uuid FOR NO KEY UPDATE`,
        [codeId, orgId],
      );
      if (!code) return null;
      if (code.status === 'DISABLED') return { changed: false, familyIds: [], codeHash: code.code_hash };
      await tx.query(`UPDATE access_codes SET status = 'DISABLED', disabled_at = now() WHERE id = $1::uuid`, [codeId]);
      const ended = await tx.query<{ family_id: string }>(
        endSessionsSql(`SELECT id FROM access_code_sessions WHERE code_id = $2::uuid AND ended_at IS NULL`),
        ['DISABLED', codeId],
      );
      const familyIds = ended.map((r) => r.family_id);
      await revoke(tx, familyIds);
      return { changed: true, familyIds, codeHash: code.code_hash };
    });
  }

  /**
   * One batch of the idle sweep, one statement: ends up to `limit` open sessions
   * last seen before `cutoff` (rows another transaction holds are skipped, the
   * next run takes them) and frees their seats; `revoke` ends their login
   * families in the same transaction.
   */
  endIdleBatch(
    cutoff: Date,
    limit: number,
    revoke: (tx: SqlTx, familyIds: string[]) => Promise<void>,
  ): Promise<string[]> {
    return this.db.sqlTransaction(async (tx) => {
      const ended = await tx.query<{ family_id: string }>(
        endSessionsSql(
          `SELECT id FROM access_code_sessions WHERE ended_at IS NULL AND last_seen_at < $2
           ORDER BY last_seen_at LIMIT $3 FOR UPDATE SKIP LOCKED`,
        ),
        ['IDLE', cutoff, limit],
        'access-code-end-idle',
      );
      const familyIds = ended.map((r) => r.family_id);
      await revoke(tx, familyIds);
      return familyIds;
    });
  }

  /** The session of this login family was used (a refresh): it is not idle. */
  async touchByFamily(familyId: string): Promise<void> {
    await this.db.sql(
      `UPDATE access_code_sessions SET last_seen_at = now() WHERE family_id = $1::uuid AND ended_at IS NULL`,
      [familyId],
      'access-code-touch',
    );
  }
}

const NO_SEAT = new Error('no seat');
