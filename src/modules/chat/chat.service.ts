import { Injectable } from '@nestjs/common';
import { uuidv7 } from 'uuidv7';
import { Principal } from '../../common/auth/principal';
import { DomainError, NotFoundError, UnprocessableFieldsError } from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { decodeCursor, encodeCursor } from '../../common/pagination/cursor';
import { Page } from '../../common/pagination/page';
import { RealtimePublisher, threadRoom } from '../../infra/realtime/realtime-publisher';
import { LedgerService } from '../ledger/ledger.service';
import { OrgsService } from '../orgs/orgs.service';
import { TripsService } from '../trips/trips.service';
import {
  decodeMessageCursor,
  encodeMessageCursor,
  isAccountThreadMember,
  messageBody,
  parseThreadFields,
  projectThread,
  threadScope,
} from './chat-rules';
import { ImmutableMemo } from '../../infra/cache/immutable-memo';
import {
  AttachmentsNotSendable,
  ChatRepository,
  MessageRow,
  ThreadGone,
  ThreadIdentity,
  ThreadRow,
} from './chat.repository';
import { CreateThreadInput, ListThreadsInput, MessageView, SendMessageInput, ThreadView } from './chat.schemas';

/** What a create or a send answers, and whether it was already there (200 rather than 201). */
export interface Created<T> {
  created: boolean;
  body: T;
}

function threadView(t: ThreadRow, unreadCount: number): ThreadView {
  return {
    id: t.id,
    tripId: t.tripId,
    accountId: t.accountId,
    title: t.title,
    unreadCount,
    lastMessageAt: t.lastMessageAt?.toISOString() ?? null,
    createdAt: t.createdAt.toISOString(),
  };
}

export function messageView(m: MessageRow): MessageView {
  return {
    id: m.id,
    threadId: m.threadId,
    senderId: m.senderId,
    body: m.body,
    clientMessageId: m.clientMessageId,
    attachmentIds: m.attachmentIds,
    createdAt: m.createdAt.toISOString(),
  };
}

/** Threads whose identity this node keeps (a bounded map, the oldest dropped first). */
const IDENTITY_CACHE_MAX = 20_000;

const isNotFound = (err: unknown) => err instanceof DomainError && err.code === ErrorCode.NOT_FOUND;

/**
 * Threads (one per trip, one per ledger account) and their messages. Who is
 * a member is computed on every read and write from the current memberships
 * (OrgsService), the trip's visibility (TripsService) and the account's two
 * orgs (LedgerService): see docs/chat.md. A non-member gets 404.
 */
@Injectable()
export class ChatService {
  /**
   * Thread ids → what membership is decided by (trip or account, orgs,
   * driver): fixed when the thread is created and never updated, threads are
   * never deleted by the app, so safe to keep (membership itself is decided
   * afresh on every call, from the cached memberships and trip access).
   */
  private readonly identities = new ImmutableMemo<ThreadIdentity>('chat_thread', IDENTITY_CACHE_MAX);

  constructor(
    private readonly repo: ChatRepository,
    private readonly orgs: OrgsService,
    private readonly trips: TripsService,
    private readonly ledger: LedgerService,
    private readonly realtime: RealtimePublisher,
  ) {}

  /** Whether the user is a member of the thread now. */
  async isMember(principal: Principal, thread: ThreadIdentity): Promise<boolean> {
    if (thread.tripId) {
      try {
        await this.trips.requireVisible(principal, thread.tripId);
        return true;
      } catch (err) {
        if (isNotFound(err)) return false;
        throw err;
      }
    }
    const roles = await this.orgs.rolesOf(principal.userId, thread.orgIds);
    return isAccountThreadMember(roles.values());
  }

  /** The thread's identity (see `identities`), null when there is no such thread. */
  private identity(threadId: string): Promise<ThreadIdentity | null> {
    return this.identities.get(threadId, async () => {
      const thread = await this.repo.findThread(threadId);
      if (!thread) return null;
      const { id, tripId, accountId, orgIds, driverId } = thread;
      return { id, tripId, accountId, orgIds, driverId };
    });
  }

  /** The thread's identity, if the caller is a member of it now; 404 otherwise. No read of the thread row once known. */
  async requireMember(principal: Principal, threadId: string): Promise<ThreadIdentity> {
    const thread = await this.identity(threadId);
    if (!thread || !(await this.isMember(principal, thread))) throw new NotFoundError('Thread');
    return thread;
  }

