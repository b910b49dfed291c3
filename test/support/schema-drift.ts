import { getDMMF } from '@prisma/internals';
import { Client } from 'pg';

/**
 * Compares what schema.prisma describes with what the migrated database holds:
 * tables, columns (type, nullability, default), enums, primary keys, indexes
 * (uniqueness, columns, order, method) and foreign keys. Returns one line per
 * difference; an empty list means they match.
 */

type DmmfField = {
  name: string;
  dbName?: string | null;
  kind: 'scalar' | 'object' | 'enum' | 'unsupported';
  isList: boolean;
  isRequired: boolean;
  isId: boolean;
  isUnique: boolean;
  type: string;
  nativeType?: [string, string[]] | null;
  default?: unknown;
  hasDefaultValue: boolean;
  relationFromFields?: string[];
  relationToFields?: string[];
  relationOnDelete?: string;
  relationOnUpdate?: string;
};
type DmmfModel = {
  name: string;
  dbName: string | null;
  fields: DmmfField[];
  primaryKey: { name: string | null; fields: string[] } | null;
};
type DmmfIndex = {
  model: string;
  type: 'id' | 'normal' | 'unique' | 'fulltext';
  name?: string;
  dbName?: string;
  algorithm?: string;
  fields: { name: string; sortOrder?: 'asc' | 'desc' }[];
};
type DmmfEnum = { name: string; dbName?: string | null; values: { name: string; dbName?: string | null }[] };

const MAX_IDENT = 63;
const ident = (s: string) => s.slice(0, MAX_IDENT);

function columnType(f: DmmfField, enums: Map<string, string>): string {
  const native = f.nativeType;
  let t: string;
  if (f.kind === 'enum') t = enums.get(f.type) ?? f.type;
  else if (native) {
    const [name, args] = native;
    const a = args.join(',');
    const map: Record<string, string> = {
      Uuid: 'uuid',
      Text: 'text',
      VarChar: a ? `character varying(${a})` : 'character varying',
      Char: `character(${a || 1})`,
      Integer: 'integer',
      SmallInt: 'smallint',
      BigInt: 'bigint',
      DoublePrecision: 'double precision',
      Real: 'real',
      Decimal: a ? `numeric(${a})` : 'numeric',
      Timestamptz: `timestamp(${a || 6}) with time zone`,
      Timestamp: `timestamp(${a || 6}) without time zone`,
      Date: 'date',
      JsonB: 'jsonb',
      Json: 'json',
      Boolean: 'boolean',
      ByteA: 'bytea',
      Inet: 'inet',
    };
    t = map[name] ?? name.toLowerCase();
  } else {
    const map: Record<string, string> = {
      String: 'text',
      Int: 'integer',
      BigInt: 'bigint',
      Float: 'double precision',
      Decimal: 'numeric(65,30)',
      Boolean: 'boolean',
      DateTime: 'timestamp(3) without time zone',
      Json: 'jsonb',
      Bytes: 'bytea',
    };
    t = map[f.type] ?? f.type;
  }
  return f.isList ? `${t}[]` : t;
}

/** The default as PostgreSQL prints it (pg_get_expr), or null when the database has none. */
function columnDefault(f: DmmfField): string | null {
  if (!f.hasDefaultValue || f.default === undefined) return null;
  const d = f.default as { name?: string; args?: unknown[] } | string | number | boolean;
  if (typeof d === 'object' && d && 'name' in d) {
    switch (d.name) {
      case 'now':
        return 'CURRENT_TIMESTAMP';
      case 'uuid':
      case 'cuid':
      case 'nanoid':
      case 'ulid':
        return null; // made by the client, not the database
      case 'autoincrement':
        return 'nextval';
      case 'dbgenerated':
        return String(d.args?.[0] ?? '');
      default:
        return `${d.name}()`;
    }
  }
  return String(d);
}

