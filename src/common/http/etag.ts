import type { FastifyReply, FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';
import { RAW_RESPONSE } from './envelope';

/** Cache-Control of a per-user answer: only the user's own client keeps it, and asks again each time (ETag). */
export const PRIVATE_REVALIDATE = 'private, no-cache';

/** A strong ETag of these bytes (or of these strings joined): 192 bits of SHA-256, quoted. */
export function strongEtag(...parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const part of parts) h.update(part).update('\0');
  return `"${h.digest('base64url').slice(0, 32)}"`;
}

/** Whether an If-None-Match header names this ETag (one of a list, or `*`); W/ is ignored, as RFC 9110 says for it. */
export function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  if (ifNoneMatch.trim() === '*') return true;
  return ifNoneMatch.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

/** An empty body that bypasses the envelope: what a 304 sends. */
export function emptyBody(): Buffer & { [RAW_RESPONSE]: true } {
  return Object.assign(Buffer.alloc(0), { [RAW_RESPONSE]: true as const });
}

/**
 * Sets `ETag` and `Cache-Control` on the reply; when the request's
 * If-None-Match names the ETag, also the 304 status, and returns true: the
 * handler then answers `emptyBody()` instead of the object.
 */
export function notModified(
  req: FastifyRequest,
  res: FastifyReply,
  etag: string,
  cacheControl: string = PRIVATE_REVALIDATE,
): boolean {
  void res.header('etag', etag).header('cache-control', cacheControl);
  if (!etagMatches(req.headers['if-none-match'], etag)) return false;
  void res.status(304);
  return true;
}
