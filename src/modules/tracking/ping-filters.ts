import { z } from 'zod';
import { distanceM } from './geo';

/** One fix as the writer stores it. */
export interface PingRow {
  tripId: string;
  recordedAt: Date;
  lat: number;
  lng: number;
  accuracy: number | null;
  speed: number | null;
  heading: number | null;
  altitude: number | null;
  batchId: string | null;
}

export const REJECT_REASONS = [
  'INVALID',
  'OUT_OF_RANGE',
  'NULL_ISLAND',
  'FUTURE_TIMESTAMP',
  'BEFORE_TRIP_START',
  'SPEED_JUMP',
] as const;

export type RejectReason = (typeof REJECT_REASONS)[number];

export interface Rejection {
  index: number;
  reason: RejectReason;
  message?: string;
}

export const FUTURE_TOLERANCE_MS = 5 * 60_000;

/**
 * A device time as ISO-8601 (a zone-less "YYYY-MM-DD hh:mm:ss" is UTC), or
 * epoch seconds or milliseconds (number or digits; below 1e11 means seconds),
 * kept to the millisecond. Null when it is none of these.
 */
export function parseTimestamp(value: unknown): Date | null {
  let ms: number;
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) return null;
    ms = value < 1e11 ? value * 1000 : value;
  } else if (typeof value === 'string') {
    const s = value.trim();
    if (s === '') return null;
    if (/^\d+(\.\d+)?$/.test(s)) return parseTimestamp(Number(s));
    let iso = s.replace(' ', 'T');
    if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(iso)) iso += 'Z';
    if (!/^\d{4}-\d{2}-\d{2}T/.test(iso)) return null;
    ms = Date.parse(iso);
    if (Number.isNaN(ms)) return null;
  } else {
    return null;
  }
  const d = new Date(Math.round(ms));
  return Number.isNaN(d.getTime()) ? null : d;
}

const optionalNumber = z.number().finite().nullable().optional();

/** One location of POST /tracking/ping, before the filters. */
export const locationSchema = z.strictObject({
  latitude: z.number().finite(),
  longitude: z.number().finite(),
  timestamp: z.union([z.string().max(64), z.number()]),
  accuracy: optionalNumber,
  speed: optionalNumber,
  heading: optionalNumber,
  altitude: optionalNumber,
  batchId: z.string().max(128).nullable().optional(),
});

export interface FilterContext {
  tripId: string;
  tripCreatedAt: Date;
  now: Date;
}

export interface Candidate {
  index: number;
  row: PingRow;
}

const nonNegative = (v: number | null | undefined) => (v === undefined || v === null || v < 0 ? null : v);

/**
 * Per-point validation and the filters that need nothing but the point:
 * shape, range, exactly (0,0), more than 5 minutes in the future, before the
 * trip was created.
 */
export function checkPoints(
  locations: readonly unknown[],
  ctx: FilterContext,
): { candidates: Candidate[]; rejected: Rejection[] } {
  const candidates: Candidate[] = [];
  const rejected: Rejection[] = [];
  const latest = ctx.now.getTime() + FUTURE_TOLERANCE_MS;
  locations.forEach((raw, index) => {
    const parsed = locationSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      rejected.push({ index, reason: 'INVALID', message: `${issue.path.join('.') || 'location'}: ${issue.message}` });
      return;
    }
    const p = parsed.data;
    const recordedAt = parseTimestamp(p.timestamp);
    if (!recordedAt) {
      rejected.push({
        index,
        reason: 'INVALID',
        message: 'timestamp: expected ISO-8601 or epoch seconds/milliseconds',
      });
      return;
    }
    if (p.latitude < -90 || p.latitude > 90 || p.longitude < -180 || p.longitude > 180) {
      rejected.push({ index, reason: 'OUT_OF_RANGE' });
      return;
    }
    if (p.latitude === 0 && p.longitude === 0) {
      rejected.push({ index, reason: 'NULL_ISLAND' });
      return;
    }
    if (recordedAt.getTime() > latest) {
      rejected.push({ index, reason: 'FUTURE_TIMESTAMP' });
      return;
    }
    if (recordedAt.getTime() < ctx.tripCreatedAt.getTime()) {
      rejected.push({ index, reason: 'BEFORE_TRIP_START' });
      return;
    }
    candidates.push({
      index,
      row: {
        tripId: ctx.tripId,
        recordedAt,
        lat: p.latitude,
        lng: p.longitude,
        accuracy: nonNegative(p.accuracy),
        speed: nonNegative(p.speed),
        heading: p.heading === undefined || p.heading === null || p.heading < 0 ? null : p.heading % 360,
        altitude: p.altitude ?? null,
        batchId: p.batchId ?? null,
      },
    });
  });
  return { candidates, rejected };
}

export interface Fix {
  lat: number;
  lng: number;
  recordedAt: Date;
}

/**
 * The implied-speed filter: each point is compared with the fix just before
 * it in time, among the stored track (`stored`, any order) and the points of
 * this batch that passed. A point at the same instant as its neighbour is a
 * repeat, not a jump (the writer counts it as a duplicate).
 */
export function speedFilter(
  candidates: readonly Candidate[],
  stored: readonly Fix[],
  maxSpeedMps: number,
): { kept: Candidate[]; rejected: Rejection[] } {
  const sorted = [...candidates].sort(
    (a, b) => a.row.recordedAt.getTime() - b.row.recordedAt.getTime() || a.index - b.index,
  );
  const track = [...stored].sort((a, b) => a.recordedAt.getTime() - b.recordedAt.getTime());
  const kept: Candidate[] = [];
  const rejected: Rejection[] = [];
  let s = 0;
  let lastStored: Fix | null = null;
  let lastKept: Fix | null = null;
  for (const c of sorted) {
    const t = c.row.recordedAt.getTime();
    while (s < track.length && track[s].recordedAt.getTime() <= t) lastStored = track[s++];
    const prev =
      lastKept && (!lastStored || lastKept.recordedAt.getTime() >= lastStored.recordedAt.getTime())
        ? lastKept
        : lastStored;
    if (prev) {
      const dt = (t - prev.recordedAt.getTime()) / 1000;
      if (dt > 0 && distanceM(prev, c.row) / dt > maxSpeedMps) {
        rejected.push({ index: c.index, reason: 'SPEED_JUMP' });
        continue;
      }
    }
    kept.push(c);
    lastKept = c.row;
  }
  kept.sort((a, b) => a.index - b.index);
  return { kept, rejected };
}
