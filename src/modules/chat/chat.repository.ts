import { Injectable } from '@nestjs/common';
import { Db } from '../../infra/db/db.service';
import { ThreadScope } from './chat-rules';

export interface ThreadRow {
  id: string;
  tripId: string | null;
  accountId: string | null;
  title: string | null;
  orgIds: string[];
  driverId: string | null;
  lastMessageAt: Date | null;
  activityAt: Date;
  createdAt: Date;
}

/** What never changes in a thread once created: what membership is decided by. */
export type ThreadIdentity = Pick<ThreadRow, 'id' | 'tripId' | 'accountId' | 'orgIds' | 'driverId'>;

export interface ThreadWithUnread extends ThreadRow {
  unreadCount: number;
}

export interface MessageRow {
  id: string;
  /** bigint, as text. */
  seq: string;
  threadId: string;
  senderId: string;
  body: string;
  clientMessageId: string;
  attachmentIds: string[];
  createdAt: Date;
}

export interface AttachmentRow {
  id: string;
  uploaderId: string;
  storageKey: string;
  contentType: string;
  size: number;
  filename: string;
  messageId: string | null;
  /** The thread of the message that carries it. */
  threadId: string | null;
  createdAt: Date;
}

export interface NewThread {
  id: string;
  tripId: string | null;
  accountId: string | null;
  title: string | null;
  orgIds: string[];
  driverId: string | null;
  createdById: string;
}

export interface NewMessage {
  id: string;
  threadId: string;
  senderId: string;
  clientMessageId: string;
  body: string;
  attachmentIds: string[];
}

const THREAD_COLUMNS = `t.id, t.trip_id AS "tripId", t.account_id AS "accountId", t.title, t.org_ids AS "orgIds",
  t.driver_id AS "driverId", t.last_message_at AS "lastMessageAt", t.activity_at AS "activityAt",
  t.created_at AS "createdAt"`;

/** The caller's unread count: others' messages after the caller's read marker (needs `r`, the marker, joined). */
const UNREAD = `(SELECT count(*)::int FROM chat_messages m
   WHERE m.thread_id = t.id AND m.sender_id <> $1::uuid AND m.seq > COALESCE(r.last_read_seq, 0)) AS "unreadCount"`;

const MESSAGE_COLUMNS = `id, seq::text AS seq, thread_id AS "threadId", sender_id AS "senderId", body,
  client_message_id AS "clientMessageId", attachment_ids::text[] AS "attachmentIds", created_at AS "createdAt"`;

const ATTACHMENT_COLUMNS = `a.id, a.uploader_id AS "uploaderId", a.storage_key AS "storageKey",
  a.content_type AS "contentType", a.size::float8 AS size, a.filename, a.message_id AS "messageId",
  m.thread_id AS "threadId", a.created_at AS "createdAt"`;

/** The message lost to a bad attachment list: the transaction is rolled back. */
export class AttachmentsNotSendable extends Error {}

/** The message's thread does not exist (any more): nothing is stored. */
export class ThreadGone extends Error {}

/**
 * A message without attachments in one statement (its own transaction): the
 * insert, the thread's last_message_at / activity_at, and the message this
 * sender already sent with this clientMessageId when the insert conflicted
 * with a committed row. The main query cannot see the CTE's own insert, so it
 * answers either the new row (created) or the old one, never both. A conflict
 * with a send that committed after this statement's snapshot answers no row:
 * the caller then reads it with a fresh statement.
 */
const SEND_MESSAGE = `WITH ins AS (
    INSERT INTO chat_messages (id, thread_id, sender_id, client_message_id, body, attachment_ids)
    VALUES ($1, $2, $3, $4, $5, '{}')
    ON CONFLICT (thread_id, sender_id, client_message_id) DO NOTHING
    RETURNING ${MESSAGE_COLUMNS}),
  touched AS (
    UPDATE chat_threads t SET last_message_at = ins."createdAt", activity_at = GREATEST(t.activity_at, ins."createdAt")
    FROM ins WHERE t.id = $2
    RETURNING t.id)
  SELECT ins.*, true AS created FROM ins
  UNION ALL
  SELECT ${MESSAGE_COLUMNS}, false AS created FROM chat_messages
  WHERE thread_id = $2 AND sender_id = $3 AND client_message_id = $4`;

const FIND_SENT = `SELECT ${MESSAGE_COLUMNS} FROM chat_messages
  WHERE thread_id = $1 AND sender_id = $2 AND client_message_id = $3`;

/** chat_messages.thread_id names no thread (foreign key violation). */
const isMissingThread = (err: unknown) =>
  (err as { code?: string; constraint?: string } | null)?.code === '23503' &&
  (err as { constraint?: string }).constraint === 'chat_messages_thread_id_fkey';

