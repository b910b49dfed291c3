import { Injectable } from '@nestjs/common';
import { Prisma } from '../../generated/prisma/client';
import { Db, DbTx } from '../../infra/db/db.service';
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

export interface StoredPosting {
  requestHash: string;
  response: unknown;
}

export interface InvoiceRow {
  id: string;
  accountId: string;
  issuerOrgId: string;
  number: string;
  amount: bigint;
  amountPaid: bigint;
  status: 'OPEN' | 'PARTIALLY_PAID' | 'PAID' | 'REVERSED';
}

export interface PostingForReversal {
  id: string;
  kind: 'INVOICE' | 'PAYMENT' | 'REVERSAL';
  postedByOrgId: string;
  reversedById: string | null;
  response: unknown;
  entries: { orgId: string; amount: bigint }[];
  invoice: InvoiceRow | null;
  payment: { id: string; amount: bigint; invoiceId: string | null } | null;
}

export interface NewEntry {
  id: string;
  orgId: string;
  amount: bigint;
  runningBalance: bigint;
}

/** Everything one posting writes, decided by the service under the account lock. */
export interface PostingPlan {
  postingId: string;
  kind: 'INVOICE' | 'PAYMENT' | 'REVERSAL';
  postedByOrgId: string;
  postedByUserId: string;
  reversalOfId: string | null;
  memo: string | null;
  idempotencyKey: string | null;
  requestHash: string;
  response: unknown;
  createdAt: Date;
  entries: NewEntry[];
  /** The account's balance from org A's view after this posting. */
  newBalance: bigint;
  invoice?: {
    id: string;
    issuerOrgId: string;
    number: string;
    amount: bigint;
    tripId: string | null;
    dueDate: string | null;
    memo: string | null;
  };
  payment?: {
    id: string;
    payerOrgId: string;
    payeeOrgId: string;
    amount: bigint;
    method: string;
    reference: string | null;
    invoiceId: string | null;
    memo: string | null;
  };
  invoiceUpdate?: { id: string; amountPaid: bigint; status: InvoiceRow['status'] };
  paymentReversed?: string;
  outbox: { id: string; type: string; orgId: string; data: unknown }[];
}

/** An invoice or payment posting as `ledger_post` takes it: the ids are made by the caller. */
export interface PostingRequest {
  kind: 'INVOICE' | 'PAYMENT';
  accountId: string;
  /** The acting org. */
  side: string;
  userId: string;
  idempotencyKey: string | null;
  requestHash: string;
  /** This node's clock; the posting's time is the later of it and the account's last posting. */
  now: Date;
  postingId: string;
  /** The invoice's or payment's id. */
  documentId: string;
  /** The entries of org A and org B. */
  entryIds: [string, string];
  /** The outbox events of the acting org and the other org. */
  outboxIds: [string, string];
  memo: string | null;
  invoice?: { number: string; amount: number; tripId: string | null; dueDate: string | null };
  payment?: {
    amount: number;
    method: string;
    reference: string | null;
    invoiceId: string | null;
    direction: 'RECEIVED' | 'PAID' | null;
  };
}

/** Why `ledger_post` wrote nothing (see its migration for the details each carries). */
export type PostingRefusal =
  | {
      error:
        | 'ACCOUNT_NOT_FOUND'
        | 'IDEMPOTENCY_KEY_REUSED'
        | 'INVOICE_NUMBER_TAKEN'
        | 'INVOICE_NOT_FOUND'
        | 'INVOICE_REVERSED'
        | 'BALANCE_LIMIT_EXCEEDED';
    }
  | { error: 'DIRECTION_MISMATCH'; mustBe: 'RECEIVED' | 'PAID' }
  | { error: 'OVERPAYMENT'; outstanding: number };

/** What `ledger_post` answers: the posting's response (first or replayed), or a refusal. */
export type PostingOutcome = { replayed: boolean; response: unknown; error?: undefined } | PostingRefusal;

/** The account row locked for one posting transaction, with the reads a posting needs. */
export class LockedAccount {
  constructor(
    private readonly tx: DbTx,
    readonly account: AccountRow,
  ) {}

