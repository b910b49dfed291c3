import { ErrorCode } from './error-codes';

/**
 * The SQLSTATE of a PostgreSQL error, however it reached us: a Prisma error of
 * the pg adapter (`meta.driverAdapterError.cause.originalCode`), the adapter's
 * own DriverAdapterError (`cause.originalCode`), or a raw `pg` error (`code`,
 * used by the ping writer and `Db.sql` / `Db.sqlTransaction`). Undefined when
 * PostgreSQL did not answer with an error (connection lost, not a database error).
 */
export function sqlStateOf(err: unknown): string | undefined {
  if (!err || typeof err !== 'object') return undefined;
  const e = err as { code?: unknown; severity?: unknown; meta?: { driverAdapterError?: unknown }; cause?: unknown };
  const adapterError = (e.meta?.driverAdapterError ?? err) as { cause?: { originalCode?: unknown } };
  const original = adapterError?.cause?.originalCode;
  if (typeof original === 'string' && SQLSTATE.test(original)) return original;
  // pg's DatabaseError: a five-character code and a severity (Node's own errors have codes like ECONNRESET).
  if (typeof e.code === 'string' && SQLSTATE.test(e.code) && typeof e.severity === 'string') return e.code;
  return undefined;
}

const SQLSTATE = /^[0-9A-Z]{5}$/;

/**
 * SQLSTATE classes after which nothing says the statement was judged on its
 * merits: 08 connection exception, 53 insufficient resources, 57 operator
 * intervention (shutdown, cancel, statement timeout).
 */
const NOT_THE_STATEMENT = new Set(['08', '53', '57']);

/**
 * True when PostgreSQL refused the statement itself (bad value, constraint,
 * raised exception): its implicit transaction rolled back, nothing of it is
 * stored, and running its parts again apart is safe. False for a connection
 * failure or an unknown outcome, and for anything that is not a database error.
 */
export function statementRefused(err: unknown): boolean {
  const state = sqlStateOf(err);
  return state !== undefined && !NOT_THE_STATEMENT.has(state.slice(0, 2));
}

/** What a client-caused database error becomes in the envelope. */
export interface ClientDatabaseError {
  code: ErrorCode;
  message: string;
}

/** Values PostgreSQL cannot take: the request, not the server, is at fault. */
const BAD_VALUE: Record<string, string> = {
  '22001': 'A text value is too long',
  '22003': 'A number is out of range',
  '22007': 'A date or time is not valid',
  '22008': 'A date or time is out of range',
  '22021': 'A text value is not valid Unicode text',
  '22P02': 'A value is not valid for its type',
  '22P05': 'A text value is not valid Unicode text',
};

/**
 * The envelope code of a database error the client caused (a value PostgreSQL
 * cannot store, an id that refers to nothing, a duplicate), or null for
 * anything else: a CHECK or NOT NULL violation guards the server's own
 * invariants, and an unreachable database is a dependency down; those stay
 * 5xx. Messages never carry SQL text.
 */
export function clientDatabaseError(err: unknown): ClientDatabaseError | null {
  const state = sqlStateOf(err);
  if (!state) return null;
  const bad = BAD_VALUE[state];
  if (bad) return { code: ErrorCode.VALIDATION_FAILED, message: bad };
  switch (state) {
    case '23503':
      // Deleting a row others still refer to is a conflict; referring to a row that does not exist is a 404.
      return stillReferenced(err)
        ? { code: ErrorCode.CONFLICT, message: 'The record is still referred to by others' }
        : { code: ErrorCode.NOT_FOUND, message: 'A record this request refers to was not found' };
    case '23505':
      return { code: ErrorCode.ALREADY_EXISTS, message: 'A record with these values already exists' };
    default:
      return null;
  }
}

/** True when the error is a foreign-key violation: an id of the statement refers to no row. */
export function isForeignKeyViolation(err: unknown): boolean {
  return sqlStateOf(err) === '23503' && !stillReferenced(err);
}

/** A 23503 raised by deleting (or re-keying) a row that others refer to, rather than by a dangling reference. */
function stillReferenced(err: unknown): boolean {
  return /update or delete on table|still referenced/.test(messageOf(err));
}

function messageOf(err: unknown): string {
  const e = err as {
    message?: unknown;
    detail?: unknown;
    meta?: { driverAdapterError?: { cause?: { originalMessage?: unknown } } };
  };
  return [e.message, e.detail, e.meta?.driverAdapterError?.cause?.originalMessage]
    .filter((s): s is string => typeof s === 'string')
    .join(' ');
}
