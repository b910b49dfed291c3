import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Page } from '../pagination/page';

/** Marks a handler whose reply is not JSON (a file, a stream, an empty 204). */
export const RAW_RESPONSE = Symbol('RAW_RESPONSE');

/** A handler's result in the contract's envelope: `{success: true, data}` (lists add `meta.nextCursor`). */
export function toEnvelope(result: unknown): unknown {
  if (result === undefined || (result as { [RAW_RESPONSE]?: true } | null)?.[RAW_RESPONSE]) return result;
  if (result instanceof Page) return { success: true, data: result.items, meta: { nextCursor: result.nextCursor } };
  return { success: true, data: result };
}

/**
 * Fastify under Nest, with every handler result put in the envelope where Nest
 * hands it to the HTTP layer. Errors never pass here: the exception filter
 * writes their envelope itself. Done here rather than in a global interceptor
 * because a route with no interceptor runs without RxJS: on the ping path the
 * interceptor chain's RxJS was a tenth of all the memory a request allocated
 * (docs/performance-tracking.md, "Steady state, and the framework's own costs").
 */
export class EnvelopeFastifyAdapter extends FastifyAdapter {
  override reply(...[response, body, statusCode]: Parameters<FastifyAdapter['reply']>) {
    return super.reply(response, toEnvelope(body), statusCode);
  }
}

/**
 * A route's 200 answer as Fastify's response schema: the envelope around
 * `data`'s schema. Fastify then writes the body with a serializer compiled
 * from it (fast-json-stringify) instead of JSON.stringify. Only for routes
 * whose answer is exactly known: a property the schema does not name is left
 * out, and a value of another type is coerced, so each schema must say the
 * whole shape (nullable fields as `['string', 'null']`). Use through
 * `@RouteSchema({ response: { 200: enveloped(...) } })`.
 */
export function enveloped(data: Record<string, unknown>): Record<string, unknown> {
  return {
    type: 'object',
    properties: { success: { type: 'boolean' }, data },
    required: ['success', 'data'],
    additionalProperties: false,
  };
}