  /** A posting the org `postedByOrgId` already made on this account with this idempotency key (keys are the posting org's). */
  async findByIdempotencyKey(postedByOrgId: string, key: string): Promise<StoredPosting | null> {
    const rows = await this.tx.$queryRaw<{ request_hash: string; response: unknown }[]>`
      SELECT request_hash, response FROM ledger_postings
      WHERE account_id = ${this.account.id}::uuid AND posted_by_org_id = ${postedByOrgId}::uuid
        AND idempotency_key = ${key}`;
    return rows[0] ? { requestHash: rows[0].request_hash, response: rows[0].response } : null;
  }

  async findInvoice(invoiceId: string): Promise<InvoiceRow | null> {
    const rows = await this.tx.$queryRaw<InvoiceRow[]>`
      SELECT id, account_id AS "accountId", issuer_org_id AS "issuerOrgId", number, amount,
             amount_paid AS "amountPaid", status::text AS status
      FROM invoices WHERE id = ${invoiceId}::uuid AND account_id = ${this.account.id}::uuid`;
    return rows[0] ?? null;
  }

  async findPostingForReversal(postingId: string): Promise<PostingForReversal | null> {
    const rows = await this.tx.$queryRaw<
      {
        id: string;
        kind: PostingForReversal['kind'];
        posted_by_org_id: string;
        reversed_by: string | null;
        response: unknown;
      }[]
    >`
      SELECT p.id, p.kind::text AS kind, p.posted_by_org_id, p.response,
             (SELECT r.id FROM ledger_postings r WHERE r.reversal_of_id = p.id) AS reversed_by
      FROM ledger_postings p WHERE p.id = ${postingId}::uuid AND p.account_id = ${this.account.id}::uuid`;
    const p = rows[0];
    if (!p) return null;
    const entries = await this.tx.$queryRaw<{ orgId: string; amount: bigint }[]>`
      SELECT org_id AS "orgId", amount FROM ledger_entries WHERE posting_id = ${postingId}::uuid ORDER BY org_id`;
    let invoice: InvoiceRow | null = null;
    let payment: PostingForReversal['payment'] = null;
    if (p.kind === 'INVOICE') {
      const inv = await this.tx.$queryRaw<InvoiceRow[]>`
        SELECT id, account_id AS "accountId", issuer_org_id AS "issuerOrgId", number, amount,
               amount_paid AS "amountPaid", status::text AS status
        FROM invoices WHERE posting_id = ${postingId}::uuid`;
      invoice = inv[0] ?? null;
    } else if (p.kind === 'PAYMENT') {
      const pay = await this.tx.$queryRaw<{ id: string; amount: bigint; invoiceId: string | null }[]>`
        SELECT id, amount, invoice_id AS "invoiceId" FROM payments WHERE posting_id = ${postingId}::uuid`;
      payment = pay[0] ?? null;
      if (payment?.invoiceId) invoice = await this.findInvoice(payment.invoiceId);
    }
    return {
      id: p.id,
      kind: p.kind,
      postedByOrgId: p.posted_by_org_id,
      reversedById: p.reversed_by,
      response: p.response,
      entries,
      invoice,
      payment,
    };
  }

