import { Injectable } from '@nestjs/common';
import { z } from 'zod';
import { Principal } from '../../common/auth/principal';
import { DomainError, ValidationError } from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { OrgsService } from '../../modules/orgs/orgs.service';
import { TripsService } from '../../modules/trips/trips.service';

export type RoomKind = 'trip' | 'org' | 'thread';

/** Decides whether a user may read a thread room; the chat module provides it. */
export type ThreadAuthorizer = (principal: Principal, threadId: string) => Promise<void>;

const ROOM = /^(trip|org|thread):(.+)$/;
const idSchema = z.uuid();

export function parseRoom(room: string): { kind: RoomKind; id: string } {
  const m = ROOM.exec(room);
  if (!m || !idSchema.safeParse(m[2]).success) {
    throw new ValidationError([
      { path: 'room', message: 'must be trip:<tripId>, org:<orgId> or thread:<threadId> with a UUID' },
    ]);
  }
  return { kind: m[1] as RoomKind, id: m[2] };
}

/**
 * Who may read a room, with the same services and rules as the REST
 * endpoints: a trip room for the members of either of its orgs and its
 * driver (`GET /trips/:id`), an org room for the org's members except
 * DRIVERs (they see only their own trips, and the org room carries every
 * trip's status), a thread room for the thread's members (chat module).
 * Throws a DomainError (NOT_FOUND for what the user may not know exists).
 */
@Injectable()
export class RoomAuthorizer {
  private threads: ThreadAuthorizer | null = null;

  constructor(
    private readonly trips: TripsService,
    private readonly orgs: OrgsService,
  ) {}

  /** The chat module registers its thread membership check here. */
  setThreadAuthorizer(authorizer: ThreadAuthorizer): void {
    this.threads = authorizer;
  }

  async authorize(principal: Principal, room: string): Promise<RoomKind> {
    const { kind, id } = parseRoom(room);
    switch (kind) {
      case 'trip':
        await this.trips.requireVisible(principal, id);
        break;
      case 'org':
        await this.orgs.requireRole(principal, id, ['OWNER', 'ADMIN', 'ACCOUNTANT', 'STAFF']);
        break;
      case 'thread':
        if (!this.threads) throw new DomainError(ErrorCode.ROOM_NOT_SUPPORTED, 'Thread rooms are not available yet');
        await this.threads(principal, id);
        break;
    }
    return kind;
  }
}
