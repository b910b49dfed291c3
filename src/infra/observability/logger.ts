import { LoggerService } from '@nestjs/common';
import type { FastifyBaseLogger } from 'fastify';
import pino, { Bindings, ChildLoggerOptions, DestinationStream, Logger as Pino } from 'pino';
import { requestContext } from '../../common/context/request-context';
import { logSafeUrl } from './log-safe-url';

interface LoggedRequest {
  method?: string;
  url?: string;
  ip?: string;
}

/** `destination` is stdout unless given (tests read the lines). */
export function createPino(level: string, destination?: DestinationStream): Pino {
  return pino(
    {
      level,
      base: { service: 'waybill' },
      redact: {
        paths: ['req.headers.authorization', '*.password', '*.refreshToken', '*.trackerToken'],
        censor: '[redacted]',
      },
      // Replaces Fastify's own: never a credential-carrying query string (see logSafeUrl).
      serializers: {
        req: (req: LoggedRequest) => ({
          method: req.method,
          url: typeof req.url === 'string' ? logSafeUrl(req.url) : undefined,
          remoteAddress: req.ip,
        }),
      },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/**
 * Nest's logger on the same pino instance Fastify uses: one JSON line per
 * message, with the class as `context` and the request id when inside a request.
 */
export class PinoLoggerService implements LoggerService {
  constructor(private readonly pino: Pino) {}

  private write(level: 'info' | 'error' | 'warn' | 'debug' | 'trace', message: unknown, context?: string) {
    const reqId = requestContext.current()?.requestId;
    const fields: Record<string, unknown> = {};
    if (context) fields.context = context;
    if (reqId) fields.reqId = reqId;
    this.pino[level](fields, typeof message === 'string' ? message : JSON.stringify(message));
  }

  private ctx(params: unknown[]): string | undefined {
    const last = params[params.length - 1];
    return typeof last === 'string' ? last : undefined;
  }

  log(message: unknown, ...params: unknown[]) {
    this.write('info', message, this.ctx(params));
  }
  error(message: unknown, ...params: unknown[]) {
    this.write('error', message, this.ctx(params));
  }
  warn(message: unknown, ...params: unknown[]) {
    this.write('warn', message, this.ctx(params));
  }
  debug(message: unknown, ...params: unknown[]) {
    this.write('debug', message, this.ctx(params));
  }
  verbose(message: unknown, ...params: unknown[]) {
    this.write('trace', message, this.ctx(params));
  }
}

type LogMethod = (...args: unknown[]) => void;
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Fastify's per-request logger (`request.log`), made when the request first
 * logs. By default Fastify builds a pino child for every request (its bindings
 * serialized, the redaction set up), about a third of the CPU of a small
 * request on bare Fastify, though almost no request logs (request logging is off).
 * The child made on first use writes exactly what the eager one would.
 */
class LazyRequestLogger {
  private made?: Pino;

  constructor(
    private readonly parent: Pino,
    private readonly bindings: Record<string, unknown>,
    private readonly options: Record<string, unknown>,
  ) {}

  private get logger(): Pino {
    return (this.made ??= this.parent.child(this.bindings, this.options));
  }

  get level(): string {
    return this.made?.level ?? (this.options.level as string | undefined) ?? this.parent.level;
  }
  set level(level: string) {
    this.logger.level = level;
  }

  child(bindings: Record<string, unknown>, options?: Record<string, unknown>): Pino {
    return this.logger.child(bindings, options);
  }
}
for (const level of LEVELS) {
  Object.defineProperty(LazyRequestLogger.prototype, level, {
    value: function (this: LazyRequestLogger, ...args: unknown[]) {
      ((this as unknown as { logger: Record<string, LogMethod> }).logger[level] as LogMethod)(...args);
    },
  });
}

/** Fastify's `childLoggerFactory`: each request's logger made only if the request logs. */
export function lazyRequestLogger(
  logger: FastifyBaseLogger,
  bindings: Bindings,
  options: ChildLoggerOptions,
): FastifyBaseLogger {
  return new LazyRequestLogger(logger as Pino, bindings, options as Record<string, unknown>) as unknown as FastifyBaseLogger;
}
