import Redis from 'ioredis';
import { orgRoom, RealtimePublisher } from '../../src/infra/realtime/realtime-publisher';
import { newOrg, newUser } from '../support/factories';
import { until } from '../support/net';
import { connectWatcher, Watcher } from '../support/socket-client';
import { startTestApp, TestApp } from '../support/test-app';

/** Realtime bounds: rooms and subscribes per socket, points per trip.location, bytes of a room's log. */
describe('realtime limits', () => {
  let t: TestApp;
  let redis: Redis;
  const sockets: Watcher[] = [];

  beforeAll(async () => {
    t = await startTestApp({
      realtimeMaxRoomsPerSocket: 3,
      realtimeSubscribesPerSecond: 5,
      realtimeLocationMaxPoints: 20,
      realtimeLogMaxBytes: 20_000,
    });
    redis = new Redis(t.config.redisUrl, { keyPrefix: t.config.redisKeyPrefix });
  });
  afterAll(async () => {
    for (const s of sockets) s.close();
    redis.disconnect();
    await t.close();
  });

  const watch = async (token: string) => {
    const w = await connectWatcher(t.url, token);
    sockets.push(w);
    return w;
  };

  it('a socket holds at most REALTIME_MAX_ROOMS_PER_SOCKET rooms', async () => {
    const owner = await newUser(t.api, 'Owner');
    const orgs = [];
    for (let i = 0; i < 4; i++) orgs.push(await newOrg(t.api, owner, `Org ${i}`));
    const s = await watch(owner.accessToken);
    for (const o of orgs.slice(0, 3))
      expect(await s.request('subscribe', { room: orgRoom(o.id) })).toEqual({ ok: true });
    const fourth = await s.request('subscribe', { room: orgRoom(orgs[3].id) });
    expect(fourth).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED', details: [{ path: 'room', limit: 3 }] } });
    // Subscribing again to a room it holds is not a new room; freeing one makes space.
    expect(await s.request('unsubscribe', { room: orgRoom(orgs[0].id) })).toEqual({ ok: true });
    expect(await s.request('subscribe', { room: orgRoom(orgs[3].id) })).toEqual({ ok: true });
  });

  it('a burst of subscribes beyond REALTIME_SUBSCRIBES_PER_SECOND is refused', async () => {
    const org = await newOrg(t.api);
    const s = await watch(org.owner.accessToken);
    const acks = await Promise.all(Array.from({ length: 30 }, () => s.request('subscribe', { room: orgRoom(org.id) })));
    const refused = acks.filter((a) => !a.ok);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused[0].error).toMatchObject({ code: 'RATE_LIMITED', details: [{ retryAfterMs: expect.any(Number) }] });
    expect(acks.filter((a) => a.ok).length).toBeGreaterThanOrEqual(5);
    // Another socket of the same user has its own allowance.
    const other = await watch(org.owner.accessToken);
    expect(await other.request('subscribe', { room: orgRoom(org.id) })).toEqual({ ok: true });
  });

  it('a trip.location event carries at most REALTIME_LOCATION_MAX_POINTS points, the newest, and a dropped count', async () => {
    const org = await newOrg(t.api);
    const room = orgRoom(org.id);
    const s = await watch(org.owner.accessToken);
    expect(await s.request('subscribe', { room })).toEqual({ ok: true });
    const publisher = t.app.get(RealtimePublisher);
    const at = (i: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString();
    const point = (i: number) => ({ lat: 1, lng: 1, speed: null, heading: null, recordedAt: at(i) });
    publisher.publish(room, 'trip.location', { tripId: 'x', points: [point(0)] });
    for (let i = 1; i <= 30; i++) publisher.publish(room, 'trip.location', { tripId: 'x', points: [point(i)] });
    await s.waitFor((w) => w.inRoom(room, 'trip.location').length === 2, 'the window after the first point');
    const [first, merged] = s.inRoom(room, 'trip.location');
    expect((first.points as unknown[]).length).toBe(1);
    expect(first.dropped).toBeUndefined();
    expect((merged.points as { recordedAt: string }[]).map((p) => p.recordedAt)).toEqual(
      Array.from({ length: 20 }, (_, k) => at(k + 11)),
    );
    expect(merged.dropped).toBe(10);
  });

  it('a room log is trimmed by bytes as well as by count, keeping the newest events', async () => {
    const room = orgRoom('0190b0a0-0000-7000-8000-000000000001');
    const publisher = t.app.get(RealtimePublisher);
    const big = 'x'.repeat(3000);
    for (let i = 1; i <= 30; i++)
      publisher.publish(room, 'trip.event', { tripId: 'x', type: 'NOTE', at: '', data: { i, big } });
    await until('thirty events logged', async () => Number(await redis.get(`rt:seq:{${room}}`)) === 30, 10_000);
    const entries = (await redis.xrange(`rt:log:{${room}}`, '-', '+')) as [string, string[]][];
    const size = (fields: string[]) => 16 + fields.reduce((n, f) => n + Buffer.byteLength(f), 0);
    const bytes = entries.reduce((n, [, f]) => n + size(f), 0);
    expect(bytes).toBeLessThanOrEqual(20_000);
    expect(entries.length).toBeGreaterThanOrEqual(5); // ~3 kB each: as many as fit
    expect(entries.length).toBeLessThan(10);
    // The newest are the ones kept, in seq order, and the kept count matches the log.
    const seqs = entries.map(([id]) => Number(id.split('-')[0]));
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, k) => 31 - seqs.length + k));
    expect(Number(await redis.get(`rt:bytes:{${room}}`))).toBe(bytes);
  });
});
