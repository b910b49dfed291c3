import { createHash, randomBytes } from 'node:crypto';

/** Random bytes of a tracker token: 192 bits, well above the 128 the contract asks. */
const TOKEN_BYTES = 24;

/**
 * A driver's tracker token, the credential an off-the-shelf tracking app
 * (Traccar Client, OsmAnd) sends as its device identifier, and the digest
 * that is stored in its place. The token is random enough that a plain
 * SHA-256 is a safe digest to look it up by (no salt or slow hash needed).
 */
export function newTrackerToken(): { token: string; hash: string } {
  const token = randomBytes(TOKEN_BYTES).toString('base64url');
  return { token, hash: hashTrackerToken(token) };
}

/** The stored digest of a tracker token: SHA-256, hex. */
export function hashTrackerToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
