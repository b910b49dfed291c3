import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { uuidv7 } from 'uuidv7';
import { Principal } from '../../common/auth/principal';
import { DomainError, ForbiddenError, NotFoundError, ValidationError } from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { canonicalJson } from '../../common/idempotency/request-hash';
import { Page } from '../../common/pagination/page';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { ORG_ROLES, OrgRole, roleIn } from '../orgs/org-roles';
import { OrgsService } from '../orgs/orgs.service';
import { csvLine, csvUserText, STATEMENT_CSV_HEADER } from './ledger-csv';
import {
  AccountKey,
  AccountRow,
  EntryRow,
  LedgerRepository,
  LockedAccount,
  NewEntry,
  PostingOutcome,
  PostingPlan,
} from './ledger.repository';
import {
  AccountView,
  CreateInvoiceInput,
  CreatePaymentInput,
  EntryView,
  InvoiceView,
  PaymentView,
  ReversalView,
  StatementHead,
} from './ledger.schemas';
import { TripLink } from './trip-link';
import { PostingBatcher } from './posting-batcher';
import { ExportSlots } from './export-slots';

/** What a posting endpoint answers: the first response, and whether this is a replay of it. */
export interface PostingResult<T> {
  replayed: boolean;
  body: T;
}

/** The account as one caller sees it: which org's side they act for. */
export interface AccountAccess {
  account: AccountKey;
  side: string;
  other: string;
}

export interface StatementEntryView {
  id: string;
  postingId: string;
  seq: number;
  kind: EntryRow['kind'];
  document: string | null;
  memo: string | null;
  amount: number;
  runningBalance: number;
  createdAt: string;
  reversalOfPostingId: string | null;
}

/** A JSON statement holds at most this many entries; longer ranges are read as CSV. */
export const MAX_JSON_STATEMENT_ENTRIES = 10_000;
const ACCOUNT_CACHE_SIZE = 10_000;
const LEDGER_ROLES: readonly OrgRole[] = ORG_ROLES.ledger;

function money(v: bigint): number {
  return Number(v);
}

function sideBalance(account: AccountKey, balanceA: bigint, side: string): bigint {
  return side === account.orgAId ? balanceA : -balanceA;
}

function postingHash(kind: string, side: string, target: string, body: unknown): string {
  return createHash('sha256').update(`${kind}\n${side}\n${target}\n`).update(canonicalJson(body)).digest('hex');
}

function balanceLimit(): DomainError {
  return new DomainError(
    ErrorCode.BALANCE_LIMIT_EXCEEDED,
    'The balance would leave the range of exact JSON integers (2^53-1)',
  );
}

function keyReused(): DomainError {
  return new DomainError(
    ErrorCode.IDEMPOTENCY_KEY_REUSED,
    'This Idempotency-Key was already used with a different request',
  );
}

@Injectable()
export class LedgerService {
  /** Accounts never change their orgs or currency: their keys are cached in-process. */
  private readonly accountKeys = new Map<string, AccountKey>();

