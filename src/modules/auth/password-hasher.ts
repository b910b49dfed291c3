import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/** scrypt's cost: N (CPU and memory, a power of 2), r (block size), p (parallelism). */
export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

const KEY_LENGTH = 64;
const SALT_LENGTH = 16;
/** Bounds of stored parameters we agree to compute with (128·N·r bytes of memory: 1 GiB at most). */
const MAX_N = 2 ** 20;
const MAX_R = 64;
const MAX_P = 64;

interface StoredHash {
  params: ScryptParams;
  salt: Buffer;
  key: Buffer;
}

function derive(password: string, salt: Buffer, { N, r, p }: ScryptParams): Promise<Buffer> {
  // scrypt needs 128·N·r bytes; Node refuses anything above maxmem, so allow twice that.
  const maxmem = 128 * N * r * 2;
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFKC'), salt, KEY_LENGTH, { N, r, p, maxmem }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

function format({ N, r, p }: ScryptParams, salt: Buffer, key: Buffer): string {
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

const isPowerOfTwo = (n: number) => Number.isInteger(n) && n > 1 && (n & (n - 1)) === 0;
const inRange = (n: number, max: number) => Number.isInteger(n) && n >= 1 && n <= max;

/** `scrypt$N$r$p$salt$key`, or null for anything else (another scheme, parameters out of bounds). */
export function parseStoredHash(stored: string): StoredHash | null {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return null;
  const [N, r, p] = parts.slice(1, 4).map((x) => (/^\d+$/.test(x) ? Number(x) : NaN));
  if (!isPowerOfTwo(N) || N > MAX_N || !inRange(r, MAX_R) || !inRange(p, MAX_P)) return null;
  const salt = Buffer.from(parts[4], 'base64url');
  const key = Buffer.from(parts[5], 'base64url');
  if (salt.length === 0 || key.length === 0) return null;
  return { params: { N, r, p }, salt, key };
}

/**
 * Whether a stored hash should be replaced by one made with `target`: it is
 * not a scrypt hash of ours, or any of its parameters is below the target's.
 * A hash stronger than the target is kept (lowering the setting never
 * weakens stored hashes).
 */
export function needsRehash(stored: string, target: ScryptParams): boolean {
  const parsed = parseStoredHash(stored);
  if (!parsed || parsed.key.length !== KEY_LENGTH) return true;
  const { N, r, p } = parsed.params;
  return N < target.N || r < target.r || p < target.p;
}

/**
 * Password hashes with scrypt, its parameters stored in the hash so that
 * hashes made under older settings still verify and can be upgraded at login.
 */
export class PasswordHasher {
  /**
   * A hash no password matches, with the configured parameters: login checks
   * an unknown phone against it, so that path costs what a real check costs.
   */
  readonly decoyHash: string;

  constructor(readonly params: ScryptParams) {
    this.decoyHash = format(params, Buffer.alloc(SALT_LENGTH), Buffer.alloc(KEY_LENGTH));
  }

  async hash(password: string): Promise<string> {
    const salt = randomBytes(SALT_LENGTH);
    return format(this.params, salt, await derive(password, salt, this.params));
  }

  async verify(password: string, stored: string): Promise<boolean> {
    const parsed = parseStoredHash(stored);
    if (!parsed) return false;
    const actual = await derive(password, parsed.salt, parsed.params);
    return actual.length === parsed.key.length && timingSafeEqual(actual, parsed.key);
  }

  needsRehash(stored: string): boolean {
    return needsRehash(stored, this.params);
  }
}
