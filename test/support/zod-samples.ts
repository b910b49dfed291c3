import { randomUUID } from 'node:crypto';
import { ZodType } from 'zod';

/**
 * Reads zod 4 schemas (the routes' own DTO schemas) to make a plausible valid
 * value and to list the fields a sweep mutates. Only what the API's schemas use
 * is understood: objects, arrays, tuples, strings with formats and lengths,
 * numbers, booleans, enums, literals, unions, optional/default/nullable/pipe
 * wrappers. A field the generator cannot satisfy takes its value from `hints`
 * (by field name), which the sweeps fill with the world's real ids.
 */

interface Def {
  type: string;
  [key: string]: any;
}

const defOf = (s: unknown): Def => (s as { _zod: { def: Def } })._zod.def;

/** The schema under optional/default/nullable/pipe/catch wrappers. */
export function unwrap(s: ZodType): ZodType {
  let cur: any = s;
  for (;;) {
    const d = defOf(cur);
    if (['optional', 'default', 'nullable', 'prefault', 'catch', 'readonly', 'nonoptional'].includes(d.type))
      cur = d.innerType;
    else if (d.type === 'pipe') cur = defOf(d.in).type === 'transform' ? d.out : d.in;
    else if (d.type === 'lazy') cur = d.getter();
    else return cur as ZodType;
  }
}

export const isOptional = (s: ZodType): boolean => {
  const t = defOf(s).type;
  return t === 'optional' || t === 'default' || t === 'prefault';
};

export type LeafKind = 'string' | 'number' | 'boolean' | 'enum' | 'literal' | 'array' | 'object' | 'other';

/** What a field takes, enough to pick wrong values for it. */
export interface Leaf {
  /** Dotted path into the value; array elements as `.0`. */
  path: string[];
  kind: LeafKind;
  /** For strings: a format (uuid, datetime, regex...) or a closed set; free text otherwise. */
  format?: string;
  maxLength?: number;
  /** For numbers: the smallest and largest values allowed, if bounded. */
  min?: number;
  max?: number;
  /** For numbers: integers only. */
  int?: boolean;
  coerce?: boolean;
}

function checksOf(d: Def): Def[] {
  return ((d.checks ?? []) as { _zod: { def: Def } }[]).map((c) => c._zod.def);
}

export function kindOf(s: ZodType): Leaf {
  const d = defOf(unwrap(s));
  switch (d.type) {
    case 'string': {
      const checks = checksOf(d);
      const format = (d.format as string | undefined) ?? checks.find((c) => c.check === 'string_format')?.format;
      const max = checks.find((c) => c.check === 'max_length')?.maximum as number | undefined;
      return { path: [], kind: 'string', format, maxLength: max, coerce: Boolean(d.coerce) };
    }
    case 'number':
    case 'int':
    case 'bigint':
      return {
        path: [],
        kind: 'number',
        coerce: Boolean(d.coerce),
        max: checksOf(d).find((c) => c.check === 'less_than')?.value as number | undefined,
        min: checksOf(d).find((c) => c.check === 'greater_than')?.value as number | undefined,
        int: checksOf(d).some((c) => c.check === 'number_format' && /int/.test(String(c.format))),
      };
    case 'boolean':
      return { path: [], kind: 'boolean', coerce: Boolean(d.coerce) };
    case 'enum':
      return { path: [], kind: 'enum' };
    case 'literal':
      return { path: [], kind: 'literal' };
    case 'array':
    case 'tuple':
      return { path: [], kind: 'array' };
    case 'object':
      return { path: [], kind: 'object' };
    default:
      return { path: [], kind: 'other' };
  }
}

/** The fields of an object schema (after unwrapping), or none. */
export function shapeOf(s: ZodType | undefined): Record<string, ZodType> {
  if (!s) return {};
  const d = defOf(unwrap(s));
  if (d.type === 'object') return d.shape as Record<string, ZodType>;
  if (d.type === 'union' || d.type === 'intersection') {
    const parts = (d.options ?? [d.left, d.right]) as ZodType[];
    return Object.assign({}, ...parts.map((p) => shapeOf(p)));
  }
  return {};
}

