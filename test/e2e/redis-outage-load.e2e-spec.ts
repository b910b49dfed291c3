/**
 * Redis killed under mixed load, then brought back on the same port, with the
 * same app process throughout (no restart). A private `redis-server`
 * (`PrivateRedis`, test/support/socket-client.ts) carries the app's Redis; a few
 * concurrent loops send pings, trip reads, chat messages and QR scans over real
 * HTTP before, during and after the outage. Asserted:
 * - pings are 2xx throughout, and every acknowledged point is stored
 *   (points in the database == the sum of `accepted` answered);
 * - no 5xx on ingest, reads answer from the database while Redis is away,
 *   every 201 chat message and scan is stored (nothing acknowledged is lost);
 * - once Redis is back: rate-limit counters are kept in Redis again, a fresh
 *   Socket.IO watcher gets the trip's points, a Bull job (a QR batch) runs,
 *   and the public tag page's summary is cached in Redis again.
 * The requests by phase and status are printed (they are not asserted on).
 * The single-request outage cases live in dependency-outages.e2e-spec.ts and
 * realtime-redis-down.e2e-spec.ts.
 */
import Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { tripRoom } from '../../src/infra/realtime/realtime-publisher';
import { until } from '../support/net';
import { connectWatcher, PrivateRedis, Watcher } from '../support/socket-client';
import { startTestApp, TestApp } from '../support/test-app';
import { activeTrip, newWorld, TripWorld } from '../support/trips-fixtures';

jest.setTimeout(120_000);

type Phase = 'before' | 'during' | 'after';
type Kind = 'ping' | 'trip read' | 'latest read' | 'tag page' | 'chat send' | 'qr scan';

interface Lane {
  w: TripWorld;
  tripId: string;
  threadId: string;
  tagCode: string;
  /** Epoch ms of the next point: one second apart, well under the speed filter. */
  clock: number;
  step: number;
  accepted: number;
  messagesAcked: Set<string>;
  scansAcked: number;
}

