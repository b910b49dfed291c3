import { jitteredTtlMs } from './ttl-jitter';

describe('jitteredTtlMs', () => {
  it('spreads the TTL by the jitter both ways', () => {
    expect(jitteredTtlMs(10_000, 0.1, () => 0)).toBe(9_000);
    expect(jitteredTtlMs(10_000, 0.1, () => 0.5)).toBe(10_000);
    expect(jitteredTtlMs(10_000, 0.1, () => 0.999999)).toBe(11_000);
  });

  it('keeps the TTL as is without jitter', () => {
    expect(jitteredTtlMs(5_000, 0, Math.random)).toBe(5_000);
  });

  it('stays within the bounds, and spreads, over many draws', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 2_000; i++) {
      const ttl = jitteredTtlMs(60_000, 0.2);
      expect(ttl).toBeGreaterThanOrEqual(48_000);
      expect(ttl).toBeLessThanOrEqual(72_000);
      seen.add(ttl);
    }
    // Not one value (or a handful): entries written together expire apart.
    expect(seen.size).toBeGreaterThan(500);
  });

  it('never gives zero or less, whatever the jitter', () => {
    expect(jitteredTtlMs(1, 5, () => 0)).toBe(1);
    expect(jitteredTtlMs(100, -1, () => 0)).toBe(100);
  });
});
