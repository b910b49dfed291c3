import { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest, onRequestHookHandler, preHandlerHookHandler } from 'fastify';
import { createHash } from 'node:crypto';
import { DomainError } from '../errors/domain-error';
import { ErrorCode } from '../errors/error-codes';

const MINUTE = 60_000;

export interface AuthRateLimits {
  /** Attempts per client address per minute on every route of `perAddress`. */
  perAddressPerMinute: number;
  /** Attempts per phone number per minute on every route of `perPhone`, whatever the address. */
  perPhonePerMinute: number;
  /** Routes (`METHOD /pattern`, as routed) counted per client address, all in one budget. */
  perAddress: string[];
  /** Routes whose body's `phone` is counted, all in one budget. */
  perPhone: string[];
}

export function rateLimitedError(ttlMs: number): DomainError {
  const seconds = Math.max(1, Math.ceil(ttlMs / 1000));
  return new DomainError(ErrorCode.RATE_LIMITED, `Too many attempts; retry in ${seconds} s`, undefined, {
    'Retry-After': String(seconds),
  });
}

/** A phone as the login schema will read it; hashed so Redis holds no phone numbers. */
function phoneKey(request: FastifyRequest): string | undefined {
  const phone = (request.body as { phone?: unknown } | undefined)?.phone;
  if (typeof phone !== 'string') return undefined; // no phone: validation answers 400
  const normalized = phone.trim().replace(/[\s().-]/g, '');
  return createHash('sha256').update(normalized).digest('base64url');
}

/**
 * Attaches the login limits to their routes as Fastify registers them (the
 * rate-limit plugin must be registered, Nest's routes not yet). The limits
 * belong to the route a request was routed to, not to its URL text, so
 * `/api/v1/auth/%6Cogin` counts as the login it is. The address limit runs
 * on `onRequest`, before the body is read; the phone limit on `preHandler`,
 * once it is parsed and before the password is checked.
 */
export function installAuthRateLimits(fastify: FastifyInstance, limits: AuthRateLimits): void {
  const byAddress = fastify.createRateLimit({
    max: limits.perAddressPerMinute,
    timeWindow: MINUTE,
    keyGenerator: (request) => `auth-address:${normalizeIP(request.ip)}`,
  });
  const byPhone = fastify.createRateLimit({
    max: limits.perPhonePerMinute,
    timeWindow: MINUTE,
    keyGenerator: (request) => `auth-phone:${phoneKey(request)}`,
  });

  const limitAddress: onRequestHookHandler = async (request) => {
    const result = await byAddress(request);
    if (!result.isAllowed && result.isExceeded) throw rateLimitedError(result.ttl);
  };
  const limitPhone: preHandlerHookHandler = async (request) => {
    if (phoneKey(request) === undefined) return;
    const result = await byPhone(request);
    if (!result.isAllowed && result.isExceeded) throw rateLimitedError(result.ttl);
  };

  const perAddress = new Set(limits.perAddress);
  const perPhone = new Set(limits.perPhone);
  fastify.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const ids = methods.map((m) => `${m.toUpperCase()} ${route.url}`);
    if (ids.some((id) => perAddress.has(id))) route.onRequest = [...hooks(route.onRequest), limitAddress];
    if (ids.some((id) => perPhone.has(id))) route.preHandler = [...hooks(route.preHandler), limitPhone];
  });
}

function hooks<T>(existing: T | T[] | undefined): T[] {
  if (existing === undefined) return [];
  return Array.isArray(existing) ? existing : [existing];
}
