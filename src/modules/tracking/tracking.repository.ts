import { Injectable } from '@nestjs/common';
import { Db, SqlTx } from '../../infra/db/db.service';
import { numberArray, textArray } from '../../infra/db/pg-array';
import { TrackFix } from './detectors';
import { Fix, PingRow } from './ping-filters';

/** A stored fix identified by its trip and its time in epoch ms. */
export interface PingKey {
  tripId: string;
  ms: number;
}

export interface HistoryPoint {
  lat: number;
  lng: number;
  speed: number | null;
  heading: number | null;
  accuracy: number | null;
  altitude: number | null;
  recordedAt: Date;
}

/**
 * The flush: insert the rows (skipping stored (trip, time) keys) and, in the
 * same statement, one backlog row per trip with the points actually inserted,
 * for the after-flush round to count (see TripPingBacklog in schema.prisma).
 * The arrays of a group are filled in one pass over the same rows: their
 * elements line up (take_trip_ping_backlog orders the points). Times go in as
 * epoch ms (float8; to_timestamp is exact to the microsecond at these magnitudes).
 */
const INSERT_UNNEST = `
  WITH ins AS (
    INSERT INTO trip_pings (trip_id, recorded_at, lat, lng, accuracy, speed, heading, altitude, batch_id)
    SELECT t, to_timestamp(ms / 1000), lat, lng, accuracy, speed, heading, altitude, batch
    FROM unnest($1::uuid[], $2::float8[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::text[])
      AS u(t, ms, lat, lng, accuracy, speed, heading, altitude, batch)
    ON CONFLICT (trip_id, recorded_at) DO NOTHING
    RETURNING trip_id, recorded_at, lat, lng, speed, heading
  ), backlog AS (
    INSERT INTO trip_ping_backlog (trip_id, recorded_at, lat, lng, speed, heading)
    SELECT trip_id, array_agg(recorded_at), array_agg(lat), array_agg(lng), array_agg(speed), array_agg(heading)
    FROM ins GROUP BY trip_id
  )
  SELECT trip_id::text AS trip_id, (extract(epoch FROM recorded_at) * 1000)::float8 AS ms FROM ins`;

/**
 * The speed filter's stored neighbours: for each time ($2, epoch ms), the last
 * stored fix at or before it, by one LIMIT 1 probe of the (trip_id,
 * recorded_at) key each. Times come back as epoch ms, like takeBacklog's.
 */
export const FIXES_AT_OR_BEFORE = `
  SELECT DISTINCT p.ms, p.lat, p.lng
  FROM unnest($2::float8[]) AS u(ms)
  CROSS JOIN LATERAL (
    SELECT (extract(epoch FROM recorded_at) * 1000)::float8 AS ms, lat, lng FROM trip_pings
    WHERE trip_id = $1::uuid AND recorded_at <= to_timestamp(u.ms / 1000)
    ORDER BY recorded_at DESC LIMIT 1
  ) p`;

/**
 * The after-flush round's counted neighbours: for each time ($2, epoch ms),
 * the last counted fix before it and the first one after it (LIMIT 1 probes
 * of the (trip_id, recorded_at) key), skipping points still in the backlog.
 */
export const COUNTED_NEIGHBOURS = `
  WITH pending AS (SELECT unnest(recorded_at) AS at FROM trip_ping_backlog WHERE trip_id = $1::uuid)
  SELECT DISTINCT n.ms, n.lat, n.lng
  FROM unnest($2::float8[]) AS u(ms)
  CROSS JOIN LATERAL (
    (SELECT (extract(epoch FROM recorded_at) * 1000)::float8 AS ms, lat, lng FROM trip_pings
      WHERE trip_id = $1::uuid AND recorded_at < to_timestamp(u.ms / 1000)
        AND recorded_at NOT IN (SELECT at FROM pending)
      ORDER BY recorded_at DESC LIMIT 1)
    UNION ALL
    (SELECT (extract(epoch FROM recorded_at) * 1000)::float8 AS ms, lat, lng FROM trip_pings
      WHERE trip_id = $1::uuid AND recorded_at > to_timestamp(u.ms / 1000)
        AND recorded_at NOT IN (SELECT at FROM pending)
      ORDER BY recorded_at LIMIT 1)
  ) n`;

/** Most rows Prisma's createMany puts in one statement here (10 columns: 10k bind parameters). */
const PRISMA_CHUNK = 1000;

@Injectable()
export class TrackingRepository {
  constructor(private readonly db: Db) {}

  /**
   * Inserts the rows in one statement (arrays unnested server-side: ten bind
   * parameters whatever the row count), skipping rows whose (trip, time)
   * exists, and returns the keys actually inserted. One statement: all or nothing.
   */
  async insertPings(rows: readonly PingRow[]): Promise<PingKey[]> {
    if (rows.length === 0) return [];
    const out = await this.db.sql<{ trip_id: string; ms: number }>(
      INSERT_UNNEST,
      [
        textArray(rows.map((r) => r.tripId)),
        numberArray(rows.map((r) => r.recordedAt.getTime())),
        numberArray(rows.map((r) => r.lat)),
        numberArray(rows.map((r) => r.lng)),
        numberArray(rows.map((r) => r.accuracy)),
        numberArray(rows.map((r) => r.speed)),
        numberArray(rows.map((r) => r.heading)),
        numberArray(rows.map((r) => r.altitude)),
        textArray(rows.map((r) => r.batchId)),
      ],
      'insert-pings',
    );
    return out.map((r) => ({ tripId: r.trip_id, ms: Math.round(r.ms) }));
  }

