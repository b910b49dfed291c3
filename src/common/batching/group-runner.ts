import { requestContext } from '../context/request-context';

/** The outcome of one item of a group: its value, or why it failed. */
export type Settled<O> = { ok: true; value: O } | { ok: false; error: unknown };

export interface GroupRunnerStats {
  /** Calls of `run`. */
  groups: number;
  /** Items submitted and run. */
  items: number;
  largestGroup: number;
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
  readonly stats: GroupRunnerStats = { groups: 0, items: 0, largestGroup: 0 };

  constructor(
    private readonly opts: {
      maxGroup: number;
      maxInFlight: number;
      /** One outcome per item, in the items' order; a rejection fails the whole group. */
      run: (items: I[]) => Promise<Settled<O>[]>;
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

  private pump(): void {
    while (this.queue.length && this.inFlight < this.opts.maxInFlight) {
      const group = this.queue.slice(0, this.opts.maxGroup);
      this.queue = this.queue.slice(group.length);
      this.inFlight += 1;
      this.stats.groups += 1;
      this.stats.items += group.length;
      this.stats.largestGroup = Math.max(this.stats.largestGroup, group.length);
      void requestContext
        .outside(() => this.opts.run(group.map((w) => w.item)))
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
