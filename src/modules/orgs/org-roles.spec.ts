import { Role } from '../../generated/prisma/enums';
import { ORG_ROLE_NAMES, ORG_ROLES, roleIn } from './org-roles';

describe('org roles', () => {
  it('are the roles of the database enum, no more, no fewer', () => {
    expect([...ORG_ROLE_NAMES].sort()).toEqual(Object.values(Role).sort());
  });

  it('every group names only known roles, and staff is every role but DRIVER', () => {
    for (const group of Object.values(ORG_ROLES)) for (const r of group) expect(ORG_ROLE_NAMES).toContain(r);
    expect(ORG_ROLES.staff).toEqual(ORG_ROLE_NAMES.filter((r) => r !== 'DRIVER'));
  });

  it('roleIn: a member whose role is in the group; a non-member never', () => {
    expect(roleIn('ACCOUNTANT', ORG_ROLES.ledger)).toBe(true);
    expect(roleIn('STAFF', ORG_ROLES.ledger)).toBe(false);
    expect(roleIn(null, ORG_ROLES.any)).toBe(false);
    expect(roleIn(undefined, ORG_ROLES.any)).toBe(false);
  });
});