/** Chat's tables (chat_threads, chat_messages, chat_read_markers, chat_attachments), all on the primary. */
@Injectable()
export class ChatRepository {
  constructor(private readonly db: Db) {}

  /** Creates the thread of a trip or account, or answers the one that exists (created: false). */
  async createThread(t: NewThread): Promise<{ thread: ThreadRow; created: boolean }> {
    const inserted = await this.db.sql<ThreadRow>(
      `INSERT INTO chat_threads AS t (id, trip_id, account_id, title, org_ids, driver_id, created_by_id)
       VALUES ($1, $2, $3, $4, $5::uuid[], $6, $7)
       ON CONFLICT DO NOTHING
       RETURNING ${THREAD_COLUMNS}`,
      [t.id, t.tripId, t.accountId, t.title, t.orgIds, t.driverId, t.createdById],
    );
    if (inserted[0]) return { thread: inserted[0], created: true };
    const existing = await this.db.sql<ThreadRow>(
      `SELECT ${THREAD_COLUMNS} FROM chat_threads t WHERE t.trip_id = $1 OR t.account_id = $2`,
      [t.tripId, t.accountId],
    );
    if (!existing[0]) throw new Error('thread insert conflicted but no thread was found');
    return { thread: existing[0], created: false };
  }

  async findThread(id: string): Promise<ThreadRow | null> {
    const rows = await this.db.sql<ThreadRow>(`SELECT ${THREAD_COLUMNS} FROM chat_threads t WHERE t.id = $1`, [id]);
    return rows[0] ?? null;
  }

  async unreadCount(threadId: string, userId: string): Promise<number> {
    const rows = await this.db.sql<{ unreadCount: number }>(
      `SELECT ${UNREAD} FROM chat_threads t
       LEFT JOIN chat_read_markers r ON r.thread_id = t.id AND r.user_id = $1::uuid
       WHERE t.id = $2`,
      [userId, threadId],
    );
    return rows[0]?.unreadCount ?? 0;
  }

  /**
   * One page of the user's threads, newest activity first, each with the
   * user's unread count: one statement, however many threads the page holds.
   */
  listThreads(
    userId: string,
    scope: ThreadScope,
    after: { activityAt: Date; id: string } | null,
    limit: number,
  ): Promise<ThreadWithUnread[]> {
    return this.db.sql<ThreadWithUnread>(
      `SELECT ${THREAD_COLUMNS}, ${UNREAD}
       FROM chat_threads t
       LEFT JOIN chat_read_markers r ON r.thread_id = t.id AND r.user_id = $1::uuid
       WHERE ((t.trip_id IS NOT NULL AND (t.org_ids && $2::uuid[] OR t.driver_id = ANY($3::uuid[])))
           OR (t.account_id IS NOT NULL AND t.org_ids && $4::uuid[]))
         AND ($5::timestamptz IS NULL OR (t.activity_at, t.id) < ($5::timestamptz, $6::uuid))
       ORDER BY t.activity_at DESC, t.id DESC
       LIMIT $7`,
      [
        userId,
        scope.tripOrgIds,
        scope.driverIds,
        scope.accountOrgIds,
        after?.activityAt ?? null,
        after?.id ?? null,
        limit,
      ],
      'chat_list_threads',
    );
  }

  /**
   * Stores a message unless this sender already sent this clientMessageId in
   * this thread (then answers that one, created: false). The unique index
   * makes concurrent sends of one id wait for each other: exactly one row.
   * The attachments named must be the sender's and not yet sent, else
   * AttachmentsNotSendable and nothing is stored.
   */
  async sendMessage(m: NewMessage): Promise<{ message: MessageRow; created: boolean }> {
    try {
      if (m.attachmentIds.length > 0) return await this.sendWithAttachments(m);
      const rows = await this.db.sql<MessageRow & { created: boolean }>(
        SEND_MESSAGE,
        [m.id, m.threadId, m.senderId, m.clientMessageId, m.body],
        'chat_send_message',
      );
      const row = rows[0];
      if (row) {
        const { created, ...message } = row;
        return { message, created };
      }
      // The same clientMessageId, sent concurrently, committed after this statement began.
      const existing = await this.db.sql<MessageRow>(FIND_SENT, [m.threadId, m.senderId, m.clientMessageId]);
      if (!existing[0]) throw new Error('message insert conflicted but no message was found');
      return { message: existing[0], created: false };
    } catch (err) {
      if (isMissingThread(err)) throw new ThreadGone();
      throw err;
    }
  }

