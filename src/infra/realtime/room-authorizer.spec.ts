import { Principal } from '../../common/auth/principal';
import { DomainError, ForbiddenError } from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { parseRoom, RoomAuthorizer } from './room-authorizer';

const principal: Principal = { userId: 'u1', sessionId: 's1' };
const id = '0190f0a0-0000-7000-8000-000000000000';

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: unknown) => (e instanceof DomainError ? e.code : String(e)),
  );

describe('RoomAuthorizer', () => {
  it('asks the checker its feature registered for the kind, with the id', async () => {
    const rooms = new RoomAuthorizer();
    const asked: string[] = [];
    rooms.register('trip', async (p, tripId) => {
      asked.push(`${p.userId}:${tripId}`);
    });
    rooms.register('org', async () => {
      throw new ForbiddenError();
    });
    await expect(rooms.authorize(principal, `trip:${id}`)).resolves.toBe('trip');
    expect(asked).toEqual([`u1:${id}`]);
    expect(await codeOf(rooms.authorize(principal, `org:${id}`))).toBe(ErrorCode.FORBIDDEN);
  });

  it('a kind the contract names but no feature registered (thread) is ROOM_NOT_SUPPORTED; an unknown kind is VALIDATION_FAILED', async () => {
    const rooms = new RoomAuthorizer();
    expect(await codeOf(rooms.authorize(principal, `thread:${id}`))).toBe(ErrorCode.ROOM_NOT_SUPPORTED);
    expect(await codeOf(rooms.authorize(principal, `trip:${id}`))).toBe(ErrorCode.ROOM_NOT_SUPPORTED);
    expect(await codeOf(rooms.authorize(principal, `truck:${id}`))).toBe(ErrorCode.VALIDATION_FAILED);
    expect(await codeOf(rooms.authorize(principal, 'trip:1'))).toBe(ErrorCode.VALIDATION_FAILED);
    expect(await codeOf(rooms.authorize(principal, `:${id}`))).toBe(ErrorCode.VALIDATION_FAILED);
  });

  it('a feature may register a kind of its own (tag rooms); a kind is registered once', async () => {
    const rooms = new RoomAuthorizer();
    rooms.register('tag', async () => undefined);
    await expect(rooms.authorize(principal, `tag:${id}`)).resolves.toBe('tag');
    expect(() => rooms.register('tag', async () => undefined)).toThrow(/already registered/);
    expect(() => rooms.register('Bad:kind', async () => undefined)).toThrow(/lower-case/);
  });
});

describe('parseRoom', () => {
  it('splits kind and id, and names the accepted kinds when refusing', () => {
    expect(parseRoom(`org:${id}`)).toEqual({ kind: 'org', id });
    try {
      parseRoom('nope');
      throw new Error('accepted');
    } catch (e) {
      expect((e as DomainError).details).toEqual([
        { path: 'room', message: 'must be trip:<tripId>, org:<orgId> or thread:<threadId> with a UUID' },
      ]);
    }
  });
});
