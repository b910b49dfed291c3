import { Injectable } from '@nestjs/common';
import { z } from 'zod';
import { Principal } from '../../common/auth/principal';
import { DomainError, ValidationError } from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { ROOM_KINDS } from './realtime-publisher';

/** The part of a room name before the colon (`trip`, `org`, `thread`, ...). */
export type RoomKind = string;

/**
 * Decides whether a user may read the room `<kind>:<id>`: resolves if so,
 * throws a DomainError if not (NOT_FOUND for what the user may not know
 * exists, FORBIDDEN for a role that may not read it).
 */
export type RoomChecker = (principal: Principal, id: string) => Promise<void>;

const KIND = /^[a-z][a-z0-9-]*$/;
const idSchema = z.uuid();

/**
 * Splits `<kind>:<uuid>`. A kind outside `kinds` (the contract's room names
 * plus any registered since) or an id that is not a UUID is VALIDATION_FAILED.
 */
export function parseRoom(room: string, kinds: Iterable<RoomKind> = ROOM_KINDS): { kind: RoomKind; id: string } {
  const colon = room.indexOf(':');
  const kind = colon > 0 ? room.slice(0, colon) : '';
  const id = colon > 0 ? room.slice(colon + 1) : '';
  const known = [...kinds];
  if (!known.includes(kind) || !idSchema.safeParse(id).success) {
    const names = known.map((k) => `${k}:<${k}Id>`);
    const list = names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}` : names[0];
    throw new ValidationError([{ path: 'room', message: `must be ${list} with a UUID` }]);
  }
  return { kind, id };
}

/**
 * Who may read a room. Realtime knows no feature: each feature registers the
 * room kinds it owns with a checker that applies the same services and rules
 * as its REST endpoints (`TripsModule`: `trip`, `OrgsModule`: `org`, `ChatModule`:
 * `thread`). A room of a kind the contract names but no feature has
 * registered is refused with ROOM_NOT_SUPPORTED.
 */
@Injectable()
export class RoomAuthorizer {
  private readonly checkers = new Map<RoomKind, RoomChecker>();
  private readonly known = new Set<RoomKind>(ROOM_KINDS);

  /** Called once per kind, by the feature that owns it, before the app listens (its module's `onModuleInit`). */
  register(kind: RoomKind, checker: RoomChecker): void {
    if (!KIND.test(kind)) throw new Error(`Room kind "${kind}" must be lower-case letters, digits and dashes`);
    if (this.checkers.has(kind)) throw new Error(`Room kind "${kind}" is already registered`);
    this.checkers.set(kind, checker);
    this.known.add(kind);
  }

  /** The room kinds a subscribe may name: the contract's, plus any registered since. */
  kinds(): ReadonlySet<RoomKind> {
    return this.known;
  }

  async authorize(principal: Principal, room: string): Promise<RoomKind> {
    const { kind, id } = parseRoom(room, this.known);
    const checker = this.checkers.get(kind);
    if (!checker)
      throw new DomainError(ErrorCode.ROOM_NOT_SUPPORTED, `${capitalized(kind)} rooms are not available yet`);
    await checker(principal, id);
    return kind;
  }
}

const capitalized = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
