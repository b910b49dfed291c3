import { HttpException } from '@nestjs/common';
import { ZodError } from 'zod';
import { clientDatabaseError } from './database-errors';
import { DEPENDENCY_UNAVAILABLE_MESSAGE, isDependencyUnavailable } from './dependency-errors';
import { DomainError, ErrorDetail } from './domain-error';
import { ErrorCode, httpStatusOf } from './error-codes';

export interface ErrorBody {
  success: false;
  error: { code: string; message: string; details?: ErrorDetail[]; requestId?: string };
}

export interface ErrorResponse {
  status: number;
  body: ErrorBody;
  headers?: Record<string, string>;
  /** Unexpected errors are logged with their stack; expected ones are not. */
  unexpected: boolean;
}

export function zodDetails(error: ZodError): ErrorDetail[] {
  return error.issues.map((issue) => ({
    path: issue.path.map(String).join('.'),
    message: issue.message,
    code: issue.code,
  }));
}

function fromCode(
  code: ErrorCode,
  message: string,
  details?: ErrorDetail[],
  headers?: Record<string, string>,
  status = httpStatusOf(code),
) {
  const body: ErrorBody = { success: false, error: { code, message } };
  if (details?.length) body.error.details = details;
  return { status, body, headers, unexpected: false };
}

/** Fastify's own errors (body parsing, size, content type) by their code. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: ErrorCode.PAYLOAD_TOO_LARGE,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ErrorCode.BAD_REQUEST,
  FST_ERR_CTP_EMPTY_JSON_BODY: ErrorCode.MALFORMED_JSON,
  FST_ERR_CTP_INVALID_JSON_BODY: ErrorCode.MALFORMED_JSON,
};

const PRISMA_CODES: Record<string, [ErrorCode, string]> = {
  P2002: [ErrorCode.ALREADY_EXISTS, 'A record with these values already exists'],
  P2025: [ErrorCode.NOT_FOUND, 'Record not found'],
};

function httpStatusToCode(status: number): ErrorCode {
  switch (status) {
    case 400:
      return ErrorCode.BAD_REQUEST;
    case 401:
      return ErrorCode.UNAUTHENTICATED;
    case 403:
      return ErrorCode.FORBIDDEN;
    case 404:
      return ErrorCode.ROUTE_NOT_FOUND;
    case 405:
      return ErrorCode.METHOD_NOT_ALLOWED;
    case 409:
      return ErrorCode.CONFLICT;
    case 413:
      return ErrorCode.PAYLOAD_TOO_LARGE;
    case 415:
      return ErrorCode.UNSUPPORTED_MEDIA_TYPE;
    case 422:
      return ErrorCode.UNPROCESSABLE;
    case 429:
      return ErrorCode.RATE_LIMITED;
    case 503:
      return ErrorCode.SERVICE_UNAVAILABLE;
    default:
      return status >= 500 ? ErrorCode.INTERNAL : ErrorCode.BAD_REQUEST;
  }
}

/**
 * Turns anything thrown while serving a request into the contract's error
 * envelope. Unknown errors become a bare 500 carrying only the request id:
 * never a stack trace or SQL text.
 */
export function toErrorResponse(err: unknown, requestId: string): ErrorResponse {
  const res = build(err);
  res.body.error.requestId = requestId;
  return res;
}

/** The envelope of an error without a request id (Socket.IO acknowledgements). */
export function errorEnvelopeOf(err: unknown): ErrorResponse {
  return build(err);
}

function build(err: unknown): ErrorResponse {
  if (err instanceof DomainError) return fromCode(err.code, err.message, err.details, err.headers, err.httpStatus());
  if (isDependencyUnavailable(err)) return fromCode(ErrorCode.DEPENDENCY_UNAVAILABLE, DEPENDENCY_UNAVAILABLE_MESSAGE);
  if (err instanceof ZodError)
    return fromCode(ErrorCode.VALIDATION_FAILED, 'The request is not valid', zodDetails(err));

  const e = err as { code?: unknown; statusCode?: unknown; name?: string; meta?: unknown; getZodError?: () => unknown };
  if (typeof e?.getZodError === 'function') {
    const zerr = e.getZodError();
    if (zerr instanceof ZodError) {
      return fromCode(ErrorCode.VALIDATION_FAILED, 'The request is not valid', zodDetails(zerr));
    }
  }
  if (typeof e?.code === 'string' && PRISMA_CODES[e.code] && e.name?.startsWith('PrismaClient')) {
    const [code, message] = PRISMA_CODES[e.code];
    return fromCode(code, message);
  }
  // A value PostgreSQL cannot take, a dangling id: the client's doing, never a 500.
  const database = clientDatabaseError(err);
  if (database) return fromCode(database.code, database.message);
  if (typeof e?.code === 'string' && FASTIFY_CODES[e.code]) {
    const code = FASTIFY_CODES[e.code];
    const message =
      code === ErrorCode.PAYLOAD_TOO_LARGE
        ? 'The request body is too large'
        : code === ErrorCode.MALFORMED_JSON
          ? 'The request body is not valid JSON'
          : code === ErrorCode.UNSUPPORTED_MEDIA_TYPE
            ? 'Unsupported content type'
            : 'Bad request';
    return fromCode(code, message);
  }
  if (err instanceof HttpException) {
    const status = err.getStatus();
    if (status < 500) {
      // Fastify's body-parser errors reach here re-wrapped by Nest, their code lost.
      if (status === 400 && /JSON/.test(err.message)) {
        return fromCode(ErrorCode.MALFORMED_JSON, 'The request body is not valid JSON');
      }
      const code = httpStatusToCode(status);
      const message = code === ErrorCode.ROUTE_NOT_FOUND ? 'No such route' : err.message;
      return fromCode(code, message);
    }
  }
  if (err instanceof SyntaxError && typeof e.statusCode === 'number' && e.statusCode === 400) {
    return fromCode(ErrorCode.MALFORMED_JSON, 'The request body is not valid JSON');
  }
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return fromCode(httpStatusToCode(e.statusCode), 'Bad request');
  }
  return {
    status: 500,
    body: { success: false, error: { code: ErrorCode.INTERNAL, message: 'Internal error' } },
    unexpected: true,
  };
}
