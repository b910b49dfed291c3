import { hashTrackerToken, newTrackerToken } from './tracker-token';

describe('tracker tokens', () => {
  it('are at least 128 random bits, URL-safe, and stored as their SHA-256 digest', () => {
    const a = newTrackerToken();
    const b = newTrackerToken();
    expect(a.token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(Buffer.from(a.token, 'base64url').length * 8).toBeGreaterThanOrEqual(128);
    expect(a.token).not.toBe(b.token);
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(a.hash).toBe(hashTrackerToken(a.token));
    expect(a.hash).not.toContain(a.token);
  });
});