/** Strips casts and quotes, so `'OPEN'::"invoice_status"` and `OPEN` compare equal. */
function normDefault(expr: string | null): string | null {
  if (expr === null) return null;
  if (expr.startsWith('nextval(')) return 'nextval';
  return expr
    .replace(/::[\w" .[\]()]+/g, '')
    .replace(/^'(.*)'$/, '$1')
    .replace(/^\((.*)\)$/, '$1')
    .trim();
}

const norm = (s: string) => s.replace(/"/g, '').replace(/\s+/g, ' ').trim();

export async function schemaDifferences(
  datamodel: string,
  sql: Client,
  options: { ignoreIndexes?: string[] } = {},
): Promise<string[]> {
  const dmmf = (await getDMMF({ datamodel })) as unknown as {
    datamodel: { models: DmmfModel[]; enums: DmmfEnum[]; indexes: DmmfIndex[] };
  };
  const { models, enums, indexes } = dmmf.datamodel;
  const diffs: string[] = [];
  const enumDb = new Map(enums.map((e) => [e.name, e.dbName ?? e.name]));
  const tableOf = new Map(models.map((m) => [m.name, m.dbName ?? m.name]));
  const colOf = (model: DmmfModel, field: string) => {
    const f = model.fields.find((x) => x.name === field);
    return f?.dbName ?? field;
  };

  // Enums
  const dbEnums = await sql.query<{ name: string; values: string[] }>(`
    SELECT t.typname AS name, array_agg(e.enumlabel ORDER BY e.enumsortorder)::text[] AS values
    FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = 'public' GROUP BY t.typname`);
  const dbEnumMap = new Map(dbEnums.rows.map((r) => [r.name, r.values]));
  for (const e of enums) {
    const name = e.dbName ?? e.name;
    const expected = e.values.map((v) => v.dbName ?? v.name);
    const actual = dbEnumMap.get(name);
    if (!actual) diffs.push(`enum ${name}: missing in database`);
    else if (actual.join(',') !== expected.join(',')) {
      diffs.push(`enum ${name}: values ${actual.join(',')} in database, ${expected.join(',')} in schema`);
    }
    dbEnumMap.delete(name);
  }
  for (const name of dbEnumMap.keys()) diffs.push(`enum ${name}: in database but not in schema`);

  // Tables
  const dbTables = await sql.query<{ name: string }>(`
    SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname <> '_prisma_migrations'`);
  const dbTableSet = new Set(dbTables.rows.map((r) => r.name));
  for (const m of models) {
    const table = tableOf.get(m.name)!;
    if (!dbTableSet.has(table)) diffs.push(`table ${table}: missing in database`);
    dbTableSet.delete(table);
  }
  for (const t of dbTableSet) diffs.push(`table ${t}: in database but not in schema`);

  // Columns
  const cols = await sql.query<{ table: string; column: string; type: string; notnull: boolean; def: string | null }>(`
    SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
           a.attnotnull AS notnull, pg_get_expr(d.adbin, d.adrelid) AS def
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped`);
  const dbCols = new Map<string, Map<string, (typeof cols.rows)[number]>>();
  for (const r of cols.rows) {
    if (!dbCols.has(r.table)) dbCols.set(r.table, new Map());
    dbCols.get(r.table)!.set(r.column, r);
  }
  for (const m of models) {
    const table = tableOf.get(m.name)!;
    const actual = new Map(dbCols.get(table) ?? []);
    if (!dbCols.has(table)) continue;
    for (const f of m.fields.filter((x) => x.kind !== 'object')) {
      const col = f.dbName ?? f.name;
      const a = actual.get(col);
      if (!a) {
        diffs.push(`column ${table}.${col}: missing in database`);
        continue;
      }
      actual.delete(col);
      const type = columnType(f, enumDb);
      if (norm(a.type) !== norm(type))
        diffs.push(`column ${table}.${col}: type ${a.type} in database, ${type} in schema`);
      const required = f.isRequired || f.isList;
      if (a.notnull !== f.isRequired && !(f.isList && a.notnull === required)) {
        diffs.push(
          `column ${table}.${col}: ${a.notnull ? 'NOT NULL' : 'nullable'} in database, ${f.isRequired ? 'required' : 'optional'} in schema`,
        );
      }
      const expectedDefault = normDefault(columnDefault(f));
      const actualDefault = normDefault(a.def);
      if (expectedDefault !== actualDefault) {
        diffs.push(
          `column ${table}.${col}: default ${a.def ?? 'none'} in database, ${columnDefault(f) ?? 'none'} in schema`,
        );
      }
    }
    for (const col of actual.keys()) diffs.push(`column ${table}.${col}: in database but not in schema`);
  }

  // Indexes (primary keys included)
  const idx = await sql.query<{ table: string; name: string; def: string }>(`
    SELECT c.relname AS table, i.relname AS name, pg_get_indexdef(x.indexrelid) AS def
    FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relname <> '_prisma_migrations' AND c.relkind IN ('r', 'p')`);
  const dbIdx = new Map(idx.rows.map((r) => [r.name, r]));
  for (const ix of indexes) {
    const model = models.find((m) => m.name === ix.model)!;
    const table = tableOf.get(ix.model)!;
    const columns = ix.fields.map((f) => colOf(model, f.name));
    const suffix = ix.type === 'id' ? 'pkey' : ix.type === 'unique' ? 'key' : 'idx';
    const name = ident(ix.dbName ?? (ix.type === 'id' ? `${table}_pkey` : `${table}_${columns.join('_')}_${suffix}`));
    const method = (ix.algorithm ?? 'btree').toLowerCase();
    const colList = ix.fields.map((f, i) => `${columns[i]}${f.sortOrder === 'desc' ? ' DESC' : ''}`).join(', ');
    const unique = ix.type === 'id' || ix.type === 'unique' ? 'UNIQUE ' : '';
    const expected = `CREATE ${unique}INDEX ${name} ON public.${table} USING ${method} (${colList})`;
    const a = dbIdx.get(name);
    if (!a) diffs.push(`index ${name} on ${table}: missing in database`);
    else if (norm(a.def) !== norm(expected))
      diffs.push(`index ${name}: "${a.def}" in database, "${expected}" in schema`);
    dbIdx.delete(name);
  }
  for (const [name, r] of dbIdx) {
    if (!options.ignoreIndexes?.includes(name))
      diffs.push(`index ${name} on ${r.table}: in database but not in schema`);
  }

  // Foreign keys
  const fks = await sql.query<{ table: string; name: string; def: string }>(`
    SELECT c.relname AS table, k.conname AS name, pg_get_constraintdef(k.oid) AS def
    FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND k.contype = 'f'`);
  const dbFk = new Map(fks.rows.map((r) => [r.name, r]));
  const action = (a: string) => a.replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
  for (const m of models) {
    const table = tableOf.get(m.name)!;
    for (const f of m.fields.filter((x) => x.kind === 'object' && x.relationFromFields?.length)) {
      const from = f.relationFromFields!.map((x) => colOf(m, x));
      const target = models.find((x) => x.name === f.type)!;
      const to = f.relationToFields!.map((x) => colOf(target, x));
      const anyOptional = f.relationFromFields!.some((x) => !m.fields.find((y) => y.name === x)!.isRequired);
      const onDelete = f.relationOnDelete ?? (anyOptional ? 'SetNull' : 'Restrict');
      const onUpdate = f.relationOnUpdate ?? 'Cascade';
      const name = ident(`${table}_${from.join('_')}_fkey`);
      let expected = `FOREIGN KEY (${from.join(', ')}) REFERENCES ${tableOf.get(target.name)}(${to.join(', ')})`;
      if (onUpdate !== 'NoAction') expected += ` ON UPDATE ${action(onUpdate)}`;
      if (onDelete !== 'NoAction') expected += ` ON DELETE ${action(onDelete)}`;
      const a = dbFk.get(name);
      if (!a) diffs.push(`foreign key ${name}: missing in database`);
      else if (norm(a.def) !== norm(expected))
        diffs.push(`foreign key ${name}: "${a.def}" in database, "${expected}" in schema`);
      dbFk.delete(name);
    }
  }
  for (const [name, r] of dbFk) diffs.push(`foreign key ${name} on ${r.table}: in database but not in schema`);

  return diffs;
}
