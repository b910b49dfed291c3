/**
 * A TTL spread by ±`jitter` (a fraction of it), so that entries written
 * together (a burst of misses after a deploy) do not all expire in the same
 * second and send their loads to the database at once. Never below 1 ms.
 */
export function jitteredTtlMs(ttlMs: number, jitter: number, random: () => number = Math.random): number {
  const spread = Math.min(Math.max(jitter, 0), 1);
  return Math.max(1, Math.round(ttlMs * (1 + spread * (2 * random() - 1))));
}
