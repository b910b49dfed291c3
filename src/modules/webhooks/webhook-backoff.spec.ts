import { nextRetryAt, retryDelayMs } from './webhook-backoff';

const policy = { firstDelayMs: 10_000, windowMs: 86_400_000 };

describe('webhook backoff', () => {
  it('doubles the bound per attempt, full jitter from 0', () => {
    expect(retryDelayMs(1, policy, 0)).toBe(0);
    expect(retryDelayMs(1, policy, 0.999999)).toBe(9_999);
    expect(retryDelayMs(2, policy, 0.5)).toBe(10_000);
    expect(retryDelayMs(4, policy, 0.5)).toBe(40_000);
  });

  it('never draws beyond the window, however many attempts', () => {
    expect(retryDelayMs(100, policy, 0.999)).toBeLessThan(policy.windowMs);
  });

  it('stops retrying once the next attempt would fall after the window', () => {
    const created = new Date('2026-01-01T00:00:00Z');
    const early = new Date(created.getTime() + 60_000);
    expect(nextRetryAt(1, created, early, policy, 0.5)).toEqual(new Date(early.getTime() + 5_000));
    const late = new Date(created.getTime() + policy.windowMs - 1_000);
    expect(nextRetryAt(5, created, late, policy, 0.9)).toBeNull();
  });
});