/** Every field of the schema, nested objects and the first element of arrays included. */
export function leaves(s: ZodType | undefined, path: string[] = [], depth = 0): Leaf[] {
  if (!s || depth > 4) return [];
  const out: Leaf[] = [];
  for (const [key, field] of Object.entries(shapeOf(s))) {
    const p = [...path, key];
    const k = { ...kindOf(field), path: p };
    out.push(k);
    const inner = defOf(unwrap(field));
    if (inner.type === 'object') out.push(...leaves(field, p, depth + 1));
    if (inner.type === 'array' && defOf(unwrap(inner.element as ZodType)).type === 'object')
      out.push(...leaves(inner.element as ZodType, [...p, '0'], depth + 1));
  }
  return out;
}

export type Hints = Record<string, unknown>;

/** A plausible valid value for the schema; `key` is the field's name, looked up in `hints` first. */
export function sample(s: ZodType, hints: Hints, key = '', withOptional = true): unknown {
  if (key && key in hints) return hints[key];
  const d = defOf(s);
  switch (d.type) {
    case 'optional':
    case 'nullable':
    case 'readonly':
    case 'nonoptional':
    case 'catch':
      return sample(d.innerType as ZodType, hints, key, withOptional);
    case 'default':
    case 'prefault':
      return sample(d.innerType as ZodType, hints, key, withOptional);
    case 'pipe':
      return sample((defOf(d.in).type === 'transform' ? d.out : d.in) as ZodType, hints, key, withOptional);
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, f] of Object.entries(d.shape as Record<string, ZodType>)) {
        if (!withOptional && isOptional(f)) continue;
        out[k] = sample(f, hints, k, withOptional);
      }
      return out;
    }
    case 'array': {
      const min = (checksOf(d).find((c) => c.check === 'min_length')?.minimum as number | undefined) ?? 1;
      return Array.from({ length: Math.max(1, min) }, () => sample(d.element as ZodType, hints, '', withOptional));
    }
    case 'tuple':
      return (d.items as ZodType[]).map((i) => sample(i, hints, '', withOptional));
    case 'union':
      return sample((d.options as ZodType[])[0], hints, key, withOptional);
    case 'enum':
      return Object.values(d.entries as Record<string, unknown>)[0];
    case 'literal':
      return (d.values as unknown[])[0];
    case 'boolean':
      return true;
    case 'number':
    case 'int': {
      const checks = checksOf(d);
      const min = checks.find((c) => c.check === 'greater_than')?.value as number | undefined;
      const max = checks.find((c) => c.check === 'less_than')?.value as number | undefined;
      const v = min !== undefined ? Math.max(min, Math.min(1, max ?? 1)) : Math.min(1, max ?? 1);
      return Number.isInteger(v) ? v : Math.ceil(v);
    }
    case 'string': {
      const checks = checksOf(d);
      const format = (d.format as string | undefined) ?? checks.find((c) => c.check === 'string_format')?.format;
      switch (format) {
        case 'uuid':
        case 'guid':
          return randomUUID();
        case 'datetime':
          return new Date(Date.now() - 60_000).toISOString();
        case 'date':
          return new Date().toISOString().slice(0, 10);
        case 'url':
          return 'https://example.com/hook';
        case 'email':
          return 'sweep@example.com';
      }
      const min = (checks.find((c) => c.check === 'min_length')?.minimum as number | undefined) ?? 1;
      const max = (checks.find((c) => c.check === 'max_length')?.maximum as number | undefined) ?? 40;
      const base = `sweep-${key || 'value'}`;
      return base.padEnd(min, 'x').slice(0, Math.max(min, Math.min(max, base.length)));
    }
    default:
      return undefined;
  }
}

/** Sets `value` at `path` in a copy of `obj` (creating objects and arrays on the way). */
export function setPath(obj: unknown, path: string[], value: unknown): unknown {
  const root: any = structuredClone(obj ?? {});
  let cur = root;
  for (let i = 0; i < path.length - 1; i++) {
    const k = path[i];
    if (cur[k] === undefined || cur[k] === null || typeof cur[k] !== 'object')
      cur[k] = /^\d+$/.test(path[i + 1]) ? [] : {};
    cur = cur[k];
  }
  cur[path[path.length - 1]] = value;
  return root;
}