  /** With attachments: the insert, the claim of the attachments and the thread's times in one transaction. */
  private sendWithAttachments(m: NewMessage): Promise<{ message: MessageRow; created: boolean }> {
    return this.db.sqlTransaction(async (tx) => {
      const inserted = await tx.query<MessageRow>(
        `INSERT INTO chat_messages (id, thread_id, sender_id, client_message_id, body, attachment_ids)
         VALUES ($1, $2, $3, $4, $5, $6::uuid[])
         ON CONFLICT (thread_id, sender_id, client_message_id) DO NOTHING
         RETURNING ${MESSAGE_COLUMNS}`,
        [m.id, m.threadId, m.senderId, m.clientMessageId, m.body, m.attachmentIds],
      );
      const message = inserted[0];
      if (!message) {
        const existing = await tx.query<MessageRow>(FIND_SENT, [m.threadId, m.senderId, m.clientMessageId]);
        if (!existing[0]) throw new Error('message insert conflicted but no message was found');
        return { message: existing[0], created: false };
      }
      const claimed = await tx.query<{ id: string }>(
        `UPDATE chat_attachments SET message_id = $1
         WHERE id = ANY($2::uuid[]) AND uploader_id = $3 AND message_id IS NULL
         RETURNING id`,
        [m.id, m.attachmentIds, m.senderId],
      );
      if (claimed.length !== m.attachmentIds.length) throw new AttachmentsNotSendable();
      await tx.query(
        `UPDATE chat_threads SET last_message_at = $2, activity_at = GREATEST(activity_at, $2) WHERE id = $1`,
        [m.threadId, message.createdAt],
      );
      return { message, created: true };
    });
  }

  /** A page of the thread's messages, newest first, strictly before `beforeSeq` when given. */
  listMessages(threadId: string, beforeSeq: string | null, limit: number): Promise<MessageRow[]> {
    return this.db.sql<MessageRow>(
      `SELECT ${MESSAGE_COLUMNS} FROM chat_messages
       WHERE thread_id = $1 AND ($2::bigint IS NULL OR seq < $2::bigint)
       ORDER BY seq DESC LIMIT $3`,
      [threadId, beforeSeq, limit],
      'chat_list_messages',
    );
  }

  /** Moves the user's read marker up to the message (never back); false when the message is not in the thread. */
  async markRead(threadId: string, userId: string, messageId: string): Promise<boolean> {
    const rows = await this.db.sql<{ found: number }>(
      `WITH target AS (SELECT seq FROM chat_messages WHERE id = $3 AND thread_id = $1),
       upsert AS (
         INSERT INTO chat_read_markers AS r (thread_id, user_id, last_read_seq)
         SELECT $1, $2, seq FROM target
         ON CONFLICT (thread_id, user_id) DO UPDATE
           SET last_read_seq = GREATEST(r.last_read_seq, EXCLUDED.last_read_seq), updated_at = now()
         RETURNING 1)
       SELECT count(*)::int AS found FROM target`,
      [threadId, userId, messageId],
    );
    return (rows[0]?.found ?? 0) > 0;
  }

  async insertAttachment(a: {
    id: string;
    uploaderId: string;
    storageKey: string;
    contentType: string;
    size: number;
    filename: string;
  }): Promise<AttachmentRow> {
    const rows = await this.db.sql<AttachmentRow>(
      `WITH a AS (
         INSERT INTO chat_attachments (id, uploader_id, storage_key, content_type, size, filename)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING *)
       SELECT ${ATTACHMENT_COLUMNS} FROM a LEFT JOIN chat_messages m ON m.id = a.message_id`,
      [a.id, a.uploaderId, a.storageKey, a.contentType, a.size, a.filename],
    );
    return rows[0];
  }

  async findAttachment(id: string): Promise<AttachmentRow | null> {
    const rows = await this.db.sql<AttachmentRow>(
      `SELECT ${ATTACHMENT_COLUMNS} FROM chat_attachments a LEFT JOIN chat_messages m ON m.id = a.message_id
       WHERE a.id = $1`,
      [id],
    );
    return rows[0] ?? null;
  }

  /** Attachments no message carries, created before `before`: the oldest first. */
  findOrphans(before: Date, limit: number): Promise<{ id: string; storageKey: string }[]> {
    return this.db.sql(
      `SELECT id, storage_key AS "storageKey" FROM chat_attachments
       WHERE message_id IS NULL AND created_at < $1 ORDER BY created_at LIMIT $2`,
      [before, limit],
    );
  }

  /** Deletes the row if it is still an orphan (a message may have claimed it meanwhile); true when deleted. */
  async deleteOrphan(id: string): Promise<boolean> {
    const rows = await this.db.sql(`DELETE FROM chat_attachments WHERE id = $1 AND message_id IS NULL RETURNING id`, [
      id,
    ]);
    return rows.length > 0;
  }
}
