import { Injectable } from '@nestjs/common';
import { Db } from '../../infra/db/db.service';
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

const INSERT_UNNEST = `
  INSERT INTO trip_pings (trip_id, recorded_at, lat, lng, accuracy, speed, heading, altitude, batch_id)
  SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::text[])
  ON CONFLICT (trip_id, recorded_at) DO NOTHING
  RETURNING trip_id::text AS trip_id, (extract(epoch FROM recorded_at) * 1000)::float8 AS ms`;

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
    const out = await this.db.primary.$queryRawUnsafe<{ trip_id: string; ms: number }[]>(
      INSERT_UNNEST,
      rows.map((r) => r.tripId),
      rows.map((r) => r.recordedAt.toISOString()),
      rows.map((r) => r.lat),
      rows.map((r) => r.lng),
      rows.map((r) => r.accuracy),
      rows.map((r) => r.speed),
      rows.map((r) => r.heading),
      rows.map((r) => r.altitude),
      rows.map((r) => r.batchId),
    );
    return out.map((r) => ({ tripId: r.trip_id, ms: Math.round(Number(r.ms)) }));
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
   * The stored fixes around a time range: the last one before `from`, every
   * one within [from, to], and (with `withNext`) the first one after `to`.
   */
  async fixesAround(tripId: string, from: Date, to: Date, withNext: boolean): Promise<Fix[]> {
    const rows = await this.db.primary.$queryRaw<{ lat: number; lng: number; recorded_at: Date }[]>`
      (SELECT lat, lng, recorded_at FROM trip_pings
        WHERE trip_id = ${tripId}::uuid AND recorded_at < ${from}::timestamptz ORDER BY recorded_at DESC LIMIT 1)
      UNION ALL
      (SELECT lat, lng, recorded_at FROM trip_pings
        WHERE trip_id = ${tripId}::uuid AND recorded_at BETWEEN ${from}::timestamptz AND ${to}::timestamptz ORDER BY recorded_at)
      UNION ALL
      (SELECT lat, lng, recorded_at FROM trip_pings
        WHERE ${withNext} AND trip_id = ${tripId}::uuid AND recorded_at > ${to}::timestamptz ORDER BY recorded_at LIMIT 1)`;
    return rows
      .map((r) => ({ lat: r.lat, lng: r.lng, recordedAt: r.recorded_at }))
      .sort((a, b) => a.recordedAt.getTime() - b.recordedAt.getTime());
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
