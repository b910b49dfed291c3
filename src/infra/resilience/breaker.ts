import { Logger } from '@nestjs/common';
import CircuitBreaker from 'opossum';
import { breakerState } from '../observability/metrics';

export interface BreakerOptions {
  /** The `breaker` label of `waybill_breaker_state`, and the breaker's name in logs. */
  name: string;
  /** A call slower than this fails (and counts against the dependency). */
  timeoutMs: number;
  /** How long an open breaker fails fast before letting one trial call through. */
  resetMs: number;
  /** Calls in the rolling window (10 s) before the error rate may open the breaker. */
  volumeThreshold?: number;
  /**
   * Errors that prove the dependency answered (a constraint violation, a Redis
   * reply error): they are passed on but do not count as failures.
   */
  isAnswer?: (err: unknown) => boolean;
  /** Logged once when the breaker opens and once when it closes again (never per call). */
  openMessage: string;
  closeMessage: string;
}

/**
 * An opossum breaker whose state is published in `waybill_breaker_state`
 * (0 closed, 1 half-open, 2 open) and logged once per change. Open at more
 * than half of the calls failing, once `volumeThreshold` calls were made.
 */
export function createBreaker<A extends unknown[], R>(
  action: (...args: A) => Promise<R>,
  options: BreakerOptions,
  logger: Logger,
): CircuitBreaker<A, R> {
  const breaker = new CircuitBreaker(action, {
    name: options.name,
    timeout: options.timeoutMs,
    resetTimeout: options.resetMs,
    errorThresholdPercentage: 50,
    volumeThreshold: options.volumeThreshold ?? 3,
    errorFilter: options.isAnswer,
  });
  const label = { breaker: options.name };
  breakerState.set(label, 0);
  breaker.on('open', () => {
    breakerState.set(label, 2);
    logger.warn(options.openMessage);
  });
  breaker.on('halfOpen', () => breakerState.set(label, 1));
  breaker.on('close', () => {
    breakerState.set(label, 0);
    logger.log(options.closeMessage);
  });
  return breaker;
}

/** A breaker around any call: `run(() => call())` (for a dependency used through many different calls). */
export type CallBreaker = CircuitBreaker<[() => Promise<unknown>], unknown>;

export function createCallBreaker(options: BreakerOptions, logger: Logger): CallBreaker {
  return createBreaker((call: () => Promise<unknown>) => call(), options, logger);
}

/** Runs `call` through a call breaker, keeping its result type. */
export function runThrough<T>(breaker: CallBreaker, call: () => Promise<T>): Promise<T> {
  return breaker.fire(call) as Promise<T>;
}
