import { ValidationError } from '../../common/errors/domain-error';

/**
 * `?fields=` for trips: dotted paths into the trip and its relations, turned
 * into one Prisma `select` (so only those columns are read, in one query) and
 * a projection of the row into the response shape.
 */
type Row = Record<string, unknown>;
type Select = { [key: string]: true | { select: Select } };

interface FieldDef {
  select: Select;
  get: (row: Row) => unknown;
}

const col = (name: string): FieldDef => ({ select: { [name]: true }, get: (r) => r[name] });

const point = (prefix: 'start' | 'end'): FieldDef => ({
  select: { [`${prefix}Name`]: true, [`${prefix}Lat`]: true, [`${prefix}Lng`]: true },
  get: (r) => ({ name: r[`${prefix}Name`], lat: r[`${prefix}Lat`], lng: r[`${prefix}Lng`] }),
});

const TOP: Record<string, FieldDef> = {
  id: col('id'),
  status: col('status'),
  sourceOrgId: col('sourceOrgId'),
  destinationOrgId: col('destinationOrgId'),
  truckId: col('truckId'),
  driverId: col('driverId'),
  startPoint: point('start'),
  endPoint: point('end'),
  estimatedArrival: col('estimatedArrival'),
  distanceKm: col('distanceKm'),
  latestLocation: {
    select: { latestLat: true, latestLng: true, latestSpeed: true, latestHeading: true, latestRecordedAt: true },
    get: (r) =>
      r.latestRecordedAt == null
        ? null
        : {
            lat: r.latestLat,
            lng: r.latestLng,
            speed: r.latestSpeed,
            heading: r.latestHeading,
            recordedAt: r.latestRecordedAt,
          },
  },
  createdAt: col('createdAt'),
  updatedAt: col('updatedAt'),
};

const orgFields: Record<string, FieldDef> = { id: col('id'), name: col('name'), city: col('city') };

/** Relations of a trip that `fields` may reach into, with the fields each exposes. */
const RELATIONS: Record<string, Record<string, FieldDef>> = {
  truck: { id: col('id'), number: col('number'), type: col('type'), capacityKg: col('capacityKg') },
  driver: {
    id: col('id'),
    userId: col('userId'),
    licenseNo: col('licenseNo'),
    deviceId: col('deviceId'),
    name: { select: { user: { select: { name: true } } }, get: (r) => (r.user as Row).name },
    phone: { select: { user: { select: { phone: true } } }, get: (r) => (r.user as Row).phone },
  },
  sourceOrg: orgFields,
  destinationOrg: orgFields,
};

export const DEFAULT_TRIP_FIELDS: readonly string[] = Object.keys(TOP);

/** Every path a client may name (a bare relation name means all of its fields). */
export const KNOWN_TRIP_FIELDS: readonly string[] = [
  ...Object.keys(TOP),
  ...Object.entries(RELATIONS).flatMap(([rel, fields]) => [rel, ...Object.keys(fields).map((f) => `${rel}.${f}`)]),
];

/** Parses `?fields=`: the leaf paths requested, or a 400 listing every unknown one. */
export function parseTripFields(raw: string | undefined): string[] {
  if (raw === undefined || raw.trim() === '') return [...DEFAULT_TRIP_FIELDS];
  const asked = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown: string[] = [];
  const out = new Set<string>();
  for (const path of asked) {
    if (TOP[path]) {
      out.add(path);
    } else if (RELATIONS[path]) {
      for (const f of Object.keys(RELATIONS[path])) out.add(`${path}.${f}`);
    } else {
      const [rel, field, ...rest] = path.split('.');
      if (rest.length === 0 && field && RELATIONS[rel]?.[field]) out.add(path);
      else unknown.push(path);
    }
  }
  if (unknown.length > 0) {
    throw new ValidationError(
      unknown.map((f) => ({ path: 'fields', message: `unknown field "${f}"`, field: f })),
      `Unknown fields: ${unknown.join(', ')}`,
    );
  }
  if (out.size === 0) return [...DEFAULT_TRIP_FIELDS];
  return [...out];
}

function merge(into: Select, from: Select): Select {
  for (const [k, v] of Object.entries(from)) {
    const cur = into[k];
    if (v === true) {
      if (cur === undefined) into[k] = true;
    } else if (cur === undefined || cur === true) {
      into[k] = { select: merge({}, v.select) };
    } else {
      merge(cur.select, v.select);
    }
  }
  return into;
}

/** The Prisma `select` that reads exactly these fields (plus id and createdAt, which the cursor needs). */
export function tripSelect(fields: readonly string[]): Select {
  const select: Select = { id: true, createdAt: true };
  for (const path of fields) {
    const [head, leaf] = path.split('.');
    if (leaf === undefined) merge(select, TOP[head].select);
    else merge(select, { [head]: { select: RELATIONS[head][leaf].select } });
  }
  return select;
}

/** The response object of one row with exactly the requested fields. */
export function projectTrip(row: Row, fields: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const path of fields) {
    const [head, leaf] = path.split('.');
    if (leaf === undefined) {
      out[head] = TOP[head].get(row);
    } else {
      const rel = row[head] as Row | null | undefined;
      if (rel == null) {
        out[head] = null;
        continue;
      }
      const nested = (out[head] ?? {}) as Row;
      nested[leaf] = RELATIONS[head][leaf].get(rel);
      out[head] = nested;
    }
  }
  return out;
}
