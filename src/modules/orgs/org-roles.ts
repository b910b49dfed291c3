/**
 * The roles a member holds in an org, and which of them may do what. The one
 * list: the orgs module owns memberships, every other feature asks it.
 */
export const ORG_ROLE_NAMES = ['OWNER', 'ADMIN', 'ACCOUNTANT', 'STAFF', 'DRIVER'] as const;
export type OrgRole = (typeof ORG_ROLE_NAMES)[number];

/** Who may do what inside an org. */
export const ORG_ROLES = {
  any: ORG_ROLE_NAMES,
  /** Change the org, its members, trucks and drivers. */
  manage: ['OWNER', 'ADMIN'],
  /** Read and post to the org's ledger, see its money figures. */
  ledger: ['OWNER', 'ADMIN', 'ACCOUNTANT'],
  /** Create trips and move them through any state. */
  operate: ['OWNER', 'ADMIN', 'STAFF'],
  /** Every member but a DRIVER: sees all of the org's trips (a DRIVER sees only their own). */
  staff: ['OWNER', 'ADMIN', 'ACCOUNTANT', 'STAFF'],
} as const satisfies Record<string, readonly OrgRole[]>;

/** Whether `role` (null: not a member) is one of `allowed`. */
export function roleIn(role: OrgRole | null | undefined, allowed: readonly OrgRole[]): role is OrgRole {
  return role != null && allowed.includes(role);
}
