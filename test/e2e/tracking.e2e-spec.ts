import { Client } from 'pg';
import { InProcessRealtimePublisher, RealtimeEvent } from '../../src/infra/realtime/realtime-publisher';
import { REDIS, RedisClient } from '../../src/infra/redis/redis.module';
import { distanceM, pathLengthM } from '../../src/modules/tracking/geo';
import { KNOTS_TO_MPS } from '../../src/modules/tracking/osmand';
import { PingWriter } from '../../src/modules/tracking/ping-writer';
import { newUser } from '../support/factories';
import Redis from 'ioredis';
import { until } from '../support/net';
import { AppNode, startAnotherNode } from '../support/socket-client';
import { Api, startTestApp, TestApp } from '../support/test-app';
import { activeTrip, moveTo, newDriver, newMember, newTrip, newWorld, TripWorld } from '../support/trips-fixtures';

/** A point on a straight road north from Jaipur, `s` seconds after `t0`, moving about 11 m/s. */
function pt(t0: number, s: number, extra: Record<string, unknown> = {}) {
  return { latitude: 26.9 + s * 0.0001, longitude: 75.8, timestamp: new Date(t0 + s * 1000).toISOString(), ...extra };
}

describe('tracking', () => {
  let t: TestApp;
  let realtime: InProcessRealtimePublisher;
  beforeAll(async () => {
    t = await startTestApp({ stoppedMinutes: 2, overspeedLimitMps: 25, arrivalRadiusM: 300 });
    realtime = t.app.get(InProcessRealtimePublisher);
  });
  afterAll(() => t.close());

  async function world(status = 'IN_TRANSIT') {
    const w = await newWorld(t.api);
    const trip = await activeTrip(t.api, w, status);
    // Fixes may not be older than the trip: let it have been created two hours ago.
    await t.sql.query(`UPDATE trips SET created_at = now() - interval '2 hours' WHERE id = $1`, [trip.id]);
    return { w, trip };
  }
  const base = () => Date.now() - 3600_000;

  /** POST /tracking/ping through the node at `url` (this test's app unless told), as the trip's driver. */
  const pingVia = (url: string, w: TripWorld, tripId: string, locations: unknown[]) =>
    new Api(`${url}/api/v1`).post('/tracking/ping', { tripId, locations }, { token: w.driver.accessToken });
  const ping = (w: TripWorld, tripId: string, locations: unknown[]) => pingVia(t.url, w, tripId, locations);

  /**
   * A 2xx means the points are committed; the trip's latest location,
   * distance, Redis copy, detectors and events follow right behind the answer.
   * Wait for that work (not for a time) before looking at them.
   */
  const afterFlushDone = () => t.app.get(PingWriter).drain();

  const count = async (tripId: string) =>
    (await t.sql.query(`SELECT count(*)::int AS n FROM trip_pings WHERE trip_id = $1`, [tripId])).rows[0].n as number;

  describe('POST /tracking/ping', () => {
    it('stores a batch; a retried batch stores nothing twice and reports exact duplicates', async () => {
      const { w, trip } = await world();
      const t0 = base();
      const batch = [pt(t0, 0), pt(t0, 5), pt(t0, 10)];
      const first = await ping(w, trip.id, batch);
      expect(first.status).toBe(200);
      expect(first.body.data).toEqual({ accepted: 3, duplicates: 0, rejected: [] });
      const retry = await ping(w, trip.id, [...batch, pt(t0, 15)]);
      expect(retry.body.data).toEqual({ accepted: 1, duplicates: 3, rejected: [] });
      expect(await count(trip.id)).toBe(4);
    });

    it('rejects bad points by index and reason, storing the rest', async () => {
      const { w, trip } = await world();
      const t0 = base();
      const res = await ping(w, trip.id, [
        pt(t0, 0),
        { latitude: 95, longitude: 75.8, timestamp: new Date(t0 + 1000).toISOString() },
        { latitude: 0, longitude: 0, timestamp: new Date(t0 + 2000).toISOString() },
        { latitude: 26.9, longitude: 75.8, timestamp: new Date(Date.now() + 6 * 60_000).toISOString() },
        { latitude: 26.9, longitude: 75.8, timestamp: new Date(Date.now() - 3 * 3600_000).toISOString() },
        { latitude: 27.9, longitude: 75.8, timestamp: new Date(t0 + 20_000).toISOString() }, // 110 km in 20 s
        { latitude: 26.9, timestamp: 'now' },
        pt(t0, 30),
      ]);
      expect(res.status).toBe(200);
      expect(res.body.data.accepted).toBe(2);
      expect(res.body.data.rejected.map((r: { index: number; reason: string }) => [r.index, r.reason])).toEqual([
        [1, 'OUT_OF_RANGE'],
        [2, 'NULL_ISLAND'],
        [3, 'FUTURE_TIMESTAMP'],
        [4, 'BEFORE_TRIP_START'],
        [5, 'SPEED_JUMP'],
        [6, 'INVALID'],
      ]);
      // Each rejection as written by the route's response schema: index, reason and, where there is one, a message.
      expect(res.body.data.rejected[5]).toEqual({ index: 6, reason: 'INVALID', message: expect.stringMatching(/longitude/) });
      expect(Object.keys(res.body.data.rejected[0]).sort()).toEqual(['index', 'reason']);
      expect(await count(trip.id)).toBe(2);
    });

    it('takes ISO and epoch s/ms timestamps, kept to the millisecond', async () => {
      const { w, trip } = await world();
      const ms = Math.floor(base() / 1000) * 1000 + 123;
      const res = await ping(w, trip.id, [
        { latitude: 26.9, longitude: 75.8, timestamp: ms },
        { latitude: 26.9001, longitude: 75.8, timestamp: Math.floor(ms / 1000) + 10 },
        { latitude: 26.9002, longitude: 75.8, timestamp: new Date(ms + 20_000).toISOString() },
      ]);
      expect(res.body.data.accepted).toBe(3);
      const rows = await t.sql.query(`SELECT recorded_at FROM trip_pings WHERE trip_id = $1 ORDER BY recorded_at`, [
        trip.id,
      ]);
      expect(rows.rows.map((r) => (r.recorded_at as Date).getTime())).toEqual([
        ms,
        Math.floor(ms / 1000) * 1000 + 10_000,
        ms + 20_000,
      ]);
    });

    it('rejects the whole request for a wrong trip, a trip of another driver, or an inactive trip, storing nothing', async () => {
      const { w, trip } = await world();
      const t0 = base();
      const unknown = await ping(w, '0190a000-0000-7000-8000-000000000000', [pt(t0, 0)]);
      expect(unknown.status).toBe(404);
      const other = await newDriver(t.api, w.source);
      const notMine = await t.api.post(
        '/tracking/ping',
        { tripId: trip.id, locations: [pt(t0, 0)] },
        { token: other.user.accessToken },
      );
      expect(notMine.status).toBe(404);
      const owner = await t.api.post(
        '/tracking/ping',
        { tripId: trip.id, locations: [pt(t0, 0)] },
        { token: w.source.owner.accessToken },
      );
      expect(owner.status).toBe(403);
      expect(owner.body.error.code).toBe('NOT_TRIP_DRIVER');
      const planned = await newTrip(t.api, (await newWorld(t.api)) as TripWorld);
      const plannedRes = await t.api.post(
        '/tracking/ping',
        { tripId: planned.id, locations: [pt(t0, 0)] },
        { token: w.driver.accessToken },
      );
      expect(plannedRes.status).toBe(404);
      // The assigned driver of a PLANNED (and later a COMPLETED) trip: 409.
      const w2 = await newWorld(t.api);
      const p2 = await newTrip(t.api, w2);
      const notActive = await ping(w2, p2.id, [pt(Date.now(), 0)]);
      expect(notActive.status).toBe(409);
      expect(notActive.body.error.code).toBe('TRIP_NOT_ACTIVE');
      expect(await count(p2.id)).toBe(0);
      await moveTo(t.api, w, trip.id, 'ARRIVED', 'COMPLETED');
      const done = await ping(w, trip.id, [pt(t0, 0)]);
      expect(done.status).toBe(409);
      expect(await count(trip.id)).toBe(0);
    });

    it('validates the envelope: 1..1000 locations, a uuid tripId, no unknown keys', async () => {
      const { w, trip } = await world();
      expect((await ping(w, trip.id, [])).status).toBe(400);
      const tooMany = await ping(
        w,
        trip.id,
        Array.from({ length: 1001 }, (_, i) => pt(base(), i)),
      );
      expect(tooMany.status).toBe(400);
      expect(tooMany.body.error.details[0].path).toBe('locations');
      expect(
        (
          await t.api.post(
            '/tracking/ping',
            { tripId: 'x', locations: [pt(base(), 0)] },
            { token: w.driver.accessToken },
          )
        ).status,
      ).toBe(400);
      expect(
        (
          await t.api.post(
            '/tracking/ping',
            { tripId: trip.id, locations: [pt(base(), 0)], driverId: 'x' },
            { token: w.driver.accessToken },
          )
        ).status,
      ).toBe(400);
      expect((await t.api.post('/tracking/ping', { tripId: trip.id, locations: [pt(base(), 0)] })).status).toBe(401);
    });

    it('1000 points in one request', async () => {
      const { w, trip } = await world();
      const t0 = base() - 1000_000;
      await t.sql.query(`UPDATE trips SET created_at = $2 WHERE id = $1`, [trip.id, new Date(t0 - 1000)]);
      const res = await ping(
        w,
        trip.id,
        Array.from({ length: 1000 }, (_, i) => pt(t0, i)),
      );
      expect(res.body.data).toEqual({ accepted: 1000, duplicates: 0, rejected: [] });
      expect(await count(trip.id)).toBe(1000);
    });

    it('20 concurrent requests for the same trip with overlapping points all get exact counts', async () => {
      const { w, trip } = await world();
      const t0 = base();
      // Request i sends seconds [i*5, i*5+20): every point but the first few is sent by four requests.
      const batches = Array.from({ length: 20 }, (_, i) => Array.from({ length: 20 }, (_, j) => pt(t0, i * 5 + j)));
      const results = await Promise.all(batches.map((b) => ping(w, trip.id, b)));
      expect(results.every((r) => r.status === 200)).toBe(true);
      const distinct = new Set(batches.flat().map((p) => p.timestamp)).size;
      const accepted = results.reduce((s, r) => s + r.body.data.accepted, 0);
      expect(accepted).toBe(distinct);
      for (const r of results) expect(r.body.data.accepted + r.body.data.duplicates).toBe(20);
      expect(await count(trip.id)).toBe(distinct);
      // And again: everything is a duplicate now.
      const again = await Promise.all(batches.map((b) => ping(w, trip.id, b)));
      expect(again.map((r) => r.body.data.accepted)).toEqual(Array(20).fill(0));
      expect(again.map((r) => r.body.data.duplicates)).toEqual(Array(20).fill(20));
    });

    it('a database error fails the flush with 503 and stores nothing of it', async () => {
      const { w, trip } = await world();
      const t0 = base();
      await t.sql.query(`ALTER TABLE trip_pings ADD CONSTRAINT test_no_far_north CHECK (lat < 27.5) NOT VALID`);
      try {
        const res = await ping(w, trip.id, [
          { latitude: 27.6, longitude: 75.8, timestamp: new Date(t0).toISOString() },
          { latitude: 27.6001, longitude: 75.8, timestamp: new Date(t0 + 10_000).toISOString() },
        ]);
        expect(res.status).toBe(503);
        expect(res.body.error.code).toBe('SERVICE_UNAVAILABLE');
        expect(JSON.stringify(res.body)).not.toMatch(/constraint|INSERT|trip_pings/i);
        expect(await count(trip.id)).toBe(0);
      } finally {
        await t.sql.query(`ALTER TABLE trip_pings DROP CONSTRAINT test_no_far_north`);
      }
      const after = await ping(w, trip.id, [pt(t0, 0)]);
      expect(after.body.data.accepted).toBe(1);
    });
  });

  describe('after a flush', () => {
    it('updates latest location and distance, never backwards, with late points counted right', async () => {
      const { w, trip } = await world();
      const t0 = base();
      const events: RealtimeEvent[] = [];
      const off = realtime.on((e) => events.push(e));
      const newer = [pt(t0, 20), pt(t0, 30), pt(t0, 40)];
      const older = [pt(t0, 0), pt(t0, 25, { longitude: 75.8005 }), pt(t0, 10)];
      expect((await ping(w, trip.id, newer)).body.data.accepted).toBe(3);
      expect((await ping(w, trip.id, older)).body.data.accepted).toBe(3);
      await afterFlushDone();
      off();
      const detail = await t.api.get(`/trips/${trip.id}`, { token: w.source.owner.accessToken });
      expect(detail.body.data.latestLocation).toMatchObject({
        lat: newer[2].latitude,
        lng: 75.8,
        recordedAt: newer[2].timestamp,
      });
      const track = [...newer, ...older]
        .sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp))
        .map((p) => ({ lat: p.latitude, lng: p.longitude }));
      let expected = 0;
      for (let i = 1; i < track.length; i++) expected += distanceM(track[i - 1], track[i]);
      expect(detail.body.data.distanceKm).toBeCloseTo(expected / 1000, 6);

      const locations = events.filter((e) => e.event === 'trip.location' && e.room === `trip:${trip.id}`);
      expect(locations).toHaveLength(2);
      expect((locations[0].payload.points as { recordedAt: string }[]).map((p) => p.recordedAt)).toEqual(
        newer.map((p) => p.timestamp),
      );
      expect(locations[1].payload).toMatchObject({ tripId: trip.id });
      expect((locations[1].payload.points as unknown[]).length).toBe(3);
    });

    it('GET latest: from Redis, or the database on a miss; visible to whoever sees the trip', async () => {
      const { w, trip } = await world();
      const t0 = base();
      const none = await t.api.get(`/tracking/trips/${trip.id}/latest`, { token: w.source.owner.accessToken });
      expect(none.status).toBe(404);
      await ping(w, trip.id, [pt(t0, 0, { speed: 11, heading: 10 }), pt(t0, 5, { speed: 12, heading: 11 })]);
      const expected = { lat: pt(t0, 5).latitude, lng: 75.8, speed: 12, heading: 11, recordedAt: pt(t0, 5).timestamp };
      await afterFlushDone();
      const redis = t.app.get<RedisClient>(REDIS);
      expect(JSON.parse((await redis.get(`trip-latest:${trip.id}`))!)).toEqual(expected);
      const latest = await t.api.get(`/tracking/trips/${trip.id}/latest`, { token: w.destination.owner.accessToken });
      expect(latest.status).toBe(200);
      expect(latest.body.data).toEqual(expected);
      await redis.del(`trip-latest:${trip.id}`);
      const fromDb = await t.api.get(`/tracking/trips/${trip.id}/latest`, { token: w.driver.accessToken });
      expect(fromDb.body.data).toEqual(expected);
      const outsider = await newUser(t.api);
      expect((await t.api.get(`/tracking/trips/${trip.id}/latest`, { token: outsider.accessToken })).status).toBe(404);
      expect((await t.api.get(`/tracking/trips/${trip.id}/history`, { token: outsider.accessToken })).status).toBe(404);
    });

    it('GET latest answered right after a 2xx already shows the acknowledged point (same node), before the trip row catches up', async () => {
      const { w, trip } = await world();
      const t0 = base();
      expect((await ping(w, trip.id, [pt(t0, 0)])).body.data.accepted).toBe(1);
      await afterFlushDone();
      // Hold the after-flush work back: another session holds the trip row (NO KEY UPDATE, so the
      // pings' foreign-key check still passes): the next point is committed and acknowledged,
      // the trip row cannot be updated yet.
      const blocker = new Client({ connectionString: t.config.databaseUrl });
      await blocker.connect();
      try {
        await blocker.query('BEGIN');
        await blocker.query(`SELECT 1 FROM trips WHERE id = $1 FOR NO KEY UPDATE`, [trip.id]);
        const seen: RealtimeEvent[] = [];
        const off = realtime.on((e) => seen.push(e));
        expect((await ping(w, trip.id, [pt(t0, 10)])).body.data.accepted).toBe(1);
        // trip.location goes out at the commit, without waiting for the round that updates the trip row.
        for (let i = 0; i < 100 && !seen.some((e) => e.event === 'trip.location'); i++)
          await new Promise((r) => setTimeout(r, 10));
        off();
        expect(seen.filter((e) => e.event === 'trip.location').map((e) => e.payload)).toEqual([
          { tripId: trip.id, points: [expect.objectContaining({ recordedAt: pt(t0, 10).timestamp })] },
        ]);
        const row = await t.sql.query(`SELECT latest_recorded_at FROM trips WHERE id = $1`, [trip.id]);
        expect((row.rows[0].latest_recorded_at as Date).toISOString()).toBe(pt(t0, 0).timestamp);
        const latest = await t.api.get(`/tracking/trips/${trip.id}/latest`, { token: w.source.owner.accessToken });
        expect(latest.body.data.recordedAt).toBe(pt(t0, 10).timestamp);
        // The speed filter compares with the acknowledged point too: 1 km in 1 s after it is a jump.
        const jump = await ping(w, trip.id, [
          { latitude: pt(t0, 10).latitude + 0.01, longitude: 75.8, timestamp: new Date(t0 + 11_000).toISOString() },
        ]);
        expect(jump.body.data.rejected).toEqual([expect.objectContaining({ index: 0, reason: 'SPEED_JUMP' })]);
      } finally {
        await blocker.query('ROLLBACK');
        await blocker.end();
      }
      await afterFlushDone();
      const detail = await t.api.get(`/trips/${trip.id}`, { token: w.source.owner.accessToken });
      expect(detail.body.data.latestLocation.recordedAt).toBe(pt(t0, 10).timestamp);
    });

    it('GET history: a range, oldest first, with a keyset cursor, and as GeoJSON', async () => {
      const { w, trip } = await world();
      const t0 = base();
      await ping(
        w,
        trip.id,
        Array.from({ length: 10 }, (_, i) => pt(t0, 9 - i)),
      );
      const token = w.destination.owner.accessToken;
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res: any = await t.api.get(
          `/tracking/trips/${trip.id}/history?limit=4${cursor ? `&cursor=${cursor}` : ''}`,
          { token },
        );
        expect(res.status).toBe(200);
        seen.push(...res.body.data.map((p: { recordedAt: string }) => p.recordedAt));
        cursor = res.body.meta.nextCursor;
      } while (cursor);
      expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => pt(t0, i).timestamp));
      const from = encodeURIComponent(pt(t0, 3).timestamp);
      const to = encodeURIComponent(pt(t0, 6).timestamp);
      const range = await t.api.get(`/tracking/trips/${trip.id}/history?from=${from}&to=${to}`, { token });
      expect(range.body.data.map((p: { recordedAt: string }) => p.recordedAt)).toEqual(
        [3, 4, 5, 6].map((s) => pt(t0, s).timestamp),
      );
      const geo = await t.api.get(`/tracking/trips/${trip.id}/history?format=geojson&from=${from}&to=${to}`, { token });
      expect(geo.body.data).toMatchObject({
        type: 'FeatureCollection',
        features: [
          {
            type: 'Feature',
            geometry: { type: 'LineString', coordinates: [3, 4, 5, 6].map((s) => [75.8, pt(t0, s).latitude]) },
          },
        ],
        nextCursor: null,
      });
      expect((await t.api.get(`/tracking/trips/${trip.id}/history?limit=5001`, { token })).status).toBe(400);
    });

    it('detects arrival (and moves the trip to ARRIVED), overspeed and a long stop, logging and announcing them', async () => {
      const { w, trip } = await world();
      const t0 = Date.now() - 3 * 3600_000;
      await t.sql.query(`UPDATE trips SET created_at = $2 WHERE id = $1`, [trip.id, new Date(t0 - 1000)]);
      const events: RealtimeEvent[] = [];
      const off = realtime.on((e) => events.push(e));
      const at = (s: number) => new Date(t0 + s * 1000).toISOString();
      // Standing still for 3 minutes (limit 2), then 30 m/s (limit 25), then at the end point (Delhi).
      await ping(w, trip.id, [
        { latitude: 27.5, longitude: 76.5, timestamp: at(0), speed: 0 },
        { latitude: 27.5, longitude: 76.5001, timestamp: at(90), speed: 0 },
        { latitude: 27.5, longitude: 76.5, timestamp: at(180), speed: 0 },
      ]);
      await ping(w, trip.id, [{ latitude: 27.51, longitude: 76.5, timestamp: at(240), speed: 30 }]);
      // About 140 km in two hours: no jump, no overspeed.
      await ping(w, trip.id, [{ latitude: 28.6135, longitude: 77.2088, timestamp: at(7440) }]);
      await afterFlushDone();
      off();
      const detail = await t.api.get(`/trips/${trip.id}`, { token: w.source.owner.accessToken });
      expect(detail.body.data.status).toBe('ARRIVED');
      const log = await t.api.get(`/trips/${trip.id}/events?limit=100`, { token: w.source.owner.accessToken });
      const types = log.body.data.map((e: { type: string }) => e.type);
      expect(types.slice(0, 5)).toEqual(expect.arrayContaining(['STOPPED', 'OVERSPEED', 'ARRIVAL', 'STATUS_CHANGED']));
      expect(log.body.data.find((e: { type: string }) => e.type === 'STOPPED').at).toBe(at(180));
      expect(log.body.data.find((e: { type: string }) => e.type === 'OVERSPEED').data).toMatchObject({
        speedMps: 30,
        limitMps: 25,
      });
      const published = events.filter((e) => e.room === `trip:${trip.id}`);
      expect(published.filter((e) => e.event === 'trip.event').map((e) => e.payload.type)).toEqual([
        'STOPPED',
        'OVERSPEED',
        'ARRIVAL',
      ]);
      expect(published.filter((e) => e.event === 'trip.status').map((e) => e.payload.status)).toEqual(['ARRIVED']);
      expect(
        events.some(
          (e) => e.room === `org:${w.destination.id}` && e.event === 'trip.status' && e.payload.status === 'ARRIVED',
        ),
      ).toBe(true);
      // Still taking pings while ARRIVED.
      expect(
        (await ping(w, trip.id, [{ latitude: 28.6136, longitude: 77.2088, timestamp: at(7500) }])).body.data.accepted,
      ).toBe(1);
    });
  });

  describe('one trip, several nodes', () => {
    let nodeB: AppNode;
    beforeAll(async () => {
      // Trip state kept for ten minutes: a status change can only reach it through the cluster bus.
      // Node B runs without prepared statements (as behind an old pooler), node A with them: the same track through both.
      nodeB = await startAnotherNode(t, {
        tripStateCacheMs: 600_000,
        tripStateCacheLiveMs: 600_000,
        databasePreparedStatements: false,
      });
    });
    afterAll(() => nodeB?.close());

    /** The trip's stored track, oldest first, measured point to point. */
    const storedTrack = async (tripId: string) => {
      const rows = await t.sql.query<{ lat: number; lng: number; recorded_at: Date }>(
        `SELECT lat, lng, recorded_at FROM trip_pings WHERE trip_id = $1 ORDER BY recorded_at`,
        [tripId],
      );
      return rows.rows.map((r) => ({ lat: r.lat, lng: r.lng, recordedAt: r.recorded_at }));
    };
    const tripRow = async (tripId: string) =>
      (await t.sql.query(`SELECT distance_km, latest_recorded_at FROM trips WHERE id = $1`, [tripId])).rows[0] as {
        distance_km: number;
        latest_recorded_at: Date | null;
      };
    const backlogRows = async (tripId: string) =>
      (await t.sql.query(`SELECT count(*)::int AS n FROM trip_ping_backlog WHERE trip_id = $1`, [tripId])).rows[0]
        .n as number;

    /** A zigzag north: each point 11 m on and 10 m across from the one a second before. */
    const zig = (t0: number, s: number) => ({
      latitude: 26.9 + s * 0.0001,
      longitude: 75.8 + (Math.round(s * 2) % 2) * 0.0001,
      timestamp: new Date(t0 + s * 1000).toISOString(),
    });

    it('points of one trip reaching two nodes at once, interleaved and late: distance is the stored track exactly', async () => {
      const { w, trip } = await world();
      const t0 = base();
      const post = (url: string, locations: unknown[]) => pingVia(url, w, trip.id, locations);
      let accepted = 0;
      for (let r = 0; r < 40; r++) {
        // Neighbouring points at once: node A the even seconds, node B the odd ones.
        const even = [0, 2, 4, 6, 8].map((s) => zig(t0, r * 10 + s));
        const odd = [1, 3, 5, 7, 9].map((s) => zig(t0, r * 10 + s));
        const sent = [post(t.url, even), post(nodeB.url, odd)];
        // Every fourth round, a late point into the stretch already stored, on either node.
        if (r % 4 === 3) sent.push(post(r % 8 === 3 ? t.url : nodeB.url, [zig(t0, (r - 2) * 10 + 4.5)]));
        for (const res of await Promise.all(sent)) {
          expect(res.status).toBe(200);
          accepted += res.body.data.accepted;
        }
      }
      await Promise.all([t.app.get(PingWriter).drain(), nodeB.app.get(PingWriter).drain()]);

      const track = await storedTrack(trip.id);
      expect(track.length).toBe(accepted);
      expect(accepted).toBeGreaterThan(400);
      const row = await tripRow(trip.id);
      expect(row.distance_km * 1000).toBeCloseTo(pathLengthM(track), 3);
      expect(row.latest_recorded_at!.toISOString()).toBe(track[track.length - 1].recordedAt.toISOString());
      expect(await backlogRows(trip.id)).toBe(0);
      const latest = await t.api.get(`/tracking/trips/${trip.id}/latest`, { token: w.source.owner.accessToken });
      expect(latest.body.data.recordedAt).toBe(track[track.length - 1].recordedAt.toISOString());
    });

    it("a status change on one node reaches another node's ping check at once, not after its cache age", async () => {
      const { w, trip } = await world();
      const t0 = base();
      const onB = (s: number) => pingVia(nodeB.url, w, trip.id, [zig(t0, s)]);
      expect((await onB(0)).status).toBe(200); // node B now holds the trip's state
      await moveTo(t.api, w, trip.id, 'CANCELLED');
      let s = 1;
      await until('node B to refuse pings', async () => (await onB(s++)).status === 409);
      const refused = await onB(s++);
      expect(refused.body.error.code).toBe('TRIP_NOT_ACTIVE');
    });

    it('a change node B could not hear (its subscription was down) is picked up when the subscription returns', async () => {
      const { w, trip } = await world();
      const t0 = base();
      const onB = (s: number) => pingVia(nodeB.url, w, trip.id, [zig(t0, s)]);
      expect((await onB(0)).status).toBe(200);
      // Changed behind every node's back: no message. Node B keeps using what it holds.
      await t.sql.query(`UPDATE trips SET status = 'CANCELLED' WHERE id = $1`, [trip.id]);
      expect((await onB(1)).status).toBe(200);
      const redis = new Redis(t.config.redisUrl);
      try {
        const id = ((await redis.client('LIST')) as string)
          .split('\n')
          .filter((line) => line.includes(` name=${t.config.redisKeyPrefix}bus `))
          .map((line) => line.match(/^id=(\d+)/)![1]);
        expect(id.length).toBe(2); // node A's and node B's
        for (const one of id) await redis.client('KILL', 'ID', one);
      } finally {
        redis.disconnect();
      }
      let s = 2;
      await until('node B to refuse pings', async () => (await onB(s++)).status === 409);
    });

    it('a driver removed from the org is refused at once on every node, however long the nodes keep trip state', async () => {
      const { w, trip } = await world();
      const t0 = base();
      const onA = (s: number) => pingVia(t.url, w, trip.id, [zig(t0, s)]);
      const onB = (s: number) => pingVia(nodeB.url, w, trip.id, [zig(t0, s)]);
      // Both nodes now hold the trip's ingest state.
      expect((await onA(0)).status).toBe(200);
      expect((await onB(1)).status).toBe(200);
      const del = await t.api.delete(`/orgs/${w.source.id}/members/${w.driver.id}`, {
        token: w.source.owner.accessToken,
      });
      expect(del.status).toBe(204);
      // The node that removed them, right away; node B (ten-minute cache) as soon as the bus message lands.
      const refusedA = await onA(2);
      expect(refusedA.status).toBe(404);
      expect(refusedA.body.error.code).toBe('NOT_FOUND');
      let s = 3;
      await until('node B to refuse the removed driver', async () => (await onB(s++)).status === 404);
      const refusedB = await onB(s++);
      expect(refusedB.status).toBe(404);
      // The trip itself goes out of their sight; their device id no longer reaches it.
      expect((await t.api.get(`/trips/${trip.id}`, { token: w.driver.accessToken })).status).toBe(404);
      expect((await t.api.get('/trips', { token: w.driver.accessToken })).body.data).toEqual([]);
      const osmand = await fetch(`${nodeB.url}/api/v1/tracking/osmand?id=${w.deviceId}&lat=26.95&lon=75.8`);
      expect(osmand.status).toBe(404);
      // The trip keeps its driver: history is intact.
      expect((await t.api.get(`/trips/${trip.id}`, { token: w.source.owner.accessToken })).body.data.driverId).toBe(
        w.driverId,
      );
      await Promise.all([t.app.get(PingWriter).drain(), nodeB.app.get(PingWriter).drain()]);
      expect(await count(trip.id)).toBe(2);
    });

    it('points a node acknowledged but never counted (it died before its round) are counted by the sweep', async () => {
      const { w, trip } = await world();
      const t0 = base();
      const dying = await startAnotherNode(t, { pingBacklogSweepMs: 0 });
      try {
        // The node commits and answers, then does no after-flush round: as if killed right after the commit.
        dying.app.get(PingWriter).onFlush(async () => undefined);
        const res = await pingVia(
          dying.url,
          w,
          trip.id,
          [0, 1, 2, 3].map((s) => zig(t0, s)),
        );
        expect(res.body.data.accepted).toBe(4);
      } finally {
        await dying.close();
      }
      expect((await tripRow(trip.id)).distance_km).toBe(0);
      expect(await backlogRows(trip.id)).toBe(1);

      // Any node's sweep counts backlog older than its sweep interval.
      const sweeper = await startAnotherNode(t, { pingBacklogSweepMs: 50 });
      try {
        await until('the sweep', async () => (await backlogRows(trip.id)) === 0, 10_000);
      } finally {
        await sweeper.close();
      }
      const track = await storedTrack(trip.id);
      const row = await tripRow(trip.id);
      expect(row.distance_km * 1000).toBeCloseTo(pathLengthM(track), 3);
      expect(row.latest_recorded_at!.toISOString()).toBe(zig(t0, 3).timestamp);
    });
  });

  describe('OsmAnd protocol', () => {
    let w: TripWorld;
    let tripId: string;
    beforeAll(async () => {
      w = await newWorld(t.api);
      tripId = (await activeTrip(t.api, w)).id;
      await t.sql.query(`UPDATE trips SET created_at = now() - interval '2 hours' WHERE id = $1`, [tripId]);
    });
    const stored = async () =>
      (
        await t.sql.query(
          `SELECT lat, lng, speed, heading, altitude, accuracy, recorded_at FROM trip_pings WHERE trip_id = $1 ORDER BY recorded_at`,
          [tripId],
        )
      ).rows;
    const raw = (method: string, path: string, init: RequestInit = {}) =>
      fetch(`${t.url}/api/v1/tracking/osmand${path}`, { method, ...init });

    it('Traccar Client (Android) style: POST with the query string and an empty body; speed in knots', async () => {
      const ts = Math.floor(Date.now() / 1000) - 50;
      const res = await raw(
        'POST',
        `?id=${w.trackerToken}&timestamp=${ts}&lat=26.912400&lon=75.787300&speed=10.0&bearing=90.0&altitude=431.0&accuracy=12.0&batt=89.0`,
        {
          headers: { 'user-agent': 'Traccar Client', 'content-length': '0' },
        },
      );
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('');
      const rows = await stored();
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ lat: 26.9124, lng: 75.7873, heading: 90, altitude: 431, accuracy: 12 });
      expect(rows[0].speed).toBeCloseTo(10 * KNOTS_TO_MPS, 6);
      expect((rows[0].recorded_at as Date).getTime()).toBe(ts * 1000);
      // A repeated point is a 200 too.
      const again = await raw('POST', `?id=${w.trackerToken}&timestamp=${ts}&lat=26.912400&lon=75.787300&speed=10.0`);
      expect(again.status).toBe(200);
      expect(await stored()).toHaveLength(1);
    });

    it('OsmAnd style GET with deviceid, location=lat,lon and a millisecond timestamp', async () => {
      const ms = Date.now() - 40_000;
      const res = await raw(
        'GET',
        `?deviceid=${w.trackerToken}&location=26.9125,75.7873&timestamp=${ms}&hdop=5&altitude=430&speed=0`,
      );
      expect(res.status).toBe(200);
      expect((await stored()).map((r) => (r.recorded_at as Date).getTime())).toContain(ms);
    });

    it('GPSLogger style form body with an ISO timestamp and heading', async () => {
      const iso = new Date(Date.now() - 30_000).toISOString();
      const res = await raw('POST', '', {
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `id=${encodeURIComponent(w.trackerToken)}&lat=26.9126&lon=75.7873&timestamp=${encodeURIComponent(iso)}&heading=45.5&speed=5`,
      });
      expect(res.status).toBe(200);
      const row = (await stored()).find((r) => (r.recorded_at as Date).toISOString() === iso);
      expect(row).toMatchObject({ lat: 26.9126, heading: 45.5 });
    });

    it('newer Traccar Client JSON body (speed in m/s)', async () => {
      const iso = new Date(Date.now() - 20_000).toISOString();
      const body = {
        location: {
          timestamp: iso,
          coords: { latitude: 26.9127, longitude: 75.7873, accuracy: 4.5, speed: 8.25, heading: 180, altitude: 432 },
          is_moving: true,
          odometer: 1234.5,
          event: 'motionchange',
          battery: { level: 0.76, is_charging: false },
          activity: { type: 'in_vehicle' },
          extras: {},
        },
        device_id: w.trackerToken,
      };
      const res = await raw('POST', '', {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(200);
      const row = (await stored()).find((r) => (r.recorded_at as Date).toISOString() === iso);
      expect(row).toMatchObject({ lat: 26.9127, speed: 8.25, heading: 180, accuracy: 4.5 });
    });

    it('unknown token 404, no active trip 409, missing coordinates 400', async () => {
      expect((await raw('GET', `?id=nobody&lat=26.9&lon=75.8`)).status).toBe(404);
      const idle = await newDriver(t.api, w.source);
      const res = await raw('GET', `?id=${idle.trackerToken}&lat=26.9&lon=75.8`);
      expect(res.status).toBe(409);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NO_ACTIVE_TRIP');
      expect((await raw('GET', `?id=${w.trackerToken}`)).status).toBe(400);
    });
  });

  it('a member who can see the trip but is not its driver gets 403 NOT_TRIP_DRIVER; anyone else 404', async () => {
    const { w, trip } = await world();
    const t0 = base();
    const post = (token: string) =>
      t.api.post('/tracking/ping', { tripId: trip.id, locations: [pt(t0, 0)] }, { token });
    // The driver's ping first: the trip's ingest state is then cached, as on a busy node.
    expect((await ping(w, trip.id, [pt(t0, 1)])).status).toBe(200);
    for (const member of [
      await newMember(t.api, w.source, 'STAFF'),
      await newMember(t.api, w.destination, 'STAFF'),
      await newMember(t.api, w.destination, 'ACCOUNTANT'),
    ]) {
      const res = await post(member.accessToken);
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('NOT_TRIP_DRIVER');
    }
    // A stranger, and a DRIVER member of the org who does not drive this trip (they cannot see it).
    const stranger = await newUser(t.api);
    const otherDriver = await newDriver(t.api, w.source);
    for (const token of [stranger.accessToken, otherDriver.user.accessToken]) {
      const res = await post(token);
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('NOT_FOUND');
    }
    // Whatever the trip's status: a finished trip answers the same to them.
    await moveTo(t.api, w, trip.id, 'ARRIVED', 'COMPLETED');
    expect((await post(w.source.owner.accessToken)).body.error.code).toBe('NOT_TRIP_DRIVER');
    expect((await post(stranger.accessToken)).status).toBe(404);
    await afterFlushDone();
    expect(await count(trip.id)).toBe(1);
  });
});
