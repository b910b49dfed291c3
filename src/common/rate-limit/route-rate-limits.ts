import { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest, onRequestHookHandler, preHandlerHookHandler } from 'fastify';
import { createHash } from 'node:crypto';
import { DomainError } from '../errors/domain-error';
import { ErrorCode } from '../errors/error-codes';
import { rateLimitedCounter } from '../../infra/observability/metrics';

const MINUTE = 60_000;

/** One class of rate-limited routes: one budget per client address, or per phone number or access code of the body. */
export interface RouteRateLimit {
  /** Names the class's counters (`<name>:<key>`). */
  name: string;
  /** Requests per key per minute, over all the class's routes. */
  perMinute: number;
  /** Routes (`METHOD /pattern`, as routed). */
  routes: string[];
  /**
   * `address`: the client address, checked on `onRequest`, before the body is
   * read. `phone` (`code`): the body's `phone` (`code`) whatever the address,
   * checked on `preHandler`, once the body is parsed (a body without one is
   * left to validation).
   */
  by: 'address' | 'phone' | 'code';
}

export function rateLimitedError(ttlMs: number): DomainError {
  const seconds = Math.max(1, Math.ceil(ttlMs / 1000));
  return new DomainError(ErrorCode.RATE_LIMITED, `Too many attempts; retry in ${seconds} s`, undefined, {
    'Retry-After': String(seconds),
  });
}

/**
 * A phone as the login schema will read it, or an access code as sent;
 * hashed so Redis holds no phone numbers or codes.
 */
function bodyKey(request: FastifyRequest, field: 'phone' | 'code'): string | undefined {
  const value = (request.body as Record<string, unknown> | undefined)?.[field];
  if (typeof value !== 'string') return undefined; // none: validation answers 400
  const normalized = field === 'phone' ? value.trim().replace(/[\s().-]/g, '') : value;
  return createHash('sha256').update(normalized).digest('base64url');
}

/** The key a class counts by: the address or a body field (undefined: none to count). */
function classKey(request: FastifyRequest, c: RouteRateLimit): string | undefined {
  if (c.by === 'address') return normalizeIP(request.ip);
  return bodyKey(request, c.by);
}

/**
 * Attaches each class's limit to its routes as Fastify registers them (the
 * rate-limit plugin must be registered, Nest's routes not yet). A limit
 * belongs to the route a request was routed to, not to its URL text, so
 * `/api/v1/auth/%6Cogin` counts as the login it is.
 */
export function installRouteRateLimits(fastify: FastifyInstance, classes: RouteRateLimit[]): void {
  const attached = classes.map((c) => {
    const limiter = fastify.createRateLimit({
      max: c.perMinute,
      timeWindow: MINUTE,
      keyGenerator: (request) => `${c.name}:${classKey(request, c)}`,
    });
    const refused = rateLimitedCounter(c.name);
    const hook = async (request: FastifyRequest) => {
      if (c.by !== 'address' && classKey(request, c) === undefined) return;
      const result = await limiter(request);
      if (!result.isAllowed && result.isExceeded) {
        refused.inc();
        throw rateLimitedError(result.ttl);
      }
    };
    return { routes: new Set(c.routes), by: c.by, hook };
  });
  fastify.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const ids = methods.map((m) => `${m.toUpperCase()} ${route.url}`);
    for (const c of attached) {
      if (!ids.some((id) => c.routes.has(id))) continue;
      if (c.by === 'address') route.onRequest = [...hooks(route.onRequest), c.hook as onRequestHookHandler];
      else route.preHandler = [...hooks(route.preHandler), c.hook as preHandlerHookHandler];
    }
  });
}

function hooks<T>(existing: T | T[] | undefined): T[] {
  if (existing === undefined) return [];
  return Array.isArray(existing) ? existing : [existing];
}
