import { ArgumentsHost, Catch, ExceptionFilter, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { logSafeUrl } from '../../infra/observability/log-safe-url';
import { toErrorResponse } from './error-response';

/** Writes an error in the contract's envelope; used by Nest and by Fastify's own error handler. */
export function sendError(err: unknown, request: FastifyRequest, reply: FastifyReply, logger: Logger): void {
  const res = toErrorResponse(err, String(request.id));
  if (res.unexpected) {
    logger.error(`${request.method} ${logSafeUrl(request.url)} failed: ${(err as Error)?.stack ?? String(err)}`);
  }
  if (res.headers) reply.headers(res.headers);
  void reply.status(res.status).type('application/json; charset=utf-8').send(res.body);
}

@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw exception;
    const http = host.switchToHttp();
    sendError(exception, http.getRequest<FastifyRequest>(), http.getResponse<FastifyReply>(), this.logger);
  }
}
