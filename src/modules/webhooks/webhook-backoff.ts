/** Retry timing of a failed delivery attempt. */
export interface BackoffPolicy {
  /** The first retry's delay bound (ms); each later one doubles. */
  firstDelayMs: number;
  /** No retry is scheduled later than this after the event was created (ms). */
  windowMs: number;
}

/**
 * The delay before retry number `attempt` (1 = after the first failure):
 * exponential with full jitter, a uniform draw from [0, first * 2^(attempt-1)].
 * `random` is in [0, 1).
 */
export function retryDelayMs(attempt: number, policy: BackoffPolicy, random: number): number {
  const bound = policy.firstDelayMs * 2 ** Math.min(Math.max(attempt - 1, 0), 40);
  const capped = Math.min(bound, policy.windowMs);
  return Math.floor(random * capped);
}

/**
 * When attempt `attempt` failed at `now`: the time of the next attempt, or
 * null when it would fall after the retry window (the delivery has failed).
 */
export function nextRetryAt(
  attempt: number,
  createdAt: Date,
  now: Date,
  policy: BackoffPolicy,
  random: number,
): Date | null {
  const at = new Date(now.getTime() + retryDelayMs(attempt, policy, random));
  return at.getTime() > createdAt.getTime() + policy.windowMs ? null : at;
}
