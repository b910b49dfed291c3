/**
 * Read-your-writes across nodes: after a user writes, their reads go to the
 * primary for a short window, because the replica may not have replayed the
 * write yet. The window is kept in a shared store (Redis) so it holds whichever
 * node serves the next request.
 */
export interface PinStore {
  isPinned(userId: string): Promise<boolean>;
  pin(userId: string, ms: number): Promise<void>;
}

export interface RoutedRequest {
  userId?: string;
  wrote: boolean;
  pinnedToPrimary: boolean;
}

export class ReadRouter {
  constructor(
    private readonly store: PinStore,
    private readonly windowMs: number,
    private readonly hasReplica: boolean,
  ) {}

  /** Before the handler: decide where this request's reads go. */
  async beforeRequest(req: RoutedRequest): Promise<void> {
    if (!this.hasReplica || !req.userId || this.windowMs === 0) return;
    // Without the shared store we cannot know: the primary is always safe.
    req.pinnedToPrimary = await this.store.isPinned(req.userId).catch(() => true);
  }

  /** After the handler, before the response: remember that this user wrote. */
  async afterRequest(req: RoutedRequest): Promise<void> {
    if (!this.hasReplica || !req.userId || !req.wrote || this.windowMs === 0) return;
    await this.store.pin(req.userId, this.windowMs).catch(() => undefined);
  }

  /** True when reads of this request must go to the primary. */
  readsFromPrimary(req: RoutedRequest | undefined): boolean {
    if (!this.hasReplica) return true;
    return !!req && (req.pinnedToPrimary || req.wrote);
  }
}
