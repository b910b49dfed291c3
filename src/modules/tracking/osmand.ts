import { ErrorDetail } from '../../common/errors/domain-error';
import { parseTimestamp } from './ping-filters';

export const KNOTS_TO_MPS = 1852 / 3600;

/** One fix reported over the OsmAnd protocol, in our units (speed m/s). */
export interface OsmAndFix {
  latitude: number;
  longitude: number;
  /** Epoch ms; the server's clock when the device sent none. */
  timestamp: number;
  speed: number | null;
  heading: number | null;
  altitude: number | null;
  accuracy: number | null;
}

type Params = Record<string, unknown>;

const str = (v: unknown): string | undefined => {
  if (Array.isArray(v)) v = v[0];
  if (v === undefined || v === null) return undefined;
  const s = String(v).trim();
  return s === '' ? undefined : s;
};

const num = (v: unknown): number | null => {
  const s = str(v);
  if (s === undefined) return null;
  const n = Number(s);
  return Number.isFinite(n) ? n : null;
};

const nonNegative = (n: number | null) => (n === null || n < 0 ? null : n);

const jsonBody = (body: unknown): Params | null =>
  body && typeof body === 'object' && !Array.isArray(body) ? (body as Params) : null;

/**
 * The driver's tracker token, where the apps put their device identifier:
 * `id` or `deviceid` (query string or form body), `device_id` in the JSON
 * body of newer Traccar Client versions. Undefined when none was sent.
 */
export function osmandToken(query: Params, body: unknown): string | undefined {
  const json = jsonBody(body);
  if (json && json.location && typeof json.location === 'object') {
    return str(json.device_id) ?? str(json.deviceId) ?? str(json.id) ?? str(query.id) ?? str(query.deviceid);
  }
  const p: Params = { ...query, ...(json ?? {}) };
  return str(p.id) ?? str(p.deviceid) ?? str(p.deviceId) ?? str(p.device_id);
}

/**
 * Reads a fix the way Traccar's OsmAnd decoder does: parameters in the query
 * string or a form-encoded body (`lat`/`lon` or
 * `location=lat,lon`, `timestamp` in s, ms or ISO, `speed` in knots,
 * `bearing`/`heading`, `altitude`, `accuracy`), or the JSON body of newer
 * Traccar Client versions (`location.coords.*` with speed in m/s). The
 * device identifier (the tracker token) is read apart, by `osmandToken`.
 */
export function parseOsmAnd(query: Params, body: unknown, now: Date): { fix: OsmAndFix } | { errors: ErrorDetail[] } {
  const json = jsonBody(body);
  if (json && json.location && typeof json.location === 'object') return parseTraccarJson(json, now);

  const p: Params = { ...query, ...(json ?? {}) };
  const errors: ErrorDetail[] = [];

  let lat = num(p.lat);
  let lon = num(p.lon) ?? num(p.lng);
  const location = str(p.location);
  if ((lat === null || lon === null) && location) {
    const [a, b] = location.split(',').map((x) => Number(x.trim()));
    if (Number.isFinite(a) && Number.isFinite(b)) {
      lat = a;
      lon = b;
    }
  }
  if (lat === null || lon === null)
    errors.push({ path: 'lat', message: 'lat and lon (or location=lat,lon) are required' });

  const ts = str(p.timestamp);
  const when = ts === undefined ? now : parseTimestamp(ts);
  if (!when) errors.push({ path: 'timestamp', message: 'expected epoch seconds, epoch milliseconds or ISO-8601' });
  if (errors.length) return { errors };

  const knots = num(p.speed);
  return {
    fix: {
      latitude: lat!,
      longitude: lon!,
      timestamp: when!.getTime(),
      speed: nonNegative(knots === null ? null : knots * KNOTS_TO_MPS),
      heading: nonNegative(num(p.bearing) ?? num(p.heading)),
      altitude: num(p.altitude),
      accuracy: nonNegative(num(p.accuracy)),
    },
  };
}

function parseTraccarJson(body: Params, now: Date): { fix: OsmAndFix } | { errors: ErrorDetail[] } {
  const errors: ErrorDetail[] = [];
  const location = body.location as Params;
  const coords = (location.coords && typeof location.coords === 'object' ? location.coords : {}) as Params;
  const lat = num(coords.latitude);
  const lon = num(coords.longitude);
  if (lat === null || lon === null)
    errors.push({ path: 'location.coords', message: 'latitude and longitude are required' });
  const when = location.timestamp === undefined ? now : parseTimestamp(location.timestamp);
  if (!when) errors.push({ path: 'location.timestamp', message: 'expected ISO-8601 or epoch seconds/milliseconds' });
  if (errors.length) return { errors };
  return {
    fix: {
      latitude: lat!,
      longitude: lon!,
      timestamp: when!.getTime(),
      speed: nonNegative(num(coords.speed)),
      heading: nonNegative(num(coords.heading)),
      altitude: num(coords.altitude),
      accuracy: nonNegative(num(coords.accuracy)),
    },
  };
}
