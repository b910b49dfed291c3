import { Global, Injectable, Module } from '@nestjs/common';
import { uuidv7 } from 'uuidv7';
import type { DbTx, SqlTx } from '../db/db.service';

/** One domain event for one org, as the outbox stores it. */
export interface OutboxEventInput {
  type: string;
  orgId: string;
  /** Serialized with JSON.stringify (dates become ISO strings). */
  data: unknown;
}

const INSERT = `INSERT INTO outbox_events (id, type, org_id, data, created_at)
  SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::jsonb[], $5::timestamptz[])`;

/**
 * The port features write domain events through: rows of `outbox_events`,
 * written inside the caller's transaction (so an event exists exactly when its
 * change committed). Whoever delivers them (webhooks) listens with
 * `onWritten` to be woken right after a commit on this node; other nodes'
 * events are found by polling.
 */
@Injectable()
export class OutboxWriter {
  private readonly listeners: (() => void)[] = [];

  /** Writes the events in a `Db.sqlTransaction`; listeners are woken after its commit. */
  async writeIn(tx: SqlTx, events: readonly OutboxEventInput[]): Promise<void> {
    if (events.length === 0) return;
    await tx.query(INSERT, params(events));
    tx.afterCommit(() => this.written());
  }

  /** Writes the events in a Prisma interactive transaction; call `written()` once it committed. */
  async writeInPrisma(tx: DbTx, events: readonly OutboxEventInput[]): Promise<void> {
    if (events.length === 0) return;
    await tx.$executeRawUnsafe(INSERT, ...params(events));
  }

  /**
   * The id and time of one event a caller inserts itself, in a statement of
   * its own (columns as `writeIn` writes them); call `written()` once it committed.
   */
  newEvent(): { id: string; createdAt: string } {
    return { id: uuidv7(), createdAt: new Date().toISOString() };
  }

  /** Tells the listeners that events were committed (cheap; they coalesce). */
  written(): void {
    for (const l of this.listeners) l();
  }

  onWritten(listener: () => void): void {
    this.listeners.push(listener);
  }
}

function params(events: readonly OutboxEventInput[]): unknown[] {
  const now = new Date().toISOString();
  return [
    events.map(() => uuidv7()),
    events.map((e) => e.type),
    events.map((e) => e.orgId),
    events.map((e) => JSON.stringify(e.data ?? null)),
    events.map(() => now),
  ];
}

/** Global: every feature that writes events gets the one writer. */
@Global()
@Module({ providers: [OutboxWriter], exports: [OutboxWriter] })
export class OutboxModule {}
