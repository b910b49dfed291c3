import { randomBytes } from 'node:crypto';

/** Random bytes in a new tag code: 96 bits, 16 base64url characters. */
export const TAG_CODE_BYTES = 12;

/** What a presented code may look like before any lookup (anything else is an unknown tag without a query). */
const CODE_FORMAT = /^[A-Za-z0-9_-]{16,64}$/;

/** A tag's code: base64url (`[A-Za-z0-9_-]`) of 12 bytes from the CSPRNG, never derived from ids or time. */
export function newTagCode(): string {
  return randomBytes(TAG_CODE_BYTES).toString('base64url');
}

export function isWellFormedTagCode(code: string): boolean {
  return CODE_FORMAT.test(code);
}

/** The string a tag's QR encodes. */
export function tagUrl(publicBaseUrl: string, code: string): string {
  return `${publicBaseUrl.replace(/\/+$/, '')}/q/${code}`;
}

export type StoredTagStatus = 'ACTIVE' | 'DISABLED';
export type TagStatus = StoredTagStatus | 'EXPIRED';

/** The status a client sees: DISABLED wins, then EXPIRED once `expiresAt` has passed. */
export function tagStatus(stored: StoredTagStatus, expiresAt: Date | null, now: Date = new Date()): TagStatus {
  if (stored === 'DISABLED') return 'DISABLED';
  if (expiresAt && expiresAt.getTime() <= now.getTime()) return 'EXPIRED';
  return 'ACTIVE';
}

/** Why a scan of a known tag was refused, from the tag as read after the refusal (null: it would be taken now). */
export function scanRefusal(
  tag: { status: StoredTagStatus; expiresAt: Date | null; scanCount: number; maxScans: number | null },
  now: Date = new Date(),
): 'DISABLED' | 'EXPIRED' | 'FULL' | null {
  const status = tagStatus(tag.status, tag.expiresAt, now);
  if (status !== 'ACTIVE') return status;
  return tag.maxScans !== null && tag.scanCount >= tag.maxScans ? 'FULL' : null;
}

/** A client's `scannedAt` may be at most this far in the future (clock skew), like ping timestamps. */
export const SCAN_FUTURE_TOLERANCE_MS = 5 * 60_000;

/** Scan actions that, with a `tripId`, append a trip event. */
export const TRIP_EVENT_ACTIONS: ReadonlySet<string> = new Set(['LOAD', 'UNLOAD', 'DELIVER']);

/** Text for HTML: the five characters that could open markup or leave an attribute. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