describe('Redis killed under mixed load', () => {
  let redis: PrivateRedis;
  let t: TestApp;
  let direct: Redis;
  const lanes: Lane[] = [];
  const open: Watcher[] = [];
  let phase: Phase = 'before';
  const counts = new Map<string, number>();
  /** Slowest answer by phase and kind (printed only: a figure, not an assertion). */
  const slowest = new Map<string, number>();
  const timed = async <T>(kind: Kind, fn: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    const out = await fn();
    const k = `${phase} | ${kind}`;
    slowest.set(k, Math.max(slowest.get(k) ?? 0, Date.now() - started));
    return out;
  };
  const failures: string[] = [];

  const note = (kind: Kind, status: number, body: unknown) => {
    const k = `${phase} | ${kind} | ${status}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
    if (status >= 500 && !(status === 503 && (kind === 'chat send' || kind === 'qr scan')))
      failures.push(`${phase} ${kind}: ${status} ${JSON.stringify(body).slice(0, 200)}`);
  };

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    t = await startTestApp({
      redisUrl: redis.url,
      redisBreakerResetMs: 500,
      redisBreakerTimeoutMs: 300,
      realtimeBreakerResetMs: 300,
      realtimeBreakerTimeoutMs: 300,
      qrPublicRateLimitPerMinute: 1_000_000,
    });
    direct = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    for (let i = 0; i < 3; i++) {
      const w = await newWorld(t.api);
      const trip = await activeTrip(t.api, w);
      await t.sql.query(`UPDATE trips SET created_at = now() - interval '2 hours' WHERE id = $1`, [trip.id]);
      const as = { token: w.source.owner.accessToken };
      const thread = await t.api.post('/chat/threads', { tripId: trip.id }, as);
      const tag = await t.api.post(
        '/qr/tags',
        { orgId: w.source.id, entityType: 'TRUCK', entityId: w.truckId, title: `Truck ${i}` },
        as,
      );
      lanes.push({
        w,
        tripId: trip.id,
        threadId: thread.body.data.id,
        tagCode: tag.body.data.code,
        clock: Date.now() - 3600_000,
        step: 0,
        accepted: 0,
        messagesAcked: new Set(),
        scansAcked: 0,
      });
    }
  });
  afterAll(async () => {
    for (const w of open) w.close();
    direct?.disconnect();
    await redis?.start().catch(() => undefined); // closing is quicker with Redis up
    await t?.close();
    await redis?.stop();
  });

  async function pingOnce(lane: Lane): Promise<void> {
    lane.clock += 1000;
    lane.step += 1;
    const res = await timed('ping', () =>
      t.api.post(
        '/tracking/ping',
        {
          tripId: lane.tripId,
          locations: [
            { latitude: 26.9 + lane.step * 0.00005, longitude: 75.8, timestamp: new Date(lane.clock).toISOString() },
          ],
        },
        { token: lane.w.driver.accessToken },
      ),
    );
    note('ping', res.status, res.body);
    if (res.status === 200) lane.accepted += res.body.data.accepted as number;
    else failures.push(`${phase} ping: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
  }

  async function readOnce(lane: Lane): Promise<void> {
    const as = { token: lane.w.source.owner.accessToken };
    const trip = await timed('trip read', () => t.api.get(`/trips/${lane.tripId}`, as));
    note('trip read', trip.status, trip.body);
    if (trip.status !== 200) failures.push(`${phase} trip read: ${trip.status}`);
    const latest = await timed('latest read', () => t.api.get(`/tracking/trips/${lane.tripId}/latest`, as));
    note('latest read', latest.status, latest.body);
    if (latest.status !== 200) failures.push(`${phase} latest read: ${latest.status}`);
    const page = await timed('tag page', () =>
      t.root.get(`/q/${lane.tagCode}`, { headers: { accept: 'application/json' } }),
    );
    note('tag page', page.status, page.body);
    if (page.status !== 200) failures.push(`${phase} tag page: ${page.status}`);
  }

  async function chatOnce(lane: Lane): Promise<void> {
    const clientMessageId = randomUUID();
    const res = await timed('chat send', () =>
      t.api.post(
        `/chat/threads/${lane.threadId}/messages`,
        { body: `at ${phase}`, clientMessageId },
        { token: lane.w.source.owner.accessToken },
      ),
    );
    note('chat send', res.status, res.body);
    if (res.status === 201) lane.messagesAcked.add(clientMessageId);
  }

  async function scanOnce(lane: Lane): Promise<void> {
    const res = await timed('qr scan', () =>
      t.api.post('/qr/scan', { code: lane.tagCode, action: 'CHECK_IN' }, { token: lane.w.source.owner.accessToken }),
    );
    note('qr scan', res.status, res.body);
    if (res.status === 201) lane.scansAcked += 1;
  }

  /** Four loops per lane (pings, reads, chat, scans) until `stop` resolves. */
  async function load(stop: Promise<void>): Promise<void> {
    let done = false;
    void stop.then(() => (done = true));
    const loop = async (fn: () => Promise<void>) => {
      while (!done) await fn();
    };
    await Promise.all(
      lanes.flatMap((lane) => [
        loop(() => pingOnce(lane)),
        loop(() => readOnce(lane)),
        loop(() => chatOnce(lane)),
        loop(() => scanOnce(lane)),
      ]),
    );
  }
  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

  it('keeps ingest, reads and writes answering, loses nothing acknowledged, and recovers without a restart', async () => {
    // Before: everything through Redis; each trip has a point, so its latest location exists.
    phase = 'before';
    for (const lane of lanes) await pingOnce(lane);
    await load(sleep(1500));

    // During: Redis killed, the same loops go on for a few seconds.
    await redis.stop();
    phase = 'during';
    await load(sleep(4000));

    // After: Redis back on the same port (empty: it kept nothing), the loops go on.
    await redis.start();
    phase = 'after';
    await load(sleep(3000));

    const table = [...counts.entries()].sort(([a], [b]) => a.localeCompare(b));
    console.log(`requests by phase | kind | status:\n${table.map(([k, n]) => `${k}: ${n}`).join('\n')}`);
    const slow = [...slowest.entries()].sort(([a], [b]) => a.localeCompare(b));
    console.log(`slowest answer (ms) by phase | kind:\n${slow.map(([k, n]) => `${k}: ${n}`).join('\n')}`);
    expect(failures).toEqual([]);
    // Every phase did send pings (the outage was under load).
    for (const p of ['before', 'during', 'after'])
      expect([...counts.keys()].some((k) => k.startsWith(`${p} | ping | 200`))).toBe(true);

    // Nothing acknowledged is lost.
    for (const lane of lanes) {
      const pings = await t.sql.query(`SELECT count(*)::int AS n FROM trip_pings WHERE trip_id = $1`, [lane.tripId]);
      expect({ trip: lane.tripId, stored: pings.rows[0].n }).toEqual({ trip: lane.tripId, stored: lane.accepted });
      const msgs = await t.sql.query(
        `SELECT client_message_id AS id FROM chat_messages WHERE thread_id = $1 AND client_message_id = ANY($2::text[])`,
        [lane.threadId, [...lane.messagesAcked]],
      );
      expect(msgs.rows.length).toBe(lane.messagesAcked.size);
      const scans = await t.sql.query(
        `SELECT count(*)::int AS n FROM qr_scans s JOIN qr_tags g ON g.id = s.tag_id WHERE g.code = $1`,
        [lane.tagCode],
      );
      expect(scans.rows[0].n).toBe(lane.scansAcked);
    }
    const sum = (kind: Kind, p: Phase, ok: (s: number) => boolean) =>
      [...counts.entries()]
        .filter(([k]) => k.startsWith(`${p} | ${kind} | `) && ok(Number(k.split(' | ')[2])))
        .reduce((a, [, n]) => a + n, 0);
    console.log(
      `acknowledged: ${lanes.reduce((a, l) => a + l.accepted, 0)} points, ` +
        `${lanes.reduce((a, l) => a + l.messagesAcked.size, 0)} messages, ${lanes.reduce((a, l) => a + l.scansAcked, 0)} scans ` +
        `(during the outage: ${sum('ping', 'during', (s) => s === 200)} pings 200, ` +
        `${sum('chat send', 'during', (s) => s === 201)} messages 201, ${sum('qr scan', 'during', (s) => s === 201)} scans 201, ` +
        `${sum('chat send', 'during', (s) => s >= 500) + sum('qr scan', 'during', (s) => s >= 500)} writes 5xx)`,
    );
  });

  it('after Redis returns: rate limits count in Redis, realtime reaches a fresh watcher, queues run jobs, caches fill', async () => {
    await direct.connect().catch(() => undefined);
    const prefix = t.config.redisKeyPrefix;
    const lane = lanes[0];

    // Rate limits: a login counts in Redis again (after the store's retry pause).
    await until(
      'a rate-limit counter in Redis',
      async () => {
        await t.api.post('/auth/login', { phone: lane.w.source.owner.phone, password: lane.w.source.owner.password });
        return (await direct.keys(`${prefix}rate-limit:*`)).length > 0;
      },
      10_000,
    );

    // Caches: the public tag page's summary is written to Redis again (once this node's own copy, kept up to
    // CACHE_LOCAL_TTL_MS, has lapsed).
    const summaryKey = `${prefix}cache:qr_public:${lane.tagCode}`;
    await direct.del(summaryKey);
    await until(
      'the tag page summary cached in Redis',
      async () => {
        await t.root.get(`/q/${lane.tagCode}`, { headers: { accept: 'application/json' } });
        return (await direct.exists(summaryKey)) === 1;
      },
      t.config.cacheLocalTtlMs + 10_000,
    );

    // Realtime: a watcher connected now gets the trip's next points.
    const watcher = await connectWatcher(t.url, lane.w.source.owner.accessToken);
    open.push(watcher);
    const room = tripRoom(lane.tripId);
    expect(await watcher.request('subscribe', { room })).toEqual({ ok: true });
    const deadline = Date.now() + 15_000;
    while (watcher.inRoom(room, 'trip.location').length === 0) {
      if (Date.now() > deadline) throw new Error('no trip.location reached the fresh watcher');
      await pingOnce(lane);
      await watcher.waitFor((x) => x.inRoom(room, 'trip.location').length > 0, 'a point', 500).catch(() => undefined);
    }

    // Queues: a QR batch (a Bull job) runs to the end.
    const as = { token: lane.w.source.owner.accessToken };
    const batch = await t.api.post(
      '/qr/batches',
      { orgId: lane.w.source.id, items: [{ entityType: 'CARGO', entityId: 'after-outage', title: 'Crate' }] },
      as,
    );
    expect(batch.status).toBe(202);
    await until(
      'the batch job to finish',
      async () => (await t.api.get(`/qr/batches/${batch.body.data.batchId}`, as)).body.data?.done === 1,
      15_000,
    );
  });
});
