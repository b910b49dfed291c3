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

  /** The stored fixes around a time range: the last one before `from` and every one within [from, to]. */
  async fixesAround(tripId: string, from: Date, to: Date): Promise<Fix[]> {
    const rows = await this.db.primary.$queryRaw<{ lat: number; lng: number; recorded_at: Date }[]>`
      (SELECT lat, lng, recorded_at FROM trip_pings
        WHERE trip_id = ${tripId}::uuid AND recorded_at < ${from}::timestamptz ORDER BY recorded_at DESC LIMIT 1)
      UNION ALL
      (SELECT lat, lng, recorded_at FROM trip_pings
        WHERE trip_id = ${tripId}::uuid AND recorded_at BETWEEN ${from}::timestamptz AND ${to}::timestamptz ORDER BY recorded_at)`;
    return rows
      .map((r) => ({ lat: r.lat, lng: r.lng, recordedAt: r.recorded_at }))
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
   * The counted track around a time range, in the round's transaction after
   * takeBacklog: the last counted fix before `from`, every one within
   * [from, to] and the first one after `to`. Points still in the backlog (stored
   * since the backlog was taken, not yet counted) are left out.
   */
  async countedAround(tx: SqlTx, tripId: string, from: Date, to: Date): Promise<Fix[]> {
    const rows = await tx.query<{ lat: number; lng: number; recorded_at: Date }>(
      `WITH pending AS (SELECT unnest(recorded_at) AS at FROM trip_ping_backlog WHERE trip_id = $1::uuid)
       (SELECT lat, lng, recorded_at FROM trip_pings
         WHERE trip_id = $1::uuid AND recorded_at < $2::timestamptz
           AND recorded_at NOT IN (SELECT at FROM pending) ORDER BY recorded_at DESC LIMIT 1)
       UNION ALL
       (SELECT lat, lng, recorded_at FROM trip_pings
         WHERE trip_id = $1::uuid AND recorded_at BETWEEN $2::timestamptz AND $3::timestamptz
           AND recorded_at NOT IN (SELECT at FROM pending))
       UNION ALL
       (SELECT lat, lng, recorded_at FROM trip_pings
         WHERE trip_id = $1::uuid AND recorded_at > $3::timestamptz
           AND recorded_at NOT IN (SELECT at FROM pending) ORDER BY recorded_at LIMIT 1)`,
      [tripId, from.toISOString(), to.toISOString()],
    );
    return rows
      .map((r) => ({ lat: r.lat, lng: r.lng, recordedAt: r.recorded_at }))
      .sort((a, b) => a.recordedAt.getTime() - b.recordedAt.getTime());
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
