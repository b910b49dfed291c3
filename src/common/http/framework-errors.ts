import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, NotFoundError } from '../errors/domain-error';
import { ErrorCode } from '../errors/error-codes';
import { toErrorResponse } from '../errors/error-response';

/** The public tag page: a code of any shape it cannot route is the page's own 404. */
const PUBLIC_TAG_PAGE = /^\/q\//;

/**
 * Errors Fastify's router raises before any route runs (a path that is not
 * valid percent-encoded UTF-8, a path parameter over `maxParamLength`): in the
 * contract's envelope like every other error, instead of Fastify's own body.
 * On `/q/…` they are the public page's 404 with `Cache-Control: no-store`,
 * the same answer as any unknown code.
 */
export function frameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const publicPage = PUBLIC_TAG_PAGE.test(request.raw.url ?? '');
  const domain = publicPage
    ? new NotFoundError('Tag')
    : new DomainError(
        ErrorCode.BAD_REQUEST,
        error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'A path parameter is too long' : 'The URL is not valid',
      );
  const res = toErrorResponse(domain, String(request.id));
  void reply.header('X-Request-Id', request.id);
  if (publicPage) void reply.header('cache-control', 'no-store');
  void reply.code(res.status).send(res.body);
}
