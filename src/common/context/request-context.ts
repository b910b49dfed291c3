import { AsyncLocalStorage } from 'node:async_hooks';

/** What the code handling one request knows about it, wherever it runs. */
export interface RequestContext {
  requestId: string;
  userId?: string;
  /** Set when the request wrote to the primary: its author's next reads go there too. */
  wrote: boolean;
  /** Set when the author wrote recently enough that the replica may lag behind. */
  pinnedToPrimary: boolean;
}

const storage = new AsyncLocalStorage<RequestContext>();

export const requestContext = {
  run<T>(ctx: RequestContext, fn: () => T): T {
    return storage.run(ctx, fn);
  },
  current(): RequestContext | undefined {
    return storage.getStore();
  },
  /**
   * The request acts for this user from now on (a public route that signed
   * them in: register, login, code login, refresh), so the read routing pins
   * the user's next reads to the primary after its writes, as it does for a
   * signed-in request: a new account is readable at once, whatever the
   * replica's lag. A request already acting for a user keeps that user.
   */
  actFor(userId: string): void {
    const ctx = storage.getStore();
    if (ctx && ctx.userId === undefined) ctx.userId = userId;
  },
  /** Runs work shared by many requests (a group commit) outside whichever request happened to start it. */
  outside<T>(fn: () => T): T {
    return storage.exit(fn);
  },
};
