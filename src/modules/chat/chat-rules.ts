import { ErrorDetail, ValidationError } from '../../common/errors/domain-error';
import { ORG_ROLES, OrgRole, roleIn } from '../orgs/org-roles';

/** The contract's message length: 1..4000 characters (Unicode code points) after trimming. */
export const MESSAGE_BODY_MAX_CHARS = 4000;

/**
 * The body as stored: trimmed, 1..4000 characters, or empty only when the
 * message carries attachments. Throws VALIDATION_FAILED naming `body`.
 */
export function messageBody(body: string, attachmentCount: number): string {
  const trimmed = body.trim();
  const length = [...trimmed].length;
  let problem: ErrorDetail | null = null;
  if (length === 0 && attachmentCount === 0)
    problem = { path: 'body', message: 'must not be empty (unless the message carries attachments)' };
  else if (length > MESSAGE_BODY_MAX_CHARS)
    problem = { path: 'body', message: `must be at most ${MESSAGE_BODY_MAX_CHARS} characters after trimming` };
  if (problem) throw new ValidationError([problem]);
  return trimmed;
}

/** Which threads a user belongs to, from their current memberships (see docs/chat.md). */
export interface ThreadScope {
  /** Orgs whose trip threads the user is in: every role but DRIVER. */
  tripOrgIds: string[];
  /** Driver profiles (not ended) whose trips' threads the user is in. */
  driverIds: string[];
  /** Orgs whose account threads the user is in: OWNER, ADMIN, ACCOUNTANT. */
  accountOrgIds: string[];
}

export function threadScope(
  memberships: readonly { orgId: string; role: OrgRole }[],
  activeDriverIds: readonly string[],
): ThreadScope {
  return {
    tripOrgIds: memberships.filter((m) => roleIn(m.role, ORG_ROLES.staff)).map((m) => m.orgId),
    driverIds: [...activeDriverIds],
    accountOrgIds: memberships.filter((m) => roleIn(m.role, ORG_ROLES.ledger)).map((m) => m.orgId),
  };
}

/** Whether roles held in an account's two orgs make the user a member of its thread. */
export function isAccountThreadMember(rolesInAccountOrgs: Iterable<OrgRole>): boolean {
  for (const role of rolesInAccountOrgs) if (roleIn(role, ORG_ROLES.ledger)) return true;
  return false;
}

/** The fields a thread has; `?fields=` selects among them (unknown names: 400). */
export const THREAD_FIELDS = [
  'id',
  'tripId',
  'accountId',
  'title',
  'unreadCount',
  'lastMessageAt',
  'createdAt',
] as const;
export type ThreadField = (typeof THREAD_FIELDS)[number];

/** Parses `?fields=` of a thread read: null for every field. Threads have no relations, so no dotted paths. */
export function parseThreadFields(raw: string | undefined): ThreadField[] | null {
  if (raw === undefined || raw.trim() === '') return null;
  const names = [...new Set(raw.split(',').map((f) => f.trim()))];
  const unknown = names.filter((n) => !(THREAD_FIELDS as readonly string[]).includes(n));
  if (unknown.length > 0)
    throw new ValidationError([
      { path: 'fields', message: `unknown field(s) ${unknown.join(', ')}; known: ${THREAD_FIELDS.join(', ')}` },
    ]);
  return names as ThreadField[];
}

export function projectThread<T extends Record<ThreadField, unknown>>(
  thread: T,
  fields: readonly ThreadField[] | null,
): Partial<T> {
  if (!fields) return thread;
  const out: Partial<T> = {};
  for (const f of fields) out[f] = thread[f];
  return out;
}

/** The message keyset cursor: the `seq` of the last message of a page (messages go newest first). */
export function encodeMessageCursor(seq: string): string {
  return Buffer.from(`m${seq}`).toString('base64url');
}

export function decodeMessageCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^m[1-9]\d{0,18}$/.test(text)) throw new ValidationError([{ path: 'cursor', message: 'Invalid cursor' }]);
  return text.slice(1);
}
