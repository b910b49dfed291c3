import { z } from 'zod';
import { ValidationError } from '../../common/errors/domain-error';
import { isoDateTimeSchema } from '../../common/validation/zod';

/** The position after the last entry of a page: entries are ordered by (createdAt, seq). */
export interface SeqPosition {
  createdAt: Date;
  seq: number;
}

const shape = z.tuple([isoDateTimeSchema, z.int().min(0)]);

export function encodeSeqCursor(pos: SeqPosition): string {
  return Buffer.from(JSON.stringify([pos.createdAt.toISOString(), pos.seq])).toString('base64url');
}

export function decodeSeqCursor(cursor: string): SeqPosition {
  try {
    const [at, seq] = shape.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
    return { createdAt: new Date(at), seq };
  } catch {
    throw new ValidationError([{ path: 'cursor', message: 'Invalid cursor' }]);
  }
}
