import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { uuidv7 } from 'uuidv7';
import { Principal } from '../../common/auth/principal';
import { DomainError, ForbiddenError, NotFoundError, ValidationError } from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { canonicalJson } from '../../common/idempotency/request-hash';
import { Page } from '../../common/pagination/page';
import { ORG_ROLES, OrgRole, roleIn } from '../orgs/org-roles';
import { OrgsService } from '../orgs/orgs.service';
import { AccountKey, AccountRow, LedgerRepository, PostingOutcome } from './ledger.repository';
import {
  AccountView,
  CreateInvoiceInput,
  CreatePaymentInput,
  InvoiceView,
  PaymentView,
  ReversalView,
} from './ledger.schemas';
import { TripLink } from './trip-link';
import { PostingBatcher } from './posting-batcher';

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

  /** The account's two orgs (for other features: chat's account threads), or null when there is no such account. */
  async accountOrgs(accountId: string): Promise<{ orgAId: string; orgBId: string } | null> {
    const key = await this.accountKey(accountId);
    return key ? { orgAId: key.orgAId, orgBId: key.orgBId } : null;
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
  private postingResult<T>(
    outcome: PostingOutcome,
    input: { number?: string; amount?: number } = {},
  ): PostingResult<T> {
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
      case 'POSTING_NOT_FOUND':
        throw new NotFoundError('Entry');
      case 'NOT_REVERSIBLE':
        throw new DomainError(
          ErrorCode.NOT_REVERSIBLE,
          outcome.reason === 'REVERSAL'
            ? 'A reversal cannot be reversed; post the entry again instead'
            : 'This invoice has payments against it; reverse them first',
        );
      case 'ALREADY_REVERSED':
        throw new DomainError(ErrorCode.ALREADY_REVERSED, 'This entry was already reversed', [
          { path: 'entryId', message: 'already reversed', reversalPostingId: outcome.reversalPostingId },
        ]);
      case 'NOT_POSTER':
        throw new ForbiddenError('Only the org that posted an entry can reverse it');
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
    const link = input.tripId ? await this.trips.tripLink(input.tripId, account.orgAId, account.orgBId) : 'between';
    // A trip the caller cannot see (unknown, or of orgs the caller has no role in) is a 404, as anywhere else.
    const hidden = new DomainError(ErrorCode.NOT_FOUND, 'Trip not found', [
      { path: 'tripId', message: 'no such trip' },
    ]);
    if (link === 'unknown') throw hidden;
    if (link !== 'between' && (await this.orgs.rolesOf(principal.userId, link.elsewhere)).size === 0) throw hidden;
    if (link !== 'between') {
      throw new DomainError(
        ErrorCode.TRIP_NOT_BETWEEN_ORGS,
        'The trip is not a trip between the two orgs of this account',
        [{ path: 'tripId', message: 'not a trip between these orgs' }],
      );
    }
    const outcome = await this.batcher.post({
      ...this.postingIds(principal, account, side),
      kind: 'INVOICE',
      documentId: uuidv7(),
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
      documentId: uuidv7(),
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
      entryIds: [uuidv7(), uuidv7()] as [string, string],
      outboxIds: [uuidv7(), uuidv7()] as [string, string],
    };
  }

  /**
   * Reverses the posting an entry belongs to with a new posting of the
   * opposite entries, through `ledger_post` like every posting: only the org
   * that posted the original may reverse it, once; a reversal is not itself
   * reversed (post again instead); an invoice with payments against it waits
   * until they are reversed. All checked under the account lock.
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
    const { account, side } = await this.access(principal, entry.accountId, asOrgId).catch((err: unknown) => {
      // The entry of an account the caller cannot see does not exist for them.
      if (err instanceof DomainError && err.code === ErrorCode.NOT_FOUND) throw new NotFoundError('Entry');
      throw err;
    });
    const outcome = await this.batcher.post({
      ...this.postingIds(principal, account, side),
      kind: 'REVERSAL',
      idempotencyKey: idempotencyKey ?? null,
      requestHash: postingHash('REVERSAL', side, entryId, { reason }),
      memo: reason,
      reversalOf: entry.postingId,
    });
    return this.postingResult<ReversalView>(outcome);
  }
}
