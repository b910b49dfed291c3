/**
 * Paths whose query string carries a credential: OsmAnd-protocol apps send
 * the driver's tracker token as `?id=` (they cannot send a header).
 */
const CREDENTIAL_IN_QUERY = /\/tracking\/osmand\/?$/i;

/** A request URL fit for a log line: the query string of a credential-carrying path is replaced. */
export function logSafeUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const path = url.slice(0, q);
  return CREDENTIAL_IN_QUERY.test(path.replace(/\/{2,}/g, '/')) ? `${path}?[redacted]` : url;
}