  /**
   * The same through Prisma's `createManyAndReturn({ skipDuplicates })`, in
   * chunks inside one transaction. Kept for the benchmark's comparison
   * (docs/performance-tracking.md): the unnest statement is the faster one.
   */
  async insertPingsWithPrisma(rows: readonly PingRow[]): Promise<PingKey[]> {
    if (rows.length === 0) return [];
    const chunk = (tx: typeof this.db.primary, part: readonly PingRow[]) =>
      tx.tripPing.createManyAndReturn({
        data: part as PingRow[],
        skipDuplicates: true,
        select: { tripId: true, recordedAt: true },
      });
    let created: { tripId: string; recordedAt: Date }[];
    if (rows.length <= PRISMA_CHUNK) {
      created = await chunk(this.db.primary, rows);
    } else {
      created = await this.db.primary.$transaction(async (tx) => {
        const all: { tripId: string; recordedAt: Date }[] = [];
        for (let i = 0; i < rows.length; i += PRISMA_CHUNK) {
          all.push(...(await chunk(tx as typeof this.db.primary, rows.slice(i, i + PRISMA_CHUNK))));
        }
        return all;
      });
    }
    return created.map((r) => ({ tripId: r.tripId, ms: r.recordedAt.getTime() }));
  }

  /**
   * For each of these times, the stored fix at or before it: the neighbour the
   * speed filter compares a point with. One index probe per time (LIMIT 1 on
   * the (trip_id, recorded_at) key), so a batch reaching back to the trip's
   * start reads a handful of rows whatever the length of the stored track.
   */
  async fixesAround(tripId: string, times: readonly Date[]): Promise<Fix[]> {
    if (times.length === 0) return [];
    const rows = await this.db.sql<{ ms: number; lat: number; lng: number }>(
      FIXES_AT_OR_BEFORE,
      [tripId, numberArray([...new Set(times.map((t) => t.getTime()))])],
      'fixes-at-or-before',
    );
    return rows
      .map((r) => ({ lat: r.lat, lng: r.lng, recordedAt: new Date(Math.round(r.ms)) }))
      .sort((a, b) => a.recordedAt.getTime() - b.recordedAt.getTime());
  }

  /**
   * Takes (deletes and returns) the backlog of these trips: every stored point
   * not yet counted in its trip, whichever node stored it, in time order per
   * trip. Called under the trips' row locks, in the round's transaction.
   */
  async takeBacklog(tx: SqlTx, tripIds: readonly string[]): Promise<Map<string, TrackFix[]>> {
    const out = new Map<string, TrackFix[]>();
    if (tripIds.length === 0) return out;
    const rows = await tx.query<{
      trip_id: string;
      ms: number;
      lat: number;
      lng: number;
      speed: number | null;
      heading: number | null;
    }>(
      // Times as epoch ms: a number per point instead of a timestamp string for pg to parse into a Date.
      `SELECT trip_id::text AS trip_id, (extract(epoch FROM recorded_at) * 1000)::float8 AS ms, lat, lng, speed, heading
       FROM take_trip_ping_backlog($1::uuid[])`,
      [tripIds],
      'take-trip-ping-backlog',
    );
    for (const r of rows) {
      const fix: TrackFix = {
        lat: r.lat,
        lng: r.lng,
        speed: r.speed,
        heading: r.heading,
        recordedAt: new Date(Math.round(r.ms)),
      };
      const list = out.get(r.trip_id);
      if (list) list.push(fix);
      else out.set(r.trip_id, [fix]);
    }
    return out;
  }

  /**
   * The counted neighbours of these times, in the round's transaction after
   * takeBacklog: for each time, the last counted fix before it and the first
   * one after it (points still in the backlog, stored since it was taken and
   * not yet counted, are skipped). Two index probes per time, whatever the
   * length of the stored track. The fixes at these times themselves are left
   * to the caller, who has them.
   */
  async countedAround(tx: SqlTx, tripId: string, times: readonly Date[]): Promise<Fix[]> {
    if (times.length === 0) return [];
    const rows = await tx.query<{ ms: number; lat: number; lng: number }>(
      COUNTED_NEIGHBOURS,
      [tripId, numberArray([...new Set(times.map((t) => t.getTime()))])],
      'counted-neighbours',
    );
    return rows
      .map((r) => ({ lat: r.lat, lng: r.lng, recordedAt: new Date(Math.round(r.ms)) }))
      .sort((a, b) => a.recordedAt.getTime() - b.recordedAt.getTime());
  }

  /** Runs `fn` in one transaction on the primary (raw SQL: see Db.sqlTransaction): the after-flush round's. */
  transaction<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T> {
    return this.db.sqlTransaction(fn);
  }

  /** Trips with backlog older than `ageMs`: points whose node stopped before counting them. */
  async tripsWithStaleBacklog(ageMs: number, limit: number): Promise<string[]> {
    const rows = await this.db.primary.$queryRaw<{ trip_id: string }[]>`
      SELECT DISTINCT trip_id::text AS trip_id FROM trip_ping_backlog
      WHERE created_at < now() - make_interval(secs => ${ageMs / 1000}::float8) LIMIT ${limit}`;
    return rows.map((r) => r.trip_id);
  }

  /** A page of the track, oldest first, on the (trip_id, recorded_at) primary key. */
  history(tripId: string, range: { from?: Date; to?: Date; after?: Date }, limit: number): Promise<HistoryPoint[]> {
    const recordedAt: Record<string, Date> = {};
    if (range.from) recordedAt.gte = range.from;
    if (range.to) recordedAt.lte = range.to;
    if (range.after) recordedAt.gt = range.after;
    return this.db.read.tripPing.findMany({
      where: { tripId, ...(Object.keys(recordedAt).length ? { recordedAt } : {}) },
      orderBy: { recordedAt: 'asc' },
      take: limit,
      select: { lat: true, lng: true, speed: true, heading: true, accuracy: true, altitude: true, recordedAt: true },
    });
  }
}