  async createThread(principal: Principal, input: CreateThreadInput): Promise<Created<ThreadView>> {
    let subject: { tripId: string | null; accountId: string | null; orgIds: string[]; driverId: string | null };
    if (input.tripId) {
      const { access } = await this.trips.requireVisible(principal, input.tripId);
      subject = {
        tripId: input.tripId,
        accountId: null,
        orgIds: [...new Set([access.sourceOrgId, access.destinationOrgId])],
        driverId: access.driverId,
      };
    } else {
      const accountId = input.accountId!;
      const orgs = await this.ledger.accountOrgs(accountId);
      if (!orgs) throw new NotFoundError('Account');
      const roles = await this.orgs.rolesOf(principal.userId, [orgs.orgAId, orgs.orgBId]);
      if (!isAccountThreadMember(roles.values())) throw new NotFoundError('Account');
      subject = { tripId: null, accountId, orgIds: [orgs.orgAId, orgs.orgBId], driverId: null };
    }
    const { thread, created } = await this.repo.createThread({
      id: uuidv7(),
      ...subject,
      title: input.title ?? null,
      createdById: principal.userId,
    });
    const unread = created ? 0 : await this.repo.unreadCount(thread.id, principal.userId);
    return { created, body: threadView(thread, unread) };
  }

  async getThread(principal: Principal, threadId: string, rawFields?: string): Promise<Partial<ThreadView>> {
    const fields = parseThreadFields(rawFields);
    // The row itself, for its times (the cached identity has none).
    const thread = await this.repo.findThread(threadId);
    if (!thread || !(await this.isMember(principal, thread))) throw new NotFoundError('Thread');
    const unread = await this.repo.unreadCount(thread.id, principal.userId);
    return projectThread(threadView(thread, unread), fields);
  }

  /** The caller's threads, newest activity first, with unread counts: the page is one statement. */
  async listThreads(principal: Principal, q: ListThreadsInput): Promise<Page<Partial<ThreadView>>> {
    const fields = parseThreadFields(q.fields);
    const after = q.cursor ? decodeCursor(q.cursor) : null;
    const [memberships, driverIds] = await Promise.all([
      this.orgs.membershipsOf(principal.userId),
      this.orgs.activeDriverIdsOf(principal.userId),
    ]);
    const rows = await this.repo.listThreads(
      principal.userId,
      threadScope(memberships, driverIds),
      after ? { activityAt: after.createdAt, id: after.id } : null,
      q.limit + 1,
    );
    const items = rows.slice(0, q.limit);
    const last = items[items.length - 1];
    const next = rows.length > q.limit && last ? encodeCursor({ createdAt: last.activityAt, id: last.id }) : null;
    return new Page(
      items.map((t) => projectThread(threadView(t, t.unreadCount), fields)),
      next,
    );
  }

  async listMessages(
    principal: Principal,
    threadId: string,
    cursor: string | undefined,
    limit: number,
  ): Promise<Page<MessageView>> {
    const beforeSeq = cursor ? decodeMessageCursor(cursor) : null;
    await this.requireMember(principal, threadId);
    const rows = await this.repo.listMessages(threadId, beforeSeq, limit + 1);
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return new Page(items.map(messageView), rows.length > limit && last ? encodeMessageCursor(last.seq) : null);
  }

  /**
   * Sends a message (or answers the one this sender already sent with this
   * clientMessageId) and publishes a new one to `thread:<id>` as `chat.message`.
   */
  async send(principal: Principal, threadId: string, input: SendMessageInput): Promise<Created<MessageView>> {
    await this.requireMember(principal, threadId);
    const body = messageBody(input.body, input.attachmentIds.length);
    let result: { message: MessageRow; created: boolean };
    try {
      result = await this.repo.sendMessage({
        id: uuidv7(),
        threadId,
        senderId: principal.userId,
        clientMessageId: input.clientMessageId,
        body,
        attachmentIds: input.attachmentIds,
      });
    } catch (err) {
      if (err instanceof ThreadGone) {
        this.identities.delete(threadId);
        throw new NotFoundError('Thread');
      }
      if (err instanceof AttachmentsNotSendable)
        throw new UnprocessableFieldsError([
          { path: 'attachmentIds', message: 'each must be an attachment you uploaded that no message carries yet' },
        ]);
      throw err;
    }
    const message = messageView(result.message);
    if (result.created) this.realtime.publish(threadRoom(threadId), 'chat.message', { threadId, message });
    return { created: result.created, body: message };
  }

  /** Moves the caller's read marker forward to `lastMessageId` (never back). */
  async markRead(principal: Principal, threadId: string, lastMessageId: string): Promise<void> {
    await this.requireMember(principal, threadId);
    if (!(await this.repo.markRead(threadId, principal.userId, lastMessageId))) throw new NotFoundError('Message');
  }
}
