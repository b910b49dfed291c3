import { isDependencyUnavailable } from './dependency-errors';
import { toErrorResponse } from './error-response';

const prismaError = (code: string, cause: Record<string, unknown>) =>
  Object.assign(new Error('Invalid invocation'), {
    name: 'PrismaClientKnownRequestError',
    code,
    meta: { driverAdapterError: { name: 'DriverAdapterError', cause } },
  });
const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('isDependencyUnavailable', () => {
  it.each([
    [
      'Prisma: server not reachable',
      prismaError('P1001', { kind: 'DatabaseNotReachable', host: '127.0.0.1', port: 1 }),
    ],
    ['Prisma raw query: connection closed', prismaError('P2010', { kind: 'ConnectionClosed' })],
    ['Prisma: socket timeout', prismaError('P2010', { kind: 'SocketTimeout' })],
    ['Prisma: server shutting down', prismaError('P2010', { kind: 'postgres', code: '57P01', message: 'terminating' })],
    ['Prisma: connection exception class', prismaError('P2010', { kind: 'postgres', code: '08006', message: 'x' })],
    ['pg: refused', withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')],
    ['pg: admin shutdown', withCode('terminating connection due to administrator command', '57P01')],
    ['pg: cannot connect now', withCode('the database system is starting up', '57P03')],
    ['pg: connection failure', withCode('connection failure', '08006')],
    ['pg: socket ended', new Error('Connection terminated unexpectedly')],
    ['pg pool: no connection in time', new Error('timeout exceeded when trying to connect')],
    ['ioredis: closed', new Error('Connection is closed.')],
    ['ioredis: command timeout', new Error('Command timed out')],
    [
      'ioredis: retries',
      Object.assign(new Error('Reached the max retries per request limit (which is 1).'), {
        name: 'MaxRetriesPerRequestError',
      }),
    ],
    ['opossum: open', withCode('Breaker is open', 'EOPENBREAKER')],
    ['opossum: timeout', withCode('Timed out after 500ms', 'ETIMEDOUT')],
    ['wrapped in a cause', new Error('outer', { cause: withCode('connect ECONNREFUSED', 'ECONNREFUSED') })],
  ])('%s', (_name, err) => {
    expect(isDependencyUnavailable(err)).toBe(true);
    expect(toErrorResponse(err, 'r')).toMatchObject({
      status: 503,
      body: { success: false, error: { code: 'DEPENDENCY_UNAVAILABLE', requestId: 'r' } },
      unexpected: false,
    });
  });

  it.each([
    ['a unique violation', prismaError('P2002', { kind: 'UniqueConstraintViolation' })],
    ['a SQL error', prismaError('P2010', { kind: 'postgres', code: '22021', message: 'invalid byte sequence' })],
    ['a raw pg syntax error', withCode('syntax error', '42601')],
    ['a Redis reply error', Object.assign(new Error('WRONGTYPE Operation against a key'), { name: 'ReplyError' })],
    ['a plain error', new Error('boom')],
    ['not an error', 'text'],
  ])('not %s', (_name, err) => {
    expect(isDependencyUnavailable(err)).toBe(false);
  });
});
