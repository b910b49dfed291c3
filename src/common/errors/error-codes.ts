/** Every error code a client can see in `error.code`. */
export enum ErrorCode {
  VALIDATION_FAILED = 'VALIDATION_FAILED',
  MALFORMED_JSON = 'MALFORMED_JSON',
  BAD_REQUEST = 'BAD_REQUEST',
  UNAUTHENTICATED = 'UNAUTHENTICATED',
  INVALID_CREDENTIALS = 'INVALID_CREDENTIALS',
  INVALID_TOKEN = 'INVALID_TOKEN',
  TOKEN_EXPIRED = 'TOKEN_EXPIRED',
  REFRESH_TOKEN_REUSED = 'REFRESH_TOKEN_REUSED',
  FORBIDDEN = 'FORBIDDEN',
  NOT_FOUND = 'NOT_FOUND',
  ROUTE_NOT_FOUND = 'ROUTE_NOT_FOUND',
  METHOD_NOT_ALLOWED = 'METHOD_NOT_ALLOWED',
  CONFLICT = 'CONFLICT',
  ALREADY_EXISTS = 'ALREADY_EXISTS',
  PHONE_TAKEN = 'PHONE_TAKEN',
  ALREADY_MEMBER = 'ALREADY_MEMBER',
  IDEMPOTENCY_KEY_REUSED = 'IDEMPOTENCY_KEY_REUSED',
  IDEMPOTENCY_IN_PROGRESS = 'IDEMPOTENCY_IN_PROGRESS',
  PAYLOAD_TOO_LARGE = 'PAYLOAD_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE = 'UNSUPPORTED_MEDIA_TYPE',
  USER_NOT_FOUND = 'USER_NOT_FOUND',
  UNPROCESSABLE = 'UNPROCESSABLE',
  RATE_LIMITED = 'RATE_LIMITED',
  INTERNAL = 'INTERNAL',
  SERVICE_UNAVAILABLE = 'SERVICE_UNAVAILABLE',
  // ledger
  INVOICE_NUMBER_TAKEN = 'INVOICE_NUMBER_TAKEN',
  ALREADY_REVERSED = 'ALREADY_REVERSED',
  NOT_REVERSIBLE = 'NOT_REVERSIBLE',
  INVOICE_REVERSED = 'INVOICE_REVERSED',
  CURRENCY_MISMATCH = 'CURRENCY_MISMATCH',
  OVERPAYMENT = 'OVERPAYMENT',
  COUNTERPARTY_NOT_FOUND = 'COUNTERPARTY_NOT_FOUND',
  TRIP_NOT_BETWEEN_ORGS = 'TRIP_NOT_BETWEEN_ORGS',
  BALANCE_LIMIT_EXCEEDED = 'BALANCE_LIMIT_EXCEEDED',
  STATEMENT_TOO_LARGE = 'STATEMENT_TOO_LARGE',
  // trips and tracking
  ILLEGAL_TRANSITION = 'ILLEGAL_TRANSITION',
  DRIVER_BUSY = 'DRIVER_BUSY',
  TRUCK_BUSY = 'TRUCK_BUSY',
  TRIP_NOT_ACTIVE = 'TRIP_NOT_ACTIVE',
  NO_ACTIVE_TRIP = 'NO_ACTIVE_TRIP',
  // realtime
  ROOM_NOT_SUPPORTED = 'ROOM_NOT_SUPPORTED',
  // outages
  /** The database or Redis could not be reached: retry later. */
  DEPENDENCY_UNAVAILABLE = 'DEPENDENCY_UNAVAILABLE',
  /** A member who sees the trip posting its pings without being its driver. */
  NOT_TRIP_DRIVER = 'NOT_TRIP_DRIVER',
  /** Attachment storage could not be reached: uploads and downloads fail, messages without attachments work. */
  STORAGE_UNAVAILABLE = 'STORAGE_UNAVAILABLE',
  INVALID_CODE = 'INVALID_CODE',
  CODE_EXPIRED = 'CODE_EXPIRED',
  CODE_DISABLED = 'CODE_DISABLED',
  CODE_CAPACITY_REACHED = 'CODE_CAPACITY_REACHED',
  TAG_EXPIRED = 'TAG_EXPIRED',
  TAG_DISABLED = 'TAG_DISABLED',
  TAG_SCAN_LIMIT_REACHED = 'TAG_SCAN_LIMIT_REACHED',
}

