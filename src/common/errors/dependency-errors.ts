/**
 * Recognises errors that say a dependency (PostgreSQL, Redis) could not be
 * reached or stopped answering, as opposed to one that answered with an
 * error: the first are a 503 the client may retry, the second a bug or a
 * client error. Errors are matched by shape, so this file imports none of the
 * clients.
 */

/** What a client reads in the 503 `DEPENDENCY_UNAVAILABLE` envelope (never which dependency or why). */
export const DEPENDENCY_UNAVAILABLE_MESSAGE = 'A service this request needs is unavailable; retry shortly';

/** pg-adapter error kinds (`meta.driverAdapterError.cause.kind`) that mean the connection, not the statement, failed. */
const ADAPTER_KINDS = new Set([
  'DatabaseNotReachable',
  'ConnectionClosed',
  'SocketTimeout',
  'TlsConnectionError',
  'TooManyConnections',
]);

/** Socket error codes of Node (pg and ioredis alike). */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * SQLSTATEs of a server that is going away, cannot take the session or did not
 * answer in time: admin/crash shutdown, cannot connect now, too many
 * connections, and a statement cancelled by `statement_timeout` (57014).
 */
const SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '57014']);

/** Messages of pg, its pool, ioredis and opossum that carry no code. */
const MESSAGES = [
  /^Connection terminated/, // pg: the server closed the socket
  /^timeout exceeded when trying to connect/, // pg Pool connectionTimeoutMillis
  /^Client has encountered a connection error and is not queryable/,
  /^Connection is closed\.?$/, // ioredis
  /^Command timed out$/, // ioredis commandTimeout
  /^Stream isn't writeable and enableOfflineQueue options is false/, // ioredis
  /^Reached the max retries per request limit/, // ioredis MaxRetriesPerRequestError
  /^Can't reach database server/, // Prisma
];

/** Prisma: cannot reach the server, timed out reaching it, the server closed the connection, no pooled connection in time. */
const PRISMA_CODES = new Set(['P1001', 'P1002', 'P1017', 'P2024']);

/** opossum: an open breaker (failing fast) and a call over the breaker's timeout. */
const BREAKER_CODES = new Set(['EOPENBREAKER', 'ETIMEDOUT']);

function isUnreachable(err: Record<string, unknown>): boolean {
  const code = typeof err.code === 'string' ? err.code : undefined;
  if (code && (SOCKET_CODES.has(code) || BREAKER_CODES.has(code) || SQLSTATES.has(code) || /^08...$/.test(code)))
    return true;
  if (code && PRISMA_CODES.has(code) && typeof err.name === 'string' && err.name.startsWith('PrismaClient'))
    return true;
  if (err.name === 'MaxRetriesPerRequestError') return true;
  const meta = err.meta as { driverAdapterError?: { cause?: { kind?: string; code?: string } } } | undefined;
  const cause = meta?.driverAdapterError?.cause;
  if (cause?.kind && ADAPTER_KINDS.has(cause.kind)) return true;
  if (
    cause?.kind === 'postgres' &&
    typeof cause.code === 'string' &&
    (SQLSTATES.has(cause.code) || /^08/.test(cause.code))
  )
    return true;
  const message = typeof err.message === 'string' ? err.message : '';
  return MESSAGES.some((m) => m.test(message));
}

/** True when `err` (or an error it wraps as `cause`) says PostgreSQL or Redis could not be reached. */
export function isDependencyUnavailable(err: unknown): boolean {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current && typeof current === 'object'; depth++) {
    const e = current as Record<string, unknown>;
    if (isUnreachable(e)) return true;
    // An AggregateError (a connection attempt to several addresses) fails when all its errors do.
    if (Array.isArray(e.errors) && e.errors.length > 0 && e.errors.every((x) => isDependencyUnavailable(x)))
      return true;
    current = e.cause;
  }
  return false;
}
