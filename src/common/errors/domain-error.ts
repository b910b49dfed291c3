import { ErrorCode, httpStatusOf } from './error-codes';

export interface ErrorDetail {
  path?: string;
  message: string;
  [key: string]: unknown;
}

/**
 * An expected failure of a rule, with a code instead of an HTTP status, so
 * that the same services serve HTTP and Socket.IO.
 */
export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
    /** Extra response headers, e.g. Retry-After. */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = new.target.name;
  }

  /** The HTTP status it is answered with: its code's (httpStatusOf), unless a subclass says otherwise. */
  httpStatus(): number {
    return httpStatusOf(this.code);
  }
}

/** Another org's object and a missing object look the same. */
export class NotFoundError extends DomainError {
  constructor(what: string) {
    super(ErrorCode.NOT_FOUND, `${what} not found`);
  }
}

export class ForbiddenError extends DomainError {
  constructor(message = 'Your role does not allow this') {
    super(ErrorCode.FORBIDDEN, message);
  }
}

export class UnauthenticatedError extends DomainError {
  constructor(code: ErrorCode = ErrorCode.UNAUTHENTICATED, message = 'Authentication required') {
    super(code, message);
  }
}

export class ValidationError extends DomainError {
  constructor(details: ErrorDetail[], message = 'The request is not valid') {
    super(ErrorCode.VALIDATION_FAILED, message, details);
  }
}

/**
 * A well-formed request naming something the caller may not use (another
 * org's truck or driver, an unknown counterparty org): `VALIDATION_FAILED`
 * naming the fields, answered 422 rather than 400 (API.md, Trips).
 */
export class UnprocessableFieldsError extends ValidationError {
  override httpStatus(): number {
    return 422;
  }
}
