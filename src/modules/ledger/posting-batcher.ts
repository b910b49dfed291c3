import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { GroupRunner, Settled } from '../../common/batching/group-runner';
import { statementRefused } from '../../common/errors/database-errors';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { Db } from '../../infra/db/db.service';
import { LedgerRepository, PostingOutcome, PostingRequest } from './ledger.repository';

/**
 * Group commit of postings (invoices, payments and reversals). A posting
 * that finds a free slot (at most `LEDGER_BATCH_IN_FLIGHT` statements at a
 * time) goes to the database at once, alone; postings that arrive while the slots are busy wait
 * for the next statement and go together (up to `LEDGER_BATCH_MAX`), in one
 * `ledger_post_many` call and one commit. No timer: an idle server adds no
 * delay, a busy one makes fewer, larger transactions (one account lock per
 * account per batch, one commit for many postings).
 *
 * Every request is answered after the commit that holds its posting. If
 * PostgreSQL refuses a batch's statement (so none of it is stored), its
 * halves are run again apart (GroupRunner's `settleApart`), down to single
 * postings, and one faulty posting fails only its own request; if the
 * connection fails (the outcome is unknown), the requests get the error and
 * their clients retry with their Idempotency-Keys.
 */
@Injectable()
export class PostingBatcher implements OnApplicationShutdown {
  private readonly logger = new Logger(PostingBatcher.name);
  private readonly runner: GroupRunner<PostingRequest, PostingOutcome>;

  constructor(
    private readonly repo: LedgerRepository,
    private readonly db: Db,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.runner = new GroupRunner({
      maxGroup: config.ledgerBatchMax,
      maxInFlight: config.ledgerBatchInFlight,
      run: (reqs) => this.run(reqs),
      // The commit may have happened after anything but a refusal: running them again could post twice.
      refused: statementRefused,
      onSplit: (n, err) =>
        this.logger.warn(`a batch of ${n} postings was refused, posting its halves apart: ${(err as Error).message}`),
    });
  }

  get stats() {
    return this.runner.stats;
  }

  post(req: PostingRequest): Promise<PostingOutcome> {
    this.db.markWrite();
    return this.runner.submit(req);
  }

  onApplicationShutdown(): Promise<void> {
    return this.runner.drained();
  }

  private async run(reqs: PostingRequest[]): Promise<Settled<PostingOutcome>[]> {
    if (reqs.length === 1) return [{ ok: true, value: await this.repo.post(reqs[0]) }];
    // One lock order for every batch of every node: by account, then arrival.
    const order = reqs
      .map((_, i) => i)
      .sort((a, b) => (reqs[a].accountId < reqs[b].accountId ? -1 : reqs[a].accountId > reqs[b].accountId ? 1 : a - b));
    const sorted = await this.repo.postMany(order.map((i) => reqs[i]));
    const outcomes: Settled<PostingOutcome>[] = new Array(reqs.length);
    order.forEach((i, k) => (outcomes[i] = { ok: true, value: sorted[k] }));
    return outcomes;
  }
}
