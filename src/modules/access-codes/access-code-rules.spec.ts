import { codeStatus, hashAccessCode, isWellFormedAccessCode, loginRefusal, newAccessCode } from './access-code-rules';

describe('access code rules', () => {
  it('makes codes of at least 64 random bits in [A-Za-z0-9_-]', () => {
    const codes = new Set(Array.from({ length: 1000 }, () => newAccessCode()));
    expect(codes.size).toBe(1000);
    for (const code of codes) {
      expect(code).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(Buffer.from(code, 'base64url').length * 8).toBeGreaterThanOrEqual(64);
      expect(isWellFormedAccessCode(code)).toBe(true);
    }
  });

  it('refuses malformed codes before any lookup', () => {
    for (const bad of ['', 'short', 'has space in it!!', 'a'.repeat(129), 'ümlautümlautümlaut', 'abc/def+ghi=jklmno']) {
      expect(isWellFormedAccessCode(bad)).toBe(false);
    }
  });

  it('stores the SHA-256 hex digest', () => {
    expect(hashAccessCode('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('derives the status: DISABLED wins, then EXPIRED at or after expiresAt', () => {
    const now = new Date('2026-12-06T12:00:00Z');
    const past = new Date('2026-12-06T11:59:59Z');
    const future = new Date('2026-12-06T12:00:01Z');
    expect(codeStatus('ACTIVE', null, now)).toBe('ACTIVE');
    expect(codeStatus('ACTIVE', future, now)).toBe('ACTIVE');
    expect(codeStatus('ACTIVE', now, now)).toBe('EXPIRED');
    expect(codeStatus('ACTIVE', past, now)).toBe('EXPIRED');
    expect(codeStatus('DISABLED', past, now)).toBe('DISABLED');
    expect(codeStatus('DISABLED', null, now)).toBe('DISABLED');
  });

  it('names why a login was refused', () => {
    const now = new Date('2026-12-06T12:00:00Z');
    const code = { status: 'ACTIVE' as const, expiresAt: null, activeSessions: 3, maxSessions: 3 };
    expect(loginRefusal(code, now)).toBe('FULL');
    expect(loginRefusal({ ...code, activeSessions: 2 }, now)).toBeNull();
    expect(loginRefusal({ ...code, status: 'DISABLED' }, now)).toBe('DISABLED');
    expect(loginRefusal({ ...code, expiresAt: new Date('2026-12-01T00:00:00Z') }, now)).toBe('EXPIRED');
  });
});
