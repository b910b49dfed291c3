import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * The orgs module owns memberships, roles, trucks and driver profiles: other
 * features ask OrgsService rather than read those tables, and the role list
 * is declared once (org-roles.ts). Reads of the source text, no I/O beyond it.
 */
const SRC = join(__dirname, '..', '..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.spec.ts') ? [path] : [];
  });
}

/** The orgs module's tables, as SQL names and as Prisma delegates. */
const ORGS_TABLES = /\b(memberships|driver_profiles|trucks)\b|\.(membership|driverProfile|truck|org)\.|\bFROM orgs\b/g;

/**
 * Known exceptions (docs/ARCHITECTURE.md): auth's /me lists the user's
 * memberships (auth sits below orgs); the ping ingest state joins the
 * driver profile in the after-flush round's locking statement.
 */
const ALLOWED: Record<string, Record<string, number>> = {
  // One statement for /me: `FROM memberships`, its `AS memberships` column and the record's field.
  'modules/auth/auth.repository.ts': { memberships: 3 },
  'modules/trips/trips.repository.ts': { driver_profiles: 1 },
};

describe('the orgs module owns its tables and roles', () => {
  const files = [...sources(join(SRC, 'modules')), ...sources(join(SRC, 'common'))]
    .map((path) => ({ name: relative(SRC, path), text: readFileSync(path, 'utf8') }))
    .filter((f) => !f.name.startsWith('modules/orgs/'));
  /** Files that talk to the database (repositories, and anything else that does). */
  const dbFiles = files.filter((f) => /\bthis\.db\b|\$queryRaw|\btx\.query\b/.test(f.text));

  it('no other feature reads memberships, driver profiles, trucks or orgs', () => {
    expect(dbFiles.map((f) => f.name)).toContain('modules/trips/trips.repository.ts');
    const found = dbFiles.flatMap((f) => {
      const left = { ...ALLOWED[f.name] };
      return [...f.text.matchAll(ORGS_TABLES)]
        .map((m) => m[0])
        .filter((hit) => !(left[hit]-- > 0))
        .map((hit) => `${f.name}: ${hit}`);
    });
    expect(found).toEqual([]);
  });

  it('declares the role names only in org-roles.ts', () => {
    const found = files.filter((f) => /'ACCOUNTANT'/.test(f.text)).map((f) => f.name);
    expect(found).toEqual([]);
  });
});