/**
 * The HTTP status of each code. The switch is exhaustive: a code added to the
 * enum without a status here does not compile.
 */
export function httpStatusOf(code: ErrorCode): number {
  switch (code) {
    case ErrorCode.VALIDATION_FAILED:
    case ErrorCode.MALFORMED_JSON:
    case ErrorCode.BAD_REQUEST:
      return 400;
    case ErrorCode.UNAUTHENTICATED:
    case ErrorCode.INVALID_CREDENTIALS:
    case ErrorCode.INVALID_TOKEN:
    case ErrorCode.TOKEN_EXPIRED:
    case ErrorCode.REFRESH_TOKEN_REUSED:
      return 401;
    case ErrorCode.FORBIDDEN:
      return 403;
    case ErrorCode.NOT_FOUND:
    case ErrorCode.ROUTE_NOT_FOUND:
      return 404;
    case ErrorCode.METHOD_NOT_ALLOWED:
      return 405;
    case ErrorCode.CONFLICT:
    case ErrorCode.ALREADY_EXISTS:
    case ErrorCode.PHONE_TAKEN:
    case ErrorCode.ALREADY_MEMBER:
    case ErrorCode.IDEMPOTENCY_KEY_REUSED:
    case ErrorCode.IDEMPOTENCY_IN_PROGRESS:
    case ErrorCode.INVOICE_NUMBER_TAKEN:
    case ErrorCode.ALREADY_REVERSED:
    case ErrorCode.NOT_REVERSIBLE:
    case ErrorCode.INVOICE_REVERSED:
    case ErrorCode.ILLEGAL_TRANSITION:
    case ErrorCode.DRIVER_BUSY:
    case ErrorCode.TRUCK_BUSY:
    case ErrorCode.TRIP_NOT_ACTIVE:
    case ErrorCode.NO_ACTIVE_TRIP:
      return 409;
    case ErrorCode.PAYLOAD_TOO_LARGE:
      return 413;
    case ErrorCode.UNSUPPORTED_MEDIA_TYPE:
      return 415;
    case ErrorCode.USER_NOT_FOUND:
    case ErrorCode.UNPROCESSABLE:
    case ErrorCode.CURRENCY_MISMATCH:
    case ErrorCode.OVERPAYMENT:
    case ErrorCode.COUNTERPARTY_NOT_FOUND:
    case ErrorCode.TRIP_NOT_BETWEEN_ORGS:
    case ErrorCode.BALANCE_LIMIT_EXCEEDED:
    case ErrorCode.STATEMENT_TOO_LARGE:
    case ErrorCode.ROOM_NOT_SUPPORTED:
      return 422;
    case ErrorCode.RATE_LIMITED:
      return 429;
    case ErrorCode.INTERNAL:
      return 500;
    case ErrorCode.SERVICE_UNAVAILABLE:
    case ErrorCode.DEPENDENCY_UNAVAILABLE:
      return 503;
    case ErrorCode.NOT_TRIP_DRIVER:
      return 403;
    case ErrorCode.STORAGE_UNAVAILABLE:
      return 503;
    case ErrorCode.INVALID_CODE:
      return 401;
    case ErrorCode.CODE_EXPIRED:
    case ErrorCode.CODE_DISABLED:
      return 410;
    case ErrorCode.CODE_CAPACITY_REACHED:
      return 409;
    case ErrorCode.TAG_EXPIRED:
    case ErrorCode.TAG_DISABLED:
    case ErrorCode.TAG_SCAN_LIMIT_REACHED:
      return 409;
    default: {
      const unmapped: never = code;
      throw new Error(`unmapped error code ${String(unmapped)}`);
    }
  }
}
