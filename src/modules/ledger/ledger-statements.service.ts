import { Inject, Injectable } from '@nestjs/common';
import { PassThrough, Readable } from 'node:stream';
import { Principal } from '../../common/auth/principal';
import { DomainError, NotFoundError } from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { etagMatches, strongEtag } from '../../common/http/etag';
import { Page } from '../../common/pagination/page';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { ExportSlots } from './export-slots';
import { csvLine, csvUserText, STATEMENT_CSV_HEADER } from './ledger-csv';
import { EntryRow, LedgerRepository } from './ledger.repository';
import { StatementHead } from './ledger.schemas';
import { AccountAccess, LedgerService } from './ledger.service';

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

function money(v: bigint): number {
  return Number(v);
}

/**
 * The read side of an account: a side's entry list, and its statement as
 * JSON or as a streamed CSV export. Access (and the acting side) is
 * LedgerService's; postings are never written here.
 */
@Injectable()
export class LedgerStatementsService {
  constructor(
    private readonly ledger: LedgerService,
    private readonly repo: LedgerRepository,
    private readonly exportSlots: ExportSlots,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

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
    const { account, side } = await this.ledger.access(principal, accountId, q.asOrgId);
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
    return (await this.statementIfChanged(principal, accountId, q)).statement!;
  }

  /**
   * The JSON statement and, for a past range (`to` not after now), its strong
   * ETag: entries are append-only, so the range's account, side, bounds and
   * first and last entry decide every byte. When `ifNoneMatch` names it, only
   * the bounds are read and `statement` is null (a 304).
   */
  async statementIfChanged(
    principal: Principal,
    accountId: string,
    q: { asOrgId?: string; from?: Date; to?: Date },
    ifNoneMatch?: string,
  ): Promise<{ etag: string | null; statement: (StatementHead & { entries: StatementEntryView[] }) | null }> {
    const access = await this.ledger.access(principal, accountId, q.asOrgId);
    const past = q.to !== undefined && q.to.getTime() <= Date.now();
    let etag: string | null = null;
    let unchanged = false;
    let head: StatementHead | undefined;
    const entries: StatementEntryView[] = [];
    await this.repo.readStatement(
      access.account.id,
      access.side,
      q,
      (b) => {
        head = this.head(access, q, b);
        if (past) {
          etag = strongEtag(
            'statement',
            head.accountId,
            head.orgId,
            head.from ?? '',
            head.to ?? '',
            String(b.firstSeq),
            String(b.lastSeq),
            String(b.openingBalance),
            String(b.closingBalance),
          );
          unchanged = etagMatches(ifNoneMatch, etag);
        }
        return !unchanged && head.entryCount <= MAX_JSON_STATEMENT_ENTRIES;
      },
      async (rows) => {
        for (const row of rows) entries.push(this.statementEntry(row));
      },
    );
    if (!head) throw new NotFoundError('Account');
    if (unchanged) return { etag, statement: null };
    if (head.entryCount > MAX_JSON_STATEMENT_ENTRIES) {
      throw new DomainError(
        ErrorCode.STATEMENT_TOO_LARGE,
        `This range holds ${head.entryCount} entries; a JSON statement holds at most ${MAX_JSON_STATEMENT_ENTRIES}. Use format=csv or a shorter range.`,
      );
    }
    return { etag, statement: { ...head, entries } };
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
    const access = await this.ledger.access(principal, accountId, q.asOrgId);
    const slot = await this.exportSlots.acquire(principal.userId);
    const idleMs = this.config.exportIdleTimeoutMs;
    const out = new PassThrough();
    // A failure before the reply takes the stream (or before the head, when it never does) must not be an
    // unhandled 'error' event, which would end the process; once sent, the reply's own listener sees it too.
    out.on('error', () => undefined);
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
