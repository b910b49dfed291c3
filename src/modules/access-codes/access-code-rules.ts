import { createHash, randomBytes } from 'node:crypto';

/** Random bytes in a new code: 96 bits, 16 base64url characters. */
export const ACCESS_CODE_BYTES = 12;

/** What a presented code may look like before any lookup: base64url, within sane lengths. */
const CODE_FORMAT = /^[A-Za-z0-9_-]{16,128}$/;

/** A new secret code: base64url (`[A-Za-z0-9_-]`) of 12 random bytes. */
export function newAccessCode(): string {
  return randomBytes(ACCESS_CODE_BYTES).toString('base64url');
}

/** Whether a presented code could be one this service issued (anything else is INVALID_CODE without a lookup). */
export function isWellFormedAccessCode(code: string): boolean {
  return CODE_FORMAT.test(code);
}

/** The stored form of a code: its SHA-256 hex digest (the code itself is never stored). */
export function hashAccessCode(code: string): string {
  return createHash('sha256').update(code).digest('hex');
}

export type StoredCodeStatus = 'ACTIVE' | 'DISABLED';
export type AccessCodeStatus = StoredCodeStatus | 'EXPIRED';

/** The status a client sees: DISABLED wins, then EXPIRED once `expiresAt` has passed. */
export function codeStatus(stored: StoredCodeStatus, expiresAt: Date | null, now: Date = new Date()): AccessCodeStatus {
  if (stored === 'DISABLED') return 'DISABLED';
  if (expiresAt && expiresAt.getTime() <= now.getTime()) return 'EXPIRED';
  return 'ACTIVE';
}

/** Why a login with a known code was refused, from the code as read after the refusal. */
export function loginRefusal(
  code: { status: StoredCodeStatus; expiresAt: Date | null; activeSessions: number; maxSessions: number },
  now: Date = new Date(),
): 'DISABLED' | 'EXPIRED' | 'FULL' | null {
  const status = codeStatus(code.status, code.expiresAt, now);
  if (status !== 'ACTIVE') return status;
  return code.activeSessions >= code.maxSessions ? 'FULL' : null;
}
