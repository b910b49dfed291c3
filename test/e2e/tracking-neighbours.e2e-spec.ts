import { pathLengthM } from '../../src/modules/tracking/geo';
import { PingWriter } from '../../src/modules/tracking/ping-writer';
import {
  COUNTED_NEIGHBOURS,
  FIXES_AT_OR_BEFORE,
  TrackingRepository,
} from '../../src/modules/tracking/tracking.repository';
import { startTestApp, TestApp } from '../support/test-app';
import { activeTrip, newWorld } from '../support/trips-fixtures';

const N = 100_000;

/**
 * Rows that the scans of trip_pings produced or filtered away in a statement's
 * EXPLAIN ANALYZE, over all loops: what it read of the track.
 */
function rowsRead(plan: Record<string, unknown>): number {
  let n = 0;
  const relation = plan['Relation Name'];
  if (typeof relation === 'string' && relation.startsWith('trip_pings')) {
    const loops = Number(plan['Actual Loops'] ?? 1);
    n += (Number(plan['Actual Rows'] ?? 0) + Number(plan['Rows Removed by Filter'] ?? 0)) * loops;
  }
  for (const child of (plan.Plans as Record<string, unknown>[] | undefined) ?? []) n += rowsRead(child);
  return n;
}

describe('ingest reads only the neighbours of a late batch, whatever the trip length', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('a batch reaching back to the start of a 100k-point trip reads a few rows, and the distance stays exact', async () => {
    const w = await newWorld(t.api);
    const tripId = (await activeTrip(t.api, w)).id as string;
    // A fix every second for 100k seconds, about 11 m apart going north, ending ten minutes ago.
    const t0 = Math.floor(Date.now() / 1000) - N - 600;
    const at = (i: number) => ({ lat: 20 + i * 0.0001, lng: 75, recordedAt: new Date((t0 + i) * 1000) });
    await t.sql.query(`UPDATE trips SET created_at = to_timestamp($2) - interval '1 hour' WHERE id = $1`, [tripId, t0]);
    await t.sql.query(
      `INSERT INTO trip_pings (trip_id, recorded_at, lat, lng)
       SELECT $1::uuid, to_timestamp($2::float8 + i), 20 + i * 0.0001, 75 FROM generate_series(0, $3::int - 1) AS i`,
      [tripId, t0, N],
    );
    const track = Array.from({ length: N }, (_, i) => at(i));
    const last = track[N - 1];
    // The trip row as the after-flush rounds would have left it: latest fix and the exact length.
    await t.sql.query(
      `UPDATE trips SET latest_lat = $2, latest_lng = $3, latest_recorded_at = $4, distance_km = $5 WHERE id = $1`,
      [tripId, last.lat, last.lng, last.recordedAt, pathLengthM(track) / 1000],
    );

    // Rows returned by the repository's neighbour reads, counted as they are returned.
    const repo = t.app.get(TrackingRepository);
    const returned: Record<string, number[]> = { fixesAround: [], countedAround: [] };
    for (const name of ['fixesAround', 'countedAround'] as const) {
      const original = (repo[name] as (...a: unknown[]) => Promise<unknown[]>).bind(repo);
      jest.spyOn(repo, name).mockImplementation((async (...args: unknown[]) => {
        const rows = await original(...args);
        returned[name].push(rows.length);
        return rows;
      }) as never);
    }

    const iso = (s: number) => new Date((t0 + s) * 1000).toISOString();
    const beside = (i: number, east: number) => ({
      latitude: 20 + (i + 0.5) * 0.0001,
      longitude: 75 + east,
      timestamp: iso(i + 0.5),
    });
    const res = await t.api.post(
      '/tracking/ping',
      {
        tripId,
        locations: [
          beside(0, 0.00005), // between the first two fixes, 5 m off the road
          beside(50_000, 0.00005), // half way
          beside(70_000, 0.01), // 1 km off the road half a second after its neighbour: a jump
          { latitude: 20 + N * 0.0001, longitude: 75, timestamp: iso(N) }, // the next fix after the latest
        ],
      },
      { token: w.driver.accessToken },
    );
    expect(res.status).toBe(200);
    // The speed filter compared each point with its own stored neighbour, not with the latest fix.
    expect(res.body.data).toEqual({ accepted: 3, duplicates: 0, rejected: [{ index: 2, reason: 'SPEED_JUMP' }] });
    await t.app.get(PingWriter).drain();

    // One neighbour per point for the filter; two per point for the after-flush round.
    expect(returned.fixesAround).toHaveLength(1);
    expect(returned.fixesAround[0]).toBeLessThanOrEqual(4);
    expect(returned.countedAround).toHaveLength(1);
    expect(returned.countedAround[0]).toBeLessThanOrEqual(6);

    // The statements themselves read a handful of the 100k rows.
    const times = `{${[0.5, 50_000.5, 70_000.5, N].map((s) => (t0 + s) * 1000).join(',')}}`;
    for (const sql of [FIXES_AT_OR_BEFORE, COUNTED_NEIGHBOURS]) {
      const plan = (await t.sql.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`, [tripId, times])).rows[0]['QUERY PLAN'];
      const read = rowsRead(plan[0].Plan);
      expect(read).toBeGreaterThan(0);
      expect(read).toBeLessThanOrEqual(16);
    }

    // The distance is still the exact length of the stored track.
    const stored = (
      await t.sql.query<{ lat: number; lng: number }>(
        `SELECT lat, lng FROM trip_pings WHERE trip_id = $1 ORDER BY recorded_at`,
        [tripId],
      )
    ).rows;
    expect(stored).toHaveLength(N + 3);
    const row = (await t.sql.query(`SELECT distance_km, latest_recorded_at FROM trips WHERE id = $1`, [tripId]))
      .rows[0];
    expect(row.distance_km * 1000).toBeCloseTo(pathLengthM(stored), 2);
    expect((row.latest_recorded_at as Date).toISOString()).toBe(iso(N));
  });
});
