import { needsRehash, parseStoredHash, PasswordHasher } from './password-hasher';

// Low cost keeps the unit tests fast; production defaults to N=2^17.
const hasher = new PasswordHasher({ N: 1024, r: 8, p: 1 });

describe('PasswordHasher', () => {
  it('verifies the password it hashed and nothing else', async () => {
    const hash = await hasher.hash('correct horse');
    expect(hash.startsWith('scrypt$1024$8$1$')).toBe(true);
    expect(hash).not.toContain('correct horse');
    await expect(hasher.verify('correct horse', hash)).resolves.toBe(true);
    await expect(hasher.verify('correct horsE', hash)).resolves.toBe(false);
  });

  it('salts every hash', async () => {
    expect(await hasher.hash('same')).not.toEqual(await hasher.hash('same'));
  });

  it('verifies hashes made with other parameters, read from the hash', async () => {
    const old = await new PasswordHasher({ N: 256, r: 4, p: 1 }).hash('pw-of-old');
    expect(old.startsWith('scrypt$256$4$1$')).toBe(true);
    await expect(hasher.verify('pw-of-old', old)).resolves.toBe(true);
    await expect(hasher.verify('other', old)).resolves.toBe(false);
  });

  it('rejects malformed stored hashes and the decoy', async () => {
    await expect(hasher.verify('x', 'md5$abc')).resolves.toBe(false);
    await expect(hasher.verify('x', 'scrypt$1000$8$1$AAAA$AAAA')).resolves.toBe(false); // N not a power of 2
    await expect(hasher.verify('x', `scrypt$${2 ** 30}$8$1$AAAA$AAAA`)).resolves.toBe(false); // too costly
    await expect(hasher.verify('', hasher.decoyHash)).resolves.toBe(false);
  });

  it('makes its decoy with the configured parameters, so an unknown phone costs a real check', () => {
    expect(parseStoredHash(hasher.decoyHash)?.params).toEqual({ N: 1024, r: 8, p: 1 });
    expect(parseStoredHash(new PasswordHasher({ N: 2 ** 17, r: 8, p: 1 }).decoyHash)?.params).toEqual({
      N: 2 ** 17,
      r: 8,
      p: 1,
    });
  });
});

describe('needsRehash', () => {
  const target = { N: 2 ** 17, r: 8, p: 1 };
  const stored = (N: number, r: number, p: number) => `scrypt$${N}$${r}$${p}$${'A'.repeat(22)}$${'A'.repeat(86)}`;

  it('keeps a hash with the configured parameters or stronger ones', () => {
    expect(needsRehash(stored(2 ** 17, 8, 1), target)).toBe(false);
    expect(needsRehash(stored(2 ** 18, 8, 1), target)).toBe(false);
    expect(needsRehash(stored(2 ** 17, 16, 2), target)).toBe(false);
  });

  it('replaces a hash below the configured parameters in any of N, r or p', () => {
    expect(needsRehash(stored(16384, 8, 1), target)).toBe(true);
    expect(needsRehash(stored(2 ** 17, 4, 1), target)).toBe(true);
    expect(needsRehash(stored(2 ** 18, 8, 1), { N: 2 ** 17, r: 8, p: 2 })).toBe(true);
  });

  it('replaces what it cannot read or what has another key length', () => {
    expect(needsRehash('md5$abc', target)).toBe(true);
    expect(needsRehash(`scrypt$${2 ** 17}$8$1$${'A'.repeat(22)}$${'A'.repeat(43)}`, target)).toBe(true);
  });
});
