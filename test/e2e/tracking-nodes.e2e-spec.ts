import { pathLengthM } from '../../src/modules/tracking/geo';
import { PingWriter } from '../../src/modules/tracking/ping-writer';
import { AppNode, startAnotherNode } from '../support/socket-client';
import { Api, startTestApp, TestApp } from '../support/test-app';
import { activeTrip, newWorld } from './trips.fixtures';

/** A zigzag road: skipping a point shortens the track, so a distance counted across the wrong neighbours shows. */
function pt(t0: number, i: number) {
  return {
    latitude: 26.9 + i * 0.0002,
    longitude: 75.8 + (i % 2 ? 0.0002 : 0),
    timestamp: new Date(t0 + i * 2000).toISOString(),
  };
}

describe('tracking on two nodes', () => {
  let t: TestApp;
  let other: AppNode;
  let otherApi: Api;
  beforeAll(async () => {
    t = await startTestApp();
    other = await startAnotherNode(t);
    otherApi = new Api(`${other.url}/api/v1`);
  });
  afterAll(async () => {
    await other?.close();
    await t?.close();
  });

  it("one trip's points arriving at both nodes at once: distance and latest location are those of the whole track", async () => {
    const w = await newWorld(t.api);
    const trip = await activeTrip(t.api, w);
    await t.sql.query(`UPDATE trips SET created_at = now() - interval '2 hours' WHERE id = $1`, [trip.id]);
    const t0 = Date.now() - 3600_000;
    const post = (api: Api, i: number) =>
      api.post('/tracking/ping', { tripId: trip.id, locations: [pt(t0, i)] }, { token: w.driver.accessToken });

    // Neighbouring points at the same moment on different nodes, round after round.
    let accepted = 0;
    for (let r = 0; r < 40; r++) {
      const [a, b] = await Promise.all([post(t.api, 2 * r), post(otherApi, 2 * r + 1)]);
      expect([a.status, b.status]).toEqual([200, 200]);
      accepted += a.body.data.accepted + b.body.data.accepted;
    }
    expect(accepted).toBe(80);
    await Promise.all([t.app.get(PingWriter).drain(), other.app.get(PingWriter).drain()]);

    const stored = await t.sql.query(`SELECT lat, lng FROM trip_pings WHERE trip_id = $1 ORDER BY recorded_at`, [
      trip.id,
    ]);
    expect(stored.rows).toHaveLength(80);
    const expectedM = pathLengthM(stored.rows.map((r) => ({ lat: r.lat, lng: r.lng })));
    const row = (
      await t.sql.query(`SELECT distance_km, latest_lat, latest_recorded_at FROM trips WHERE id = $1`, [trip.id])
    ).rows[0];
    expect(Number(row.distance_km) * 1000).toBeCloseTo(expectedM, 3);
    expect(row.latest_lat).toBeCloseTo(pt(t0, 79).latitude, 9);
    expect(new Date(row.latest_recorded_at).toISOString()).toBe(pt(t0, 79).timestamp);
  });
});
