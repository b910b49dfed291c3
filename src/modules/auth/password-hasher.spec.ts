import { DECOY_HASH, passwordHasher } from './password-hasher';

describe('passwordHasher', () => {
  it('verifies the password it hashed and nothing else', async () => {
    const hash = await passwordHasher.hash('correct horse');
    expect(hash.startsWith('scrypt$16384$8$1$')).toBe(true);
    expect(hash).not.toContain('correct horse');
    await expect(passwordHasher.verify('correct horse', hash)).resolves.toBe(true);
    await expect(passwordHasher.verify('correct horsE', hash)).resolves.toBe(false);
  });

  it('salts every hash', async () => {
    expect(await passwordHasher.hash('same')).not.toEqual(await passwordHasher.hash('same'));
  });

  it('rejects malformed stored hashes and the decoy', async () => {
    await expect(passwordHasher.verify('x', 'md5$abc')).resolves.toBe(false);
    await expect(passwordHasher.verify('', DECOY_HASH)).resolves.toBe(false);
  });
});
