import { requestContext } from '../context/request-context';

/** The outcome of one item of a group: its value, or why it failed. */
export type Settled<O> = { ok: true; value: O } | { ok: false; error: unknown };

export interface GroupRunnerStats {
  /** Groups formed from the queue (a refused group run again apart counts once). */
  groups: number;
  /** Items submitted and run. */
  items: number;
  largestGroup: number;
  /** Items run again in a smaller group because the group holding them was refused (once per smaller group). */
  retriedApart: number;
}

/**
 * The split-on-failure rule of every group commit. Runs `items` as one group;
 * if that fails with an error `refused` says was a refusal of the statement
 * itself (PostgreSQL rejected it, so nothing of it is stored), each half is
 * run again on its own, and so on down to single items: a faulty item fails
 * only itself, at the cost of about 2·log2(n) extra statements. Any other
 * failure (connection lost, outcome unknown: running again could store twice)
 * fails every item of the group with that error. The halves run at once;
 * callers that lock rows keep one lock order within each call, as they do for
 * concurrent groups.
 */
export async function settleApart<I, O>(
  items: readonly I[],
  run: (items: I[]) => Promise<Settled<O>[]>,
  refused: (err: unknown) => boolean,
  onSplit?: (items: number, err: unknown) => void,
): Promise<Settled<O>[]> {
  try {
    return await run([...items]);
  } catch (error) {
    if (items.length < 2 || !refused(error)) return items.map((): Settled<O> => ({ ok: false, error }));
    onSplit?.(items.length, error);
    const mid = Math.ceil(items.length / 2);
    const [head, tail] = await Promise.all([
      settleApart(items.slice(0, mid), run, refused, onSplit),
      settleApart(items.slice(mid), run, refused, onSplit),
    ]);
    return head.concat(tail);
  }
}

/**
 * Runs items in groups without a timer. An item that finds a free slot (at
 * most `maxInFlight` groups running) starts a group at once, alone; items
 * that arrive while every slot is busy wait and start together (up to
 * `maxGroup`) when one frees. An idle server adds no delay; a busy one does
 * fewer, larger round trips. Groups run outside the request that happened to
 * start them (their logs and database use belong to no single request).
 */
export class GroupRunner<I, O> {
  private queue: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  private inFlight = 0;
  private idle: (() => void)[] = [];
  readonly stats: GroupRunnerStats = { groups: 0, items: 0, largestGroup: 0, retriedApart: 0 };

  constructor(
    private readonly opts: {
      maxGroup: number;
      maxInFlight: number;
      /** One outcome per item, in the items' order; a rejection fails the whole group (but see `refused`). */
      run: (items: I[]) => Promise<Settled<O>[]>;
      /**
       * When `run` rejects with an error this calls a refusal of the statement
       * (nothing of it stored), the group's items are run again apart
       * (`settleApart`) instead of all failing.
       */
      refused?: (err: unknown) => boolean;
      /** Told of each refused group before it is split. */
      onSplit?: (items: number, err: unknown) => void;
    },
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  /** Resolves when nothing is queued or running. */
  drained(): Promise<void> {
    if (!this.queue.length && !this.inFlight) return Promise.resolve();
    return new Promise((done) => this.idle.push(done));
  }

  private runGroup(items: I[]): Promise<Settled<O>[]> {
    const { run, refused, onSplit } = this.opts;
    if (!refused) return run(items);
    return settleApart(items, run, refused, (n, err) => {
      this.stats.retriedApart += n;
      onSplit?.(n, err);
    });
  }

  private pump(): void {
    while (this.queue.length && this.inFlight < this.opts.maxInFlight) {
      const group = this.queue.slice(0, this.opts.maxGroup);
      this.queue = this.queue.slice(group.length);
      this.inFlight += 1;
      this.stats.groups += 1;
      this.stats.items += group.length;
      this.stats.largestGroup = Math.max(this.stats.largestGroup, group.length);
      void requestContext
        .outside(() => this.runGroup(group.map((w) => w.item)))
        .then(
          (outcomes) =>
            group.forEach((w, i) => {
              const o = outcomes[i];
              if (!o) w.reject(new Error('no outcome for a grouped item'));
              else if (o.ok) w.resolve(o.value);
              else w.reject(o.error);
            }),
          (err: unknown) => group.forEach((w) => w.reject(err)),
        )
        .finally(() => {
          this.inFlight -= 1;
          this.pump();
          if (!this.queue.length && !this.inFlight) {
            const idle = this.idle;
            this.idle = [];
            for (const done of idle) done();
          }
        });
    }
  }
}
