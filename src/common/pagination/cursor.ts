import { z } from 'zod';
import { ValidationError } from '../errors/domain-error';
import { isoDateTimeSchema } from '../validation/zod';
import { Page } from './page';

/** The position after the last row of a page, for keyset pagination on (createdAt, id). */
export interface KeysetPosition {
  createdAt: Date;
  id: string;
}

/** Every keyset-paged table has UUID ids: anything else would reach PostgreSQL as a bad uuid. */
const cursorShape = z.tuple([isoDateTimeSchema, z.guid()]);

export function encodeCursor(pos: KeysetPosition): string {
  return Buffer.from(JSON.stringify([pos.createdAt.toISOString(), pos.id])).toString('base64url');
}

export function decodeCursor(cursor: string): KeysetPosition {
  try {
    const parsed = cursorShape.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
    return { createdAt: new Date(parsed[0]), id: parsed[1] };
  } catch {
    throw new ValidationError([{ path: 'cursor', message: 'Invalid cursor' }]);
  }
}

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

/** `?cursor=&limit=` of every list endpoint. */
export const pageQuerySchema = z.strictObject({
  cursor: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).default(DEFAULT_PAGE_SIZE),
});
export type PageQuery = z.infer<typeof pageQuerySchema>;

export type SortDirection = 'desc' | 'asc';

/**
 * The Prisma `where` fragment and `orderBy` that continue a keyset page after
 * the cursor, newest first by default. Stable: ties on createdAt break on id.
 */
export function keysetArgs(cursor: string | undefined, direction: SortDirection = 'desc') {
  const orderBy = [{ createdAt: direction }, { id: direction }];
  if (!cursor) return { where: {}, orderBy };
  const pos = decodeCursor(cursor);
  const cmp = direction === 'desc' ? 'lt' : 'gt';
  return {
    where: { OR: [{ createdAt: { [cmp]: pos.createdAt } }, { createdAt: pos.createdAt, id: { [cmp]: pos.id } }] },
    orderBy,
  };
}

/** Cuts the extra row fetched (limit + 1) and makes the next cursor from the last row kept. */
export function toPage<T extends KeysetPosition>(rows: T[], limit: number): Page<T> {
  const hasMore = rows.length > limit;
  const items = hasMore ? rows.slice(0, limit) : rows;
  const last = items[items.length - 1];
  return new Page(items, hasMore && last ? encodeCursor(last) : null);
}
