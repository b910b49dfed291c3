import { Injectable } from '@nestjs/common';
import { Prisma } from '../../generated/prisma/client';
import { Db } from '../../infra/db/db.service';
import { keysetArgs, toPage } from '../../common/pagination/cursor';
import { Page } from '../../common/pagination/page';
import { uuidv7 } from 'uuidv7';
import { decodeSeqCursor, encodeSeqCursor } from './ledger-cursor';

/** The parts of an account that never change after creation. */
export interface AccountKey {
  id: string;
  orgAId: string;
  orgBId: string;
  currency: string;
}

export interface AccountRow extends AccountKey {
  balance: bigint;
  entryCount: number;
  lastPostedAt: Date | null;
  createdAt: Date;
}

/** A posting as `ledger_post` takes it (see its latest migration): the ids are made by the caller. */
interface PostingBase {
  accountId: string;
  /** The acting org. */
  side: string;
  userId: string;
  idempotencyKey: string | null;
  requestHash: string;
  /** This node's clock; the posting's time is the later of it and the account's last posting. */
  now: Date;
  postingId: string;
  /** The entries of org A and org B. */
  entryIds: [string, string];
  /** The outbox events of the acting org and the other org. */
  outboxIds: [string, string];
  /** The posting's memo; a reversal's reason. */
  memo: string | null;
}

export type PostingRequest = PostingBase &
  (
    | {
        kind: 'INVOICE';
        /** The invoice's id. */
        documentId: string;
        invoice: { number: string; amount: number; tripId: string | null; dueDate: string | null };
      }
    | {
        kind: 'PAYMENT';
        /** The payment's id. */
        documentId: string;
        payment: {
          amount: number;
          method: string;
          reference: string | null;
          invoiceId: string | null;
          direction: 'RECEIVED' | 'PAID' | null;
        };
      }
    | {
        kind: 'REVERSAL';
        /** The posting reversed. */
        reversalOf: string;
      }
  );

/** Why `ledger_post` wrote nothing (see its migration for the details each carries). */
export type PostingRefusal =
  | {
      error:
        | 'ACCOUNT_NOT_FOUND'
        | 'IDEMPOTENCY_KEY_REUSED'
        | 'INVOICE_NUMBER_TAKEN'
        | 'INVOICE_NOT_FOUND'
        | 'INVOICE_REVERSED'
        | 'BALANCE_LIMIT_EXCEEDED'
        | 'POSTING_NOT_FOUND'
        | 'NOT_POSTER';
    }
  | { error: 'DIRECTION_MISMATCH'; mustBe: 'RECEIVED' | 'PAID' }
  | { error: 'OVERPAYMENT'; outstanding: number }
  | { error: 'NOT_REVERSIBLE'; reason: 'REVERSAL' | 'INVOICE_HAS_PAYMENTS' }
  | { error: 'ALREADY_REVERSED'; reversalPostingId: string };

/** What `ledger_post` answers: the posting's response (first or replayed), or a refusal. */
export type PostingOutcome = { replayed: boolean; response: unknown; error?: undefined } | PostingRefusal;

export interface EntryRow {
  id: string;
  postingId: string;
  seq: number;
  kind: 'INVOICE' | 'PAYMENT' | 'REVERSAL';
  amount: bigint;
  runningBalance: bigint;
  createdAt: Date;
  memo: string | null;
  document: string | null;
  reversalOfId: string | null;
}

export interface StatementBounds {
  openingBalance: bigint;
  closingBalance: bigint;
  /** Entries of the range are those with firstSeq < seq <= lastSeq. */
  firstSeq: number;
  lastSeq: number;
}

const ENTRY_COLUMNS = Prisma.sql`
  e.id, e.posting_id AS "postingId", e.seq, p.kind::text AS kind, e.amount, e.running_balance AS "runningBalance",
  e.created_at AS "createdAt", p.memo, p.reversal_of_id AS "reversalOfId",
  coalesce(i.number, m.reference) AS document`;
const ENTRY_JOINS = Prisma.sql`
  JOIN ledger_postings p ON p.id = e.posting_id
  LEFT JOIN invoices i ON i.posting_id = e.posting_id
  LEFT JOIN payments m ON m.posting_id = e.posting_id`;

/** A statement streams for as long as the client reads. */
const STREAM_TX = {
  maxWait: 10_000,
  timeout: 3_600_000,
  isolationLevel: Prisma.TransactionIsolationLevel.RepeatableRead,
};

