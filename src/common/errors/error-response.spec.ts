import { BadRequestException, NotFoundException, PayloadTooLargeException } from '@nestjs/common';
import { DatabaseError } from 'pg';
import { z } from 'zod';
import { DomainError, NotFoundError } from './domain-error';
import { ErrorCode, httpStatusOf } from './error-codes';
import { toErrorResponse } from './error-response';

describe('toErrorResponse', () => {
  it('maps every error code to a 4xx or 5xx status', () => {
    for (const code of Object.values(ErrorCode)) {
      const status = httpStatusOf(code);
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(600);
    }
  });

  it('domain errors keep their code, message and details', () => {
    const res = toErrorResponse(
      new DomainError(ErrorCode.ALREADY_MEMBER, 'dup', [{ path: 'phone', message: 'x' }]),
      'r1',
    );
    expect(res).toMatchObject({
      status: 409,
      body: {
        success: false,
        error: { code: 'ALREADY_MEMBER', message: 'dup', details: [{ path: 'phone', message: 'x' }], requestId: 'r1' },
      },
    });
    expect(toErrorResponse(new NotFoundError('Org'), 'r').status).toBe(404);
  });

  it('zod errors are 400 with one detail per issue', () => {
    const err = z.strictObject({ a: z.number() }).safeParse({ a: 'x', b: 1 }).error!;
    const res = toErrorResponse(err, 'r');
    expect(res.status).toBe(400);
    expect(res.body.error.details?.map((d) => d.path).sort()).toEqual(['', 'a']);
  });

  it('Prisma unique and not-found errors become 409 and 404', () => {
    const p2002 = Object.assign(new Error('Unique constraint failed on the fields: (`phone`)'), {
      name: 'PrismaClientKnownRequestError',
      code: 'P2002',
    });
    const p2025 = Object.assign(new Error('No record'), { name: 'PrismaClientKnownRequestError', code: 'P2025' });
    expect(toErrorResponse(p2002, 'r')).toMatchObject({ status: 409, body: { error: { code: 'ALREADY_EXISTS' } } });
    expect(toErrorResponse(p2002, 'r').body.error.message).not.toContain('phone');
    expect(toErrorResponse(p2025, 'r')).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });
  });

  it('database errors a client causes are 4xx, as raw pg errors and through the Prisma pg adapter', () => {
    const pg = (code: string, message: string) => {
      const err = new DatabaseError(message, 0, 'error');
      err.code = code;
      err.severity = 'ERROR';
      return err;
    };
    const prisma = (code: string, originalMessage = 'x') =>
      Object.assign(new Error('Invalid `prisma.$queryRaw()` invocation'), {
        name: 'PrismaClientKnownRequestError',
        code: 'P2010',
        meta: { driverAdapterError: { cause: { kind: 'postgres', originalCode: code, originalMessage } } },
      });
    const of = (err: unknown) => `${toErrorResponse(err, 'r').status} ${toErrorResponse(err, 'r').body.error.code}`;
    for (const code of ['22021', '22P02', '22P05', '22007', '22008', '22003', '22001']) {
      expect([code, of(pg(code, 'bad value')), of(prisma(code))]).toEqual([
        code,
        '400 VALIDATION_FAILED',
        '400 VALIDATION_FAILED',
      ]);
    }
    expect(of(pg('23503', 'insert or update on table "trips" violates foreign key constraint "x"'))).toBe(
      '404 NOT_FOUND',
    );
    expect(of(prisma('23503', 'update or delete on table "orgs" violates foreign key constraint "x"'))).toBe(
      '409 CONFLICT',
    );
    expect(of(pg('23505', 'duplicate key'))).toBe('409 ALREADY_EXISTS');
    // Not the client's doing (the database unreachable or shutting down, a broken invariant): never a 4xx.
    for (const err of [
      ...['08006', '57P01', '53300', '23514', '42P01'].map((code) => pg(code, 'x')),
      Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
    ])
      expect(toErrorResponse(err, 'r').status).toBeGreaterThanOrEqual(500);
  });

  it('framework errors keep their status in the envelope', () => {
    expect(toErrorResponse(new NotFoundException('Cannot GET /x'), 'r').body.error.code).toBe('ROUTE_NOT_FOUND');
    expect(toErrorResponse(new PayloadTooLargeException(), 'r').status).toBe(413);
    expect(toErrorResponse(new BadRequestException('Unexpected end of JSON input'), 'r').body.error.code).toBe(
      'MALFORMED_JSON',
    );
    expect(toErrorResponse({ code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 }, 'r').status).toBe(413);
  });

  it('anything unexpected is a bare 500: no message, stack or SQL', () => {
    const err = new Error('relation "users" does not exist at SELECT * FROM users');
    const res = toErrorResponse(err, 'req-9');
    expect(res.status).toBe(500);
    expect(res.unexpected).toBe(true);
    expect(res.body).toEqual({
      success: false,
      error: { code: 'INTERNAL', message: 'Internal error', requestId: 'req-9' },
    });
  });
});
