import { tripRoom } from '../../src/infra/realtime/realtime-publisher';
import { realtimeEventsPublished } from '../../src/infra/observability/metrics';
import { AppNode, connectWatcher, PrivateRedis, startAnotherNode, Watcher } from '../support/socket-client';
import { startTestApp, TestApp } from '../support/test-app';
import { activeTrip, newWorld, TripWorld } from '../support/trips-fixtures';

/** Redis killed and restarted under two app nodes: a private redis-server this file owns. */
describe('realtime while Redis is down', () => {
  let redis: PrivateRedis;
  let t: TestApp;
  let nodeB: AppNode;
  const open: Watcher[] = [];

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    t = await startTestApp({ redisUrl: redis.url, realtimeBreakerResetMs: 300, realtimeBreakerTimeoutMs: 300 });
    nodeB = await startAnotherNode(t);
  });
  afterAll(async () => {
    for (const w of open) w.close();
    await redis?.start().catch(() => undefined); // closing is quicker with Redis up
    await nodeB?.close();
    await t?.close();
    await redis?.stop();
  });

  let clock = Date.now() - 3600_000;
  let step = 0;
  async function ping(w: TripWorld, tripId: string): Promise<void> {
    clock += 1000;
    step += 1; // ~5.5 m a second: well under the speed filter, whatever the clock

    const res = await t.api.post(
      '/tracking/ping',
      {
        tripId,
        locations: [
          {
            latitude: 26.9 + step * 0.00005,
            longitude: 75.8,
            timestamp: new Date(clock).toISOString(),
          },
        ],
      },
      { token: w.driver.accessToken },
    );
    if (res.status !== 200 || res.body.data.accepted !== 1)
      throw new Error(`ping: ${res.status} ${JSON.stringify(res.body)}`);
  }
  const pointsIn = (w: Watcher, room: string) =>
    w.inRoom(room, 'trip.location').flatMap((e) => e.points as unknown[]).length;

  it('pings are stored and reach watchers on the same node; cross-node delivery resumes by itself when Redis is back', async () => {
    const w = await newWorld(t.api);
    const trip = await activeTrip(t.api, w);
    await t.sql.query(`UPDATE trips SET created_at = now() - interval '2 hours' WHERE id = $1`, [trip.id]);
    const room = tripRoom(trip.id);
    const onA = await connectWatcher(t.url, w.source.owner.accessToken);
    const onB = await connectWatcher(nodeB.url, w.destination.owner.accessToken);
    open.push(onA, onB);
    for (const s of [onA, onB]) expect(await s.request('subscribe', { room })).toEqual({ ok: true });
    await ping(w, trip.id);
    for (const s of [onA, onB]) await s.waitFor((x) => pointsIn(x, room) === 1, 'the first point');

    await redis.stop();
    for (let i = 0; i < 4; i++) await ping(w, trip.id);
    const stored = await t.sql.query(`SELECT count(*)::int AS n FROM trip_pings WHERE trip_id = $1`, [trip.id]);
    expect(stored.rows[0].n).toBe(5);
    await onA.waitFor((x) => pointsIn(x, room) === 5, 'the points sent while Redis is down, on the same node');
    // They went out on the local path (sequenced by the node), not through Redis.
    const published = await realtimeEventsPublished.get();
    expect(published.values.some((v) => v.labels.path === 'local' && v.value > 0)).toBe(true);
    // Points a few ms apart are merged into one trip.location event (REALTIME_LOCATION_INTERVAL_MS),
    // so the outage's events are counted here rather than assumed to be one per ping.
    const outageSeqs = onA.inRoom(room).map((e) => e.seq!);

    await redis.start();
    // Keep pinging until a point crosses to node B again (the timeout only guards the loop).
    const deadline = Date.now() + 20_000;
    let sent = 5;
    while (pointsIn(onB, room) < 2) {
      if (Date.now() > deadline) throw new Error('cross-node delivery did not resume');
      await ping(w, trip.id);
      sent += 1;
      await onB.waitFor((x) => pointsIn(x, room) >= 2, 'a point on node B', 1000).catch(() => undefined);
    }
    await onA.waitFor((x) => pointsIn(x, room) === sent, 'every point on node A');
    // The room's seqs never went back, through the outage and after Redis lost its data.
    const seqsA = onA.inRoom(room).map((e) => e.seq!);
    expect(seqsA).toEqual([...seqsA].sort((a, b) => a - b));
    expect(new Set(seqsA).size).toBe(seqsA.length);
    const eventsB = onB.inRoom(room);
    // B's first event after the outage is sequenced past every seq A used on the local path,
    expect(eventsB[1].seq!).toBeGreaterThan(Math.max(...outageSeqs));
    // and that seq names the same event on both nodes (no seq given to two events).
    const sameOnA = onA.inRoom(room).find((e) => e.seq === eventsB[1].seq);
    expect(sameOnA?.points).toEqual(eventsB[1].points);
  });
});