@Injectable()
export class LedgerRepository {
  constructor(private readonly db: Db) {}

  /** Creates the account of the pair, or returns null when it exists already. */
  async createAccount(key: Omit<AccountKey, 'id'>, createdById: string): Promise<AccountRow | null> {
    const rows = await this.db.write.$queryRaw<AccountRow[]>`
      INSERT INTO ledger_accounts (id, org_a_id, org_b_id, currency, created_by_id)
      VALUES (${uuidv7()}::uuid, ${key.orgAId}::uuid, ${key.orgBId}::uuid, ${key.currency}, ${createdById}::uuid)
      ON CONFLICT (org_a_id, org_b_id, currency) DO NOTHING
      RETURNING id, org_a_id AS "orgAId", org_b_id AS "orgBId", currency, balance, entry_count AS "entryCount",
                last_posted_at AS "lastPostedAt", created_at AS "createdAt"`;
    return rows[0] ?? null;
  }

  async findAccountByPair(orgAId: string, orgBId: string, currency: string): Promise<AccountRow | null> {
    return this.db.primary.ledgerAccount.findUnique({
      where: { orgAId_orgBId_currency: { orgAId, orgBId, currency } },
      select: accountSelect,
    });
  }

  /** From the primary: an account just created must be usable at once. */
  findAccountKey(accountId: string): Promise<AccountKey | null> {
    return this.db.primary.ledgerAccount.findUnique({
      where: { id: accountId },
      select: { id: true, orgAId: true, orgBId: true, currency: true },
    });
  }

  findAccount(accountId: string): Promise<AccountRow | null> {
    return this.db.read.ledgerAccount.findUnique({ where: { id: accountId }, select: accountSelect });
  }

  async listAccounts(orgId: string, cursor: string | undefined, limit: number): Promise<Page<AccountRow>> {
    const k = keysetArgs(cursor);
    const rows = await this.db.read.ledgerAccount.findMany({
      where: { AND: [{ OR: [{ orgAId: orgId }, { orgBId: orgId }] }, k.where] },
      orderBy: k.orderBy,
      take: limit + 1,
      select: accountSelect,
    });
    return toPage(rows, limit);
  }

  /** The two orgs of a trip (the ledger links invoices to trips between the account's orgs). */
  async findTripOrgs(tripId: string): Promise<{ sourceOrgId: string; destinationOrgId: string } | null> {
    const rows = await this.db.primary.$queryRaw<{ sourceOrgId: string; destinationOrgId: string }[]>`
      SELECT source_org_id AS "sourceOrgId", destination_org_id AS "destinationOrgId" FROM trips WHERE id = ${tripId}::uuid`;
    return rows[0] ?? null;
  }

  /** The account an entry belongs to (for reversals). */
  async findEntry(entryId: string): Promise<{ accountId: string; postingId: string } | null> {
    return this.db.primary.ledgerEntry.findUnique({
      where: { id: entryId },
      select: { accountId: true, postingId: true },
    });
  }

  /**
   * A posting (invoice, payment or reversal) in one round trip: the
   * `ledger_post` function (latest: migration 20261206140000) locks the
   * account, checks the idempotency key and the rules of its kind, writes the
   * posting, its entries, the document changes and outbox events, and moves
   * the balance, in this statement's transaction.
   */
  async post(req: PostingRequest): Promise<PostingOutcome> {
    const rows = await this.db.primary.$queryRaw<{ outcome: PostingOutcome }[]>`
      SELECT ledger_post(${JSON.stringify(req)}::jsonb) AS outcome`;
    return rows[0].outcome;
  }

  /**
   * Several postings in one statement and one transaction (`ledger_post_many`,
   * migration 20261123150000), outcomes in the order given. The caller sorts
   * them by account so that concurrent batches lock accounts in one order.
   */
  async postMany(reqs: PostingRequest[]): Promise<PostingOutcome[]> {
    const rows = await this.db.primary.$queryRaw<{ outcomes: PostingOutcome[] }[]>`
      SELECT ledger_post_many(${JSON.stringify(reqs)}::jsonb) AS outcomes`;
    return rows[0].outcomes;
  }

