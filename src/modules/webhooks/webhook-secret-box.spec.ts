import { randomBytes } from 'node:crypto';
import { openSecret, sealSecret } from './webhook-secret-box';

describe('webhook secret box', () => {
  it('opens what it sealed, and refuses another key or an altered value', () => {
    const key = randomBytes(32);
    const sealed = sealSecret(key, 'whsec_x');
    expect(sealed).not.toContain('whsec_x');
    expect(openSecret(key, sealed)).toBe('whsec_x');
    expect(() => openSecret(randomBytes(32), sealed)).toThrow();
    const raw = Buffer.from(sealed, 'base64');
    raw[raw.length - 1] ^= 1;
    expect(() => openSecret(key, raw.toString('base64'))).toThrow();
  });
});