  /** Appends the posting, its entries, documents and outbox events, and moves the balance: one statement. */
  async append(plan: PostingPlan): Promise<void> {
    const a = this.account;
    const at = plan.createdAt;
    const parts: Prisma.Sql[] = [];
    parts.push(Prisma.sql`p AS (
      INSERT INTO ledger_postings (id, account_id, seq, kind, posted_by_org_id, posted_by_user_id, reversal_of_id,
                                   memo, idempotency_key, request_hash, response, created_at)
      VALUES (${plan.postingId}::uuid, ${a.id}::uuid, ${a.entryCount + 1}, ${plan.kind}::ledger_posting_kind,
              ${plan.postedByOrgId}::uuid, ${plan.postedByUserId}::uuid, ${plan.reversalOfId}::uuid, ${plan.memo},
              ${plan.idempotencyKey}, ${plan.requestHash}, ${JSON.stringify(plan.response)}::jsonb, ${at}::timestamptz))`);
    const entryRows = plan.entries.map(
      (e) =>
        Prisma.sql`(${e.id}::uuid, ${a.id}::uuid, ${plan.postingId}::uuid, ${e.orgId}::uuid, ${a.entryCount + 1},
                    ${e.amount}::bigint, ${e.runningBalance}::bigint, ${at}::timestamptz)`,
    );
    parts.push(Prisma.sql`e AS (
      INSERT INTO ledger_entries (id, account_id, posting_id, org_id, seq, amount, running_balance, created_at)
      VALUES ${Prisma.join(entryRows)})`);
    if (plan.invoice) {
      const i = plan.invoice;
      parts.push(Prisma.sql`i AS (
        INSERT INTO invoices (id, account_id, posting_id, issuer_org_id, number, amount, trip_id, due_date, memo, created_at)
        VALUES (${i.id}::uuid, ${a.id}::uuid, ${plan.postingId}::uuid, ${i.issuerOrgId}::uuid, ${i.number}, ${i.amount}::bigint,
                ${i.tripId}::uuid, ${i.dueDate}::date, ${i.memo}, ${at}::timestamptz))`);
    }
    if (plan.payment) {
      const m = plan.payment;
      parts.push(Prisma.sql`m AS (
        INSERT INTO payments (id, account_id, posting_id, payer_org_id, payee_org_id, amount, method, reference, invoice_id, memo, created_at)
        VALUES (${m.id}::uuid, ${a.id}::uuid, ${plan.postingId}::uuid, ${m.payerOrgId}::uuid, ${m.payeeOrgId}::uuid,
                ${m.amount}::bigint, ${m.method}, ${m.reference}, ${m.invoiceId}::uuid, ${m.memo}, ${at}::timestamptz))`);
    }
    if (plan.invoiceUpdate) {
      const u = plan.invoiceUpdate;
      parts.push(Prisma.sql`iu AS (
        UPDATE invoices SET amount_paid = ${u.amountPaid}::bigint, status = ${u.status}::invoice_status
        WHERE id = ${u.id}::uuid AND account_id = ${a.id}::uuid)`);
    }
    if (plan.paymentReversed) {
      parts.push(Prisma.sql`mr AS (
        UPDATE payments SET reversed_at = ${at}::timestamptz
        WHERE id = ${plan.paymentReversed}::uuid AND account_id = ${a.id}::uuid)`);
    }
    if (plan.outbox.length) {
      const events = plan.outbox.map(
        (o) =>
          Prisma.sql`(${o.id}::uuid, ${o.type}, ${o.orgId}::uuid, ${JSON.stringify(o.data)}::jsonb, ${at}::timestamptz)`,
      );
      parts.push(Prisma.sql`o AS (
        INSERT INTO outbox_events (id, type, org_id, data, created_at) VALUES ${Prisma.join(events)})`);
    }
    await this.tx.$executeRaw`
      WITH ${Prisma.join(parts, ',\n')}
      UPDATE ledger_accounts
      SET balance = ${plan.newBalance}::bigint, entry_count = ${a.entryCount + 1}, last_posted_at = ${at}::timestamptz
      WHERE id = ${a.id}::uuid`;
  }
}

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

const POSTING_TX = { maxWait: 10_000, timeout: 15_000 } as const;
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
   * An invoice or payment posting in one round trip: the `ledger_post`
   * function (migration 20261123130000) locks the account, checks the
   * idempotency key and the invoice rules, writes the posting, its entries,
   * document and outbox events, and moves the balance, in this statement's
   * transaction.
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

  /**
   * Runs `fn` in one transaction on the primary with the account row locked
   * (`SELECT ... FOR UPDATE`), so postings on one account are serialized and
   * each sees the committed result of the one before.
   */
  async withLockedAccount<R>(accountId: string, fn: (locked: LockedAccount) => Promise<R>): Promise<R | null> {
    return this.db.write.$transaction(async (tx) => {
      const rows = await tx.$queryRaw<AccountRow[]>`
        SELECT id, org_a_id AS "orgAId", org_b_id AS "orgBId", currency, balance, entry_count AS "entryCount",
               last_posted_at AS "lastPostedAt", created_at AS "createdAt"
        FROM ledger_accounts WHERE id = ${accountId}::uuid FOR UPDATE`;
      if (!rows[0]) return null;
      return fn(new LockedAccount(tx, rows[0]));
    }, POSTING_TX);
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
    await transaction.call(this.db, async (tx) => {
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
    }, STREAM_TX);
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