  /** One page of a side's entries, oldest first, keyset on (createdAt, seq). */
  async listEntries(
    accountId: string,
    orgId: string,
    range: { from?: Date; to?: Date },
    cursor: string | undefined,
    limit: number,
  ): Promise<Page<EntryRow>> {
    const conds: Prisma.Sql[] = [Prisma.sql`e.account_id = ${accountId}::uuid`, Prisma.sql`e.org_id = ${orgId}::uuid`];
    if (range.from) conds.push(Prisma.sql`e.created_at >= ${range.from}::timestamptz`);
    if (range.to) conds.push(Prisma.sql`e.created_at < ${range.to}::timestamptz`);
    if (cursor) {
      const c = decodeSeqCursor(cursor);
      conds.push(Prisma.sql`(e.created_at, e.seq) > (${c.createdAt}::timestamptz, ${c.seq}::int)`);
    }
    const rows = await this.db.read.$queryRaw<EntryRow[]>`
      SELECT ${ENTRY_COLUMNS} FROM ledger_entries e ${ENTRY_JOINS}
      WHERE ${Prisma.join(conds, ' AND ')}
      ORDER BY e.created_at, e.seq LIMIT ${limit + 1}`;
    const hasMore = rows.length > limit;
    const items = hasMore ? rows.slice(0, limit) : rows;
    const last = items[items.length - 1];
    return new Page(items, hasMore && last ? encodeSeqCursor({ createdAt: last.createdAt, seq: last.seq }) : null);
  }

  /**
   * A statement in one REPEATABLE READ snapshot of the replica: `onBounds` gets
   * the opening and closing balances, then the entries come in batches from a
   * server-side cursor (`onRows` is awaited: backpressure reaches the database).
   * With `maxEntries`, only the bounds are read when the range holds more.
   * `via: 'export'` runs it on the export pool (CSV exports, which stream for
   * as long as their client reads).
   */
  async readStatement(
    accountId: string,
    orgId: string,
    range: { from?: Date; to?: Date },
    onBounds: (b: StatementBounds) => boolean | void,
    onRows: (rows: EntryRow[]) => Promise<void>,
    batchSize = 2000,
    via: 'read' | 'export' = 'read',
  ): Promise<void> {
    const transaction = via === 'export' ? this.db.exportTransaction : this.db.readTransaction;
    await transaction.call(
      this.db,
      async (tx) => {
        const before = range.from
          ? await tx.$queryRaw<{ seq: number; running_balance: bigint }[]>`
            SELECT seq, running_balance FROM ledger_entries
            WHERE account_id = ${accountId}::uuid AND org_id = ${orgId}::uuid AND created_at < ${range.from}::timestamptz
            ORDER BY created_at DESC, seq DESC LIMIT 1`
          : [];
        const until = range.to
          ? await tx.$queryRaw<{ seq: number; running_balance: bigint }[]>`
            SELECT seq, running_balance FROM ledger_entries
            WHERE account_id = ${accountId}::uuid AND org_id = ${orgId}::uuid AND created_at < ${range.to}::timestamptz
            ORDER BY created_at DESC, seq DESC LIMIT 1`
          : await tx.$queryRaw<{ seq: number; running_balance: bigint }[]>`
            SELECT seq, running_balance FROM ledger_entries
            WHERE account_id = ${accountId}::uuid AND org_id = ${orgId}::uuid
            ORDER BY seq DESC LIMIT 1`;
        const first = before[0] ?? { seq: 0, running_balance: 0n };
        const last = until[0] && until[0].seq >= first.seq ? until[0] : first;
        const go = onBounds({
          openingBalance: first.running_balance,
          closingBalance: last.running_balance,
          firstSeq: first.seq,
          lastSeq: last.seq,
        });
        if (go === false || last.seq === first.seq) return;
        await tx.$executeRaw`
        DECLARE statement_cursor NO SCROLL CURSOR FOR
        SELECT ${ENTRY_COLUMNS} FROM ledger_entries e ${ENTRY_JOINS}
        WHERE e.account_id = ${accountId}::uuid AND e.org_id = ${orgId}::uuid
          AND e.seq > ${first.seq}::int AND e.seq <= ${last.seq}::int
        ORDER BY e.seq`;
        for (;;) {
          const rows = await tx.$queryRawUnsafe<EntryRow[]>(`FETCH FORWARD ${batchSize} FROM statement_cursor`);
          if (rows.length === 0) break;
          await onRows(rows);
          if (rows.length < batchSize) break;
        }
        await tx.$executeRawUnsafe('CLOSE statement_cursor');
      },
      STREAM_TX,
    );
  }
}

const accountSelect = {
  id: true,
  orgAId: true,
  orgBId: true,
  currency: true,
  balance: true,
  entryCount: true,
  lastPostedAt: true,
  createdAt: true,
} as const;