  constructor(
    private readonly repo: LedgerRepository,
    private readonly orgs: OrgsService,
    private readonly trips: TripLink,
    private readonly batcher: PostingBatcher,
    private readonly exportSlots: ExportSlots,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  // ---------------------------------------------------------------- access

  private async accountKey(accountId: string): Promise<AccountKey | null> {
    const cached = this.accountKeys.get(accountId);
    if (cached) return cached;
    const key = await this.repo.findAccountKey(accountId);
    if (key) {
      if (this.accountKeys.size >= ACCOUNT_CACHE_SIZE) this.accountKeys.clear();
      this.accountKeys.set(accountId, key);
    }
    return key;
  }

  /**
   * Ledger roles of either org may use the account; another member of them
   * gets 403, anyone else 404. A caller with ledger roles in both orgs names
   * the side with `asOrgId`.
   */
  async access(principal: Principal, accountId: string, asOrgId?: string): Promise<AccountAccess> {
    const account = await this.accountKey(accountId);
    if (!account) throw new NotFoundError('Account');
    const roles = await this.orgs.rolesOf(principal.userId, [account.orgAId, account.orgBId]);
    if (roles.size === 0) throw new NotFoundError('Account');
    const ledgerA = roleIn(roles.get(account.orgAId), LEDGER_ROLES);
    const ledgerB = roleIn(roles.get(account.orgBId), LEDGER_ROLES);
    if (!ledgerA && !ledgerB) throw new ForbiddenError();
    let side: string;
    if (asOrgId !== undefined) {
      if (asOrgId !== account.orgAId && asOrgId !== account.orgBId) {
        throw new ValidationError([{ path: 'asOrgId', message: 'must be one of the two orgs of the account' }]);
      }
      if (!(asOrgId === account.orgAId ? ledgerA : ledgerB)) throw new ForbiddenError();
      side = asOrgId;
    } else if (ledgerA && ledgerB) {
      throw new ValidationError([
        { path: 'asOrgId', message: 'you belong to both orgs of this account: name the side with ?asOrgId=' },
      ]);
    } else {
      side = ledgerA ? account.orgAId : account.orgBId;
    }
    return { account, side, other: side === account.orgAId ? account.orgBId : account.orgAId };
  }

  // -------------------------------------------------------------- accounts

  private accountView(row: AccountRow, side: string): AccountView {
    return {
      id: row.id,
      orgId: side,
      counterpartyOrgId: side === row.orgAId ? row.orgBId : row.orgAId,
      currency: row.currency,
      balance: money(sideBalance(row, row.balance, side)),
      entryCount: row.entryCount,
      lastPostedAt: row.lastPostedAt?.toISOString() ?? null,
      createdAt: row.createdAt.toISOString(),
    };
  }

  async createAccount(
    principal: Principal,
    orgId: string,
    input: { counterpartyOrgId: string; currency: string },
  ): Promise<AccountView> {
    await this.orgs.requireRole(principal, orgId, LEDGER_ROLES);
    if (input.counterpartyOrgId === orgId) {
      throw new ValidationError([{ path: 'counterpartyOrgId', message: 'must be another org' }]);
    }
    if ((await this.orgs.existingOrgIds([input.counterpartyOrgId])).length === 0) {
      throw new DomainError(ErrorCode.COUNTERPARTY_NOT_FOUND, 'No org has this counterpartyOrgId', [
        { path: 'counterpartyOrgId', message: 'not found' },
      ]);
    }
    const [orgAId, orgBId] =
      orgId < input.counterpartyOrgId ? [orgId, input.counterpartyOrgId] : [input.counterpartyOrgId, orgId];
    const created = await this.repo.createAccount({ orgAId, orgBId, currency: input.currency }, principal.userId);
    if (!created) {
      const existing = await this.repo.findAccountByPair(orgAId, orgBId, input.currency);
      throw new DomainError(ErrorCode.ALREADY_EXISTS, `These two orgs already have an ${input.currency} account`, [
        { path: 'counterpartyOrgId', message: 'account exists', accountId: existing?.id },
      ]);
    }
    return this.accountView(created, orgId);
  }

  async listAccounts(
    principal: Principal,
    orgId: string,
    cursor: string | undefined,
    limit: number,
  ): Promise<Page<AccountView>> {
    await this.orgs.requireRole(principal, orgId, LEDGER_ROLES);
    const page = await this.repo.listAccounts(orgId, cursor, limit);
    return page.map((row) => this.accountView(row, orgId));
  }

  async getAccount(principal: Principal, accountId: string, asOrgId?: string): Promise<AccountView> {
    const { side } = await this.access(principal, accountId, asOrgId);
    const row = await this.repo.findAccount(accountId);
    if (!row) throw new NotFoundError('Account');
    return this.accountView(row, side);
  }

  // -------------------------------------------------------------- postings

  private entryViews(
    account: AccountKey,
    postingId: string,
    seq: number,
    kind: EntryView['kind'],
    entries: NewEntry[],
    at: Date,
  ): EntryView[] {
    return entries.map((e) => ({
      id: e.id,
      accountId: account.id,
      postingId,
      orgId: e.orgId,
      seq,
      kind,
      amount: money(e.amount),
      runningBalance: money(e.runningBalance),
      currency: account.currency,
      createdAt: at.toISOString(),
    }));
  }

  /**
   * The two entries of a posting that moves org A's balance by `deltaA`: org
   * A's side gets +deltaA, org B's side -deltaA (they sum to zero), each with
   * its side's running balance.
   */
  private balancedEntries(locked: LockedAccount, deltaA: bigint): { entries: NewEntry[]; newBalance: bigint } {
    const a = locked.account;
    const newBalance = a.balance + deltaA;
    if (newBalance > BigInt(Number.MAX_SAFE_INTEGER) || newBalance < -BigInt(Number.MAX_SAFE_INTEGER)) {
      throw balanceLimit();
    }
    return {
      newBalance,
      entries: [
        { id: uuidv7(), orgId: a.orgAId, amount: deltaA, runningBalance: newBalance },
        { id: uuidv7(), orgId: a.orgBId, amount: -deltaA, runningBalance: -newBalance },
      ],
    };
  }

  /** Ledger times only move forward on an account, whatever the clocks of the nodes. */
  private postingTime(locked: LockedAccount): Date {
    const now = Date.now();
    const last = locked.account.lastPostedAt?.getTime() ?? 0;
    return new Date(Math.max(now, last));
  }

  /** The stored first response for a retry, or an error when the key was used for something else. */
  private async replayByKey<T>(
    locked: LockedAccount,
    side: string,
    key: string | undefined,
    hash: string,
  ): Promise<PostingResult<T> | null> {
    if (!key) return null;
    const existing = await locked.findByIdempotencyKey(side, key);
    if (!existing) return null;
    if (existing.requestHash !== hash) throw keyReused();
    return { replayed: true, body: existing.response as T };
  }

  private checkCurrency(account: AccountKey, currency: string | undefined): void {
    if (currency !== undefined && currency !== account.currency) {
      throw new DomainError(ErrorCode.CURRENCY_MISMATCH, `This account is in ${account.currency}, not ${currency}`, [
        { path: 'currency', message: `must be ${account.currency}` },
      ]);
    }
  }

  private notFoundAfterLock(): never {
    // The account existed a moment ago; accounts are never deleted, so this is a race with nothing.
    throw new NotFoundError('Account');
  }

  /** The posting's answer, or the domain error for why `ledger_post` wrote nothing. */
  private postingResult<T>(outcome: PostingOutcome, input: { number?: string; amount: number }): PostingResult<T> {
    if (outcome.error === undefined) return { replayed: outcome.replayed, body: outcome.response as T };
    switch (outcome.error) {
      case 'ACCOUNT_NOT_FOUND':
        return this.notFoundAfterLock();
      case 'IDEMPOTENCY_KEY_REUSED':
        throw keyReused();
      case 'INVOICE_NUMBER_TAKEN':
        throw new DomainError(
          ErrorCode.INVOICE_NUMBER_TAKEN,
          `Invoice ${input.number} was already issued by this org on this account`,
          [{ path: 'number', message: 'already used by this org on this account' }],
        );
      case 'INVOICE_NOT_FOUND':
        throw new NotFoundError('Invoice');
      case 'INVOICE_REVERSED':
        throw new DomainError(ErrorCode.INVOICE_REVERSED, 'This invoice was reversed and cannot be paid');
      case 'DIRECTION_MISMATCH':
        throw new DomainError(ErrorCode.UNPROCESSABLE, 'A payment against an invoice is paid to its issuer', [
          { path: 'direction', message: `must be ${outcome.mustBe}` },
        ]);
      case 'OVERPAYMENT':
        throw new DomainError(
          ErrorCode.OVERPAYMENT,
          `The invoice has ${outcome.outstanding} outstanding; this payment is ${input.amount}`,
          [{ path: 'amount', message: `must not exceed ${outcome.outstanding}`, outstanding: outcome.outstanding }],
        );
      case 'BALANCE_LIMIT_EXCEEDED':
        throw balanceLimit();
    }
  }

  /**
   * Posts an invoice: the acting org is the issuer, owed the amount by the
   * other org. The rules that need the locked account (idempotency key,
   * invoice number) are checked by `ledger_post` in the posting's statement.
   */
  async createInvoice(
    principal: Principal,
    accountId: string,
    asOrgId: string | undefined,
    input: CreateInvoiceInput,
    idempotencyKey: string | undefined,
  ): Promise<PostingResult<InvoiceView>> {
    const { account, side } = await this.access(principal, accountId, asOrgId);
    this.checkCurrency(account, input.currency);
    if (input.tripId && !(await this.trips.isTripBetween(input.tripId, account.orgAId, account.orgBId))) {
      throw new DomainError(
        ErrorCode.TRIP_NOT_BETWEEN_ORGS,
        'The trip is not a trip between the two orgs of this account',
        [{ path: 'tripId', message: 'not a trip between these orgs' }],
      );
    }
    const outcome = await this.batcher.post({
      ...this.postingIds(principal, account, side),
      kind: 'INVOICE',
      idempotencyKey: idempotencyKey ?? null,
      requestHash: postingHash('INVOICE', side, account.id, input),
      memo: input.memo ?? null,
      invoice: {
        number: input.number,
        amount: input.amount,
        tripId: input.tripId ?? null,
        dueDate: input.dueDate ?? null,
      },
    });
    return this.postingResult<InvoiceView>(outcome, input);
  }

  /**
   * Posts a payment. With an invoice it goes from the buyer to the issuer and
   * may not exceed what is outstanding (checked by `ledger_post` under the
   * account lock); without one, `direction` is from the acting org's view.
   */
  async createPayment(
    principal: Principal,
    accountId: string,
    asOrgId: string | undefined,
    input: CreatePaymentInput,
    idempotencyKey: string | undefined,
  ): Promise<PostingResult<PaymentView>> {
    const { account, side } = await this.access(principal, accountId, asOrgId);
    this.checkCurrency(account, input.currency);
    const outcome = await this.batcher.post({
      ...this.postingIds(principal, account, side),
      kind: 'PAYMENT',
      idempotencyKey: idempotencyKey ?? null,
      requestHash: postingHash('PAYMENT', side, account.id, input),
      memo: input.memo ?? null,
      payment: {
        amount: input.amount,
        method: input.method,
        reference: input.reference ?? null,
        invoiceId: input.invoiceId ?? null,
        direction: input.direction ?? null,
      },
    });
    return this.postingResult<PaymentView>(outcome, input);
  }

  /** The new ids of a posting and who makes it. */
  private postingIds(principal: Principal, account: AccountKey, side: string) {
    return {
      accountId: account.id,
      side,
      userId: principal.userId,
      now: new Date(),
      postingId: uuidv7(),
      documentId: uuidv7(),
      entryIds: [uuidv7(), uuidv7()] as [string, string],
      outboxIds: [uuidv7(), uuidv7()] as [string, string],
    };
  }

  /**
   * Reverses the posting an entry belongs to with a new posting of the
   * opposite entries. Only the org that posted the original may reverse it,
   * once; a reversal is not itself reversed (post again instead).
   */
  async reverse(
    principal: Principal,
    entryId: string,
    asOrgId: string | undefined,
    reason: string,
    idempotencyKey: string | undefined,
  ): Promise<PostingResult<ReversalView>> {
    const entry = await this.repo.findEntry(entryId);
    if (!entry) throw new NotFoundError('Entry');
    const { account, side, other } = await this.access(principal, entry.accountId, asOrgId).catch((err: unknown) => {
      // The entry of an account the caller cannot see does not exist for them.
      if (err instanceof DomainError && err.code === ErrorCode.NOT_FOUND) throw new NotFoundError('Entry');
      throw err;
    });
    const hash = postingHash('REVERSAL', side, entryId, { reason });
    const result = await this.repo.withLockedAccount(account.id, async (locked) => {
      const replay = await this.replayByKey<ReversalView>(locked, side, idempotencyKey, hash);
      if (replay) return replay;
      const original = await locked.findPostingForReversal(entry.postingId);
      if (!original) throw new NotFoundError('Entry');
      if (original.kind === 'REVERSAL') {
        throw new DomainError(ErrorCode.NOT_REVERSIBLE, 'A reversal cannot be reversed; post the entry again instead');
      }
      if (original.reversedById) {
        throw new DomainError(ErrorCode.ALREADY_REVERSED, 'This entry was already reversed', [
          { path: 'entryId', message: 'already reversed', reversalPostingId: original.reversedById },
        ]);
      }
      if (original.postedByOrgId !== side) throw new ForbiddenError('Only the org that posted an entry can reverse it');
      let invoiceUpdate: PostingPlan['invoiceUpdate'];
      let paymentReversed: string | undefined;
      let eventType: 'ledger.invoice' | 'ledger.payment';
      let eventData: unknown;
      const at = this.postingTime(locked);
      if (original.kind === 'INVOICE') {
        const inv = original.invoice;
        if (!inv) throw new NotFoundError('Invoice');
        if (inv.amountPaid > 0n) {
          throw new DomainError(ErrorCode.NOT_REVERSIBLE, 'This invoice has payments against it; reverse them first');
        }
        invoiceUpdate = { id: inv.id, amountPaid: 0n, status: 'REVERSED' };
        eventType = 'ledger.invoice';
        eventData = { ...(original.response as InvoiceView), status: 'REVERSED' };
      } else {
        const pay = original.payment;
        if (!pay) throw new NotFoundError('Payment');
        paymentReversed = pay.id;
        if (pay.invoiceId && original.invoice) {
          const inv = original.invoice;
          const amountPaid = inv.amountPaid - pay.amount;
          invoiceUpdate = { id: inv.id, amountPaid, status: amountPaid === 0n ? 'OPEN' : 'PARTIALLY_PAID' };
        }
        eventType = 'ledger.payment';
        eventData = { ...(original.response as PaymentView), reversed: true };
      }
      const originalA = original.entries.find((e) => e.orgId === account.orgAId);
      if (!originalA) throw new NotFoundError('Entry');
      const { entries, newBalance } = this.balancedEntries(locked, -originalA.amount);
      const postingId = uuidv7();
      const seq = locked.account.entryCount + 1;
      const view: ReversalView = {
        id: postingId,
        accountId: account.id,
        reversalOfPostingId: original.id,
        reversedKind: original.kind,
        reason,
        createdAt: at.toISOString(),
        entries: this.entryViews(account, postingId, seq, 'REVERSAL', entries, at),
      };
      await locked.append({
        postingId,
        kind: 'REVERSAL',
        postedByOrgId: side,
        postedByUserId: principal.userId,
        reversalOfId: original.id,
        memo: reason,
        idempotencyKey: idempotencyKey ?? null,
        requestHash: hash,
        response: view,
        createdAt: at,
        entries,
        newBalance,
        invoiceUpdate,
        paymentReversed,
        outbox: this.events(eventType, [side, other], { ...(eventData as object), reversal: view }),
      });
      return { replayed: false, body: view };
    });
    return result ?? this.notFoundAfterLock();
  }

  /** One outbox event per org of the account, in the webhook body's shape. */
  private events(type: string, orgIds: string[], data: unknown): PostingPlan['outbox'] {
    return orgIds.map((orgId) => ({ id: uuidv7(), type, orgId, data }));
  }

  // ----------------------------------------------------------------- reads

  private statementEntry(row: EntryRow): StatementEntryView {
    return {
      id: row.id,
      postingId: row.postingId,
      seq: row.seq,
      kind: row.kind,
      document: row.document,
      memo: row.memo,
      amount: money(row.amount),
      runningBalance: money(row.runningBalance),
      createdAt: row.createdAt.toISOString(),
      reversalOfPostingId: row.reversalOfId,
    };
  }

  async listEntries(
    principal: Principal,
    accountId: string,
    q: { asOrgId?: string; from?: Date; to?: Date; cursor?: string; limit: number },
  ): Promise<Page<StatementEntryView & { accountId: string; orgId: string; currency: string }>> {
    const { account, side } = await this.access(principal, accountId, q.asOrgId);
    const page = await this.repo.listEntries(account.id, side, { from: q.from, to: q.to }, q.cursor, q.limit);
    return page.map((row) => ({
      ...this.statementEntry(row),
      accountId: account.id,
      orgId: side,
      currency: account.currency,
    }));
  }

  private head(
    access: AccountAccess,
    q: { from?: Date; to?: Date },
    b: { openingBalance: bigint; closingBalance: bigint; firstSeq: number; lastSeq: number },
  ): StatementHead {
    return {
      accountId: access.account.id,
      orgId: access.side,
      counterpartyOrgId: access.other,
      currency: access.account.currency,
      from: q.from?.toISOString() ?? null,
      to: q.to?.toISOString() ?? null,
      openingBalance: money(b.openingBalance),
      closingBalance: money(b.closingBalance),
      entryCount: b.lastSeq - b.firstSeq,
    };
  }

  async statement(
    principal: Principal,
    accountId: string,
    q: { asOrgId?: string; from?: Date; to?: Date },
  ): Promise<StatementHead & { entries: StatementEntryView[] }> {
    const access = await this.access(principal, accountId, q.asOrgId);
    let head: StatementHead | undefined;
    const entries: StatementEntryView[] = [];
    await this.repo.readStatement(
      access.account.id,
      access.side,
      q,
      (b) => {
        head = this.head(access, q, b);
        return head.entryCount <= MAX_JSON_STATEMENT_ENTRIES;
      },
      async (rows) => {
        for (const row of rows) entries.push(this.statementEntry(row));
      },
    );
    if (!head) throw new NotFoundError('Account');
    if (head.entryCount > MAX_JSON_STATEMENT_ENTRIES) {
      throw new DomainError(
        ErrorCode.STATEMENT_TOO_LARGE,
        `This range holds ${head.entryCount} entries; a JSON statement holds at most ${MAX_JSON_STATEMENT_ENTRIES}. Use format=csv or a shorter range.`,
      );
    }
    return { ...head, entries };
  }

  /**
   * The statement as CSV, streamed from a database cursor: memory stays flat
   * whatever the range, and a slow reader slows the cursor (backpressure).
   * Resolves once the balances are known, before the first row is read.
   *
   * An export holds a REPEATABLE READ transaction and a connection for as
   * long as it streams, so it is bounded three ways: it runs on the export
   * pool (`EXPORT_POOL_MAX` connections the API never shares), a user runs at
   * most `EXPORT_MAX_PER_USER` at once across nodes (429 beyond), and one
   * whose client takes no data for `EXPORT_IDLE_TIMEOUT_MS` is aborted: the
   * transaction rolls back, the connection goes back to the pool and the
   * response is cut off (the client sees a truncated body).
   */
  async statementCsv(
    principal: Principal,
    accountId: string,
    q: { asOrgId?: string; from?: Date; to?: Date },
  ): Promise<{ head: StatementHead; stream: Readable }> {
    const access = await this.access(principal, accountId, q.asOrgId);
    const slot = await this.exportSlots.acquire(principal.userId);
    const idleMs = this.config.exportIdleTimeoutMs;
    const out = new PassThrough();
    const currency = access.account.currency;
    let headReady!: (h: StatementHead) => void;
    let headFailed!: (err: unknown) => void;
    const headPromise = new Promise<StatementHead>((resolve, reject) => {
      headReady = resolve;
      headFailed = reject;
    });
    const done = this.repo.readStatement(
      access.account.id,
      access.side,
      q,
      (b) => {
        out.write(csvLine([...STATEMENT_CSV_HEADER]));
        headReady(this.head(access, q, b));
      },
      async (rows) => {
        if (out.destroyed) throw new Error('statement reader went away');
        let chunk = '';
        for (const r of rows) {
          chunk += csvLine([
            r.seq,
            r.id,
            r.postingId,
            r.createdAt.toISOString(),
            r.kind,
            csvUserText(r.document),
            csvUserText(r.memo),
            r.amount,
            r.runningBalance,
            currency,
          ]);
        }
        if (!out.write(chunk)) await drained(out, idleMs);
      },
      2000,
      'export',
    );
    done.then(
      () => {
        slot.release();
        out.end();
      },
      (err: unknown) => {
        slot.release();
        headFailed(err);
        out.destroy(err instanceof Error ? err : new Error(String(err)));
      },
    );
    const head = await headPromise;
    return { head, stream: out };
  }
}

/** Resolves when the stream wants more; rejects when its reader is gone or has taken nothing for `idleMs`. */
function drained(stream: PassThrough, idleMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`statement reader took no data for ${idleMs} ms`));
    }, idleMs);
    const cleanup = () => {
      clearTimeout(timer);
      stream.off('drain', onDrain);
      stream.off('close', onClose);
    };
    const onDrain = () => {
      cleanup();
      resolve();
    };
    const onClose = () => {
      cleanup();
      reject(new Error('statement reader went away'));
    };
    stream.on('drain', onDrain);
    stream.on('close', onClose);
  });
}
