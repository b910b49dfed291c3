import { decodeCursor, encodeCursor, keysetArgs, toPage } from './cursor';

describe('cursor pagination', () => {
  const pos = { createdAt: new Date('2026-11-23T10:00:00.123Z'), id: '0192a2b4-0000-7000-8000-000000000001' };

  it('round-trips a position through an opaque string', () => {
    const c = encodeCursor(pos);
    expect(c).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(c)).toEqual(pos);
  });

  it.each([
    '',
    'garbage',
    Buffer.from('[1,2]').toString('base64url'),
    Buffer.from('["not-a-date","x"]').toString('base64url'),
    // Shapes PostgreSQL would refuse (the ids are UUIDs, it has no year 0): never sent to it.
    Buffer.from('["2026-01-01T00:00:00Z","zzz"]').toString('base64url'),
    Buffer.from('["0000-01-01T00:00:00Z","0192a2b4-0000-7000-8000-000000000001"]').toString('base64url'),
  ])('rejects a tampered cursor %p with a validation error', (bad) => {
    expect(() => decodeCursor(bad)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });

  it('continues strictly after the cursor, breaking createdAt ties on id', () => {
    const args = keysetArgs(encodeCursor(pos));
    expect(args.orderBy).toEqual([{ createdAt: 'desc' }, { id: 'desc' }]);
    expect(args.where).toEqual({
      OR: [{ createdAt: { lt: pos.createdAt } }, { createdAt: pos.createdAt, id: { lt: pos.id } }],
    });
    expect(keysetArgs(encodeCursor(pos), 'asc').where).toEqual({
      OR: [{ createdAt: { gt: pos.createdAt } }, { createdAt: pos.createdAt, id: { gt: pos.id } }],
    });
    expect(keysetArgs(undefined).where).toEqual({});
  });

  it('cuts the look-ahead row and points the next cursor at the last row kept', () => {
    const rows = [1, 2, 3].map((i) => ({
      createdAt: new Date(i * 1000),
      id: `0192a2b4-0000-7000-8000-00000000000${i}`,
    }));
    const page = toPage(rows, 2);
    expect(page.items).toHaveLength(2);
    expect(decodeCursor(page.nextCursor!)).toEqual({ createdAt: rows[1].createdAt, id: rows[1].id });
    expect(toPage(rows, 3).nextCursor).toBeNull();
  });
});
