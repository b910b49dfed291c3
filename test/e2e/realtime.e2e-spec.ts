import { JwtService } from '@nestjs/jwt';
import { RealtimePublisher, tripRoom, orgRoom } from '../../src/infra/realtime/realtime-publisher';
import { newUser } from '../support/factories';
import { AppNode, connectWatcher, refusal, startAnotherNode, Watcher } from '../support/socket-client';
import { startTestApp, TestApp } from '../support/test-app';
import { activeTrip, moveTo, newMember, newWorld, TripWorld } from '../support/trips-fixtures';

describe('realtime (Socket.IO)', () => {
  let t: TestApp;
  let nodeB: AppNode;
  const open: Watcher[] = [];
  const watch = async (url: string, token: string, transports?: ('polling' | 'websocket')[]) => {
    const w = await connectWatcher(url, token, { transports });
    open.push(w);
    return w;
  };

  beforeAll(async () => {
    t = await startTestApp({ realtimeReauthorizeMs: 300 });
    nodeB = await startAnotherNode(t);
  });
  afterEach(() => {
    for (const w of open.splice(0)) w.close();
  });
  afterAll(async () => {
    await nodeB?.close();
    await t?.close();
  });

  /** An IN_TRANSIT trip whose creation is back-dated, so that pings "now" are valid. */
  async function liveTrip(): Promise<{ w: TripWorld; tripId: string }> {
    const w = await newWorld(t.api);
    const trip = await activeTrip(t.api, w);
    await t.sql.query(`UPDATE trips SET created_at = now() - interval '2 hours' WHERE id = $1`, [trip.id]);
    return { w, tripId: trip.id };
  }

  const clockStart = Date.now() - 3600_000;
  let clock = clockStart;
  /** One point a second further along a road (timestamps unique across the file; ~5.5 m a step, never a jump). */
  function point() {
    clock += 1000;
    const s = (clock - clockStart) / 1000;
    return {
      latitude: 26.9 + s * 0.00005,
      longitude: 75.8,
      timestamp: new Date(clock).toISOString(),
      speed: 5,
      heading: 0,
    };
  }

  async function ping(baseUrl: string, w: TripWorld, tripId: string, n = 1): Promise<void> {
    const locations = Array.from({ length: n }, () => point());
    const res = await fetch(`${baseUrl}/api/v1/tracking/ping`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${w.driver.accessToken}` },
      body: JSON.stringify({ tripId, locations }),
    });
    const body = (await res.json()) as { data: { accepted: number } };
    if (res.status !== 200 || body.data.accepted !== n) throw new Error(`ping: ${res.status} ${JSON.stringify(body)}`);
  }

  const seqs = (w: Watcher, room: string) => w.inRoom(room).map((e) => e.seq!);
  const points = (w: Watcher, room: string) =>
    w.inRoom(room, 'trip.location').flatMap((e) => e.points as { recordedAt: string }[]);

  describe('handshake', () => {
    it('accepts a valid token over websocket and over long-polling', async () => {
      const u = await newUser(t.api);
      const ws = await watch(t.url, u.accessToken, ['websocket']);
      const polling = await watch(t.url, u.accessToken, ['polling']);
      expect(ws.socket.connected).toBe(true);
      expect(polling.socket.connected).toBe(true);
      expect(polling.socket.io.engine.transport.name).toBe('polling');
    });

    it('refuses a missing, bad or expired token with a code the client sees', async () => {
      const u = await newUser(t.api);
      expect((await refusal(t.url, undefined)).data.code).toBe('UNAUTHENTICATED');
      expect((await refusal(t.url, 'not-a-jwt')).data.code).toBe('INVALID_TOKEN');
      const forged = new JwtService({ secret: 'another-secret-of-enough-length' }).sign(
        { sub: u.id, sid: 'x' },
        { issuer: 'waybill' },
      );
      expect((await refusal(t.url, forged)).data.code).toBe('INVALID_TOKEN');
      const expired = new JwtService({ secret: t.config.jwtSecret }).sign(
        { sub: u.id, sid: 'x', exp: Math.floor(Date.now() / 1000) - 10 },
        { issuer: 'waybill', algorithm: 'HS256' },
      );
      const e = await refusal(t.url, expired);
      expect(e.data).toEqual({ code: 'TOKEN_EXPIRED', message: expect.any(String) });
    });

    it('a session logged out is refused', async () => {
      const u = await newUser(t.api);
      expect(
        (await t.api.post('/auth/logout', { refreshToken: u.refreshToken }, { token: u.accessToken })).status,
      ).toBe(204);
      expect((await refusal(t.url, u.accessToken)).data.code).toBe('INVALID_TOKEN');
    });

    it('disconnects a socket when its token expires, unless it re-authenticates first', async () => {
      const u = await newUser(t.api);
      const jwt = new JwtService({ secret: t.config.jwtSecret });
      const shortLived = (s: number) =>
        jwt.sign({ sub: u.id, sid: 'short' }, { issuer: 'waybill', algorithm: 'HS256', expiresIn: s });
      const w = await watch(t.url, shortLived(1));
      const renewed = await watch(t.url, shortLived(1));
      const ack = await renewed.request('auth', { token: shortLived(60) });
      expect(ack).toEqual({ ok: true, expiresAt: expect.any(String) });
      await w.waitFor(
        (x) => x.events.some((e) => e.event === 'auth.expired') && !x.socket.connected,
        'auth.expired then disconnect',
      );
      expect(w.events.find((e) => e.event === 'auth.expired')).toMatchObject({ code: 'TOKEN_EXPIRED' });
      // Another user's token is not a renewal.
      const other = await newUser(t.api);
      expect(await renewed.request('auth', { token: other.accessToken })).toMatchObject({
        ok: false,
        error: { code: 'FORBIDDEN' },
      });
      expect(renewed.socket.connected).toBe(true);
    });
  });

  describe('subscribe authorization', () => {
    it('trip rooms: members of either org and the driver; not outsiders, not another org', async () => {
      const { w, tripId } = await liveTrip();
      const room = tripRoom(tripId);
      const staffOfDest = await newMember(t.api, w.destination, 'STAFF');
      for (const user of [w.source.owner, w.destination.owner, w.driver, staffOfDest]) {
        const s = await watch(t.url, user.accessToken);
        expect(await s.request('subscribe', { room })).toEqual({ ok: true });
      }
      const other = await newWorld(t.api);
      const outsider = await watch(t.url, other.source.owner.accessToken);
      expect(await outsider.request('subscribe', { room })).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
      // Another org's driver is no driver of this trip.
      const otherDriver = await watch(t.url, other.driver.accessToken);
      expect(await otherDriver.request('subscribe', { room })).toMatchObject({
        ok: false,
        error: { code: 'NOT_FOUND' },
      });
      expect(
        await outsider.request('subscribe', { room: tripRoom('0190f0a0-0000-7000-8000-000000000000') }),
      ).toMatchObject({
        ok: false,
        error: { code: 'NOT_FOUND' },
      });
    });

    it('org rooms for members (not DRIVERs); an unknown thread is NOT_FOUND; bad payloads are VALIDATION_FAILED', async () => {
      const w = await newWorld(t.api);
      const accountant = await newMember(t.api, w.source, 'ACCOUNTANT');
      const a = await watch(t.url, accountant.accessToken);
      expect(await a.request('subscribe', { room: orgRoom(w.source.id) })).toEqual({ ok: true });
      expect(await a.request('subscribe', { room: orgRoom(w.destination.id) })).toMatchObject({
        ok: false,
        error: { code: 'NOT_FOUND' },
      });
      const driver = await watch(t.url, w.driver.accessToken);
      expect(await driver.request('subscribe', { room: orgRoom(w.source.id) })).toMatchObject({
        ok: false,
        error: { code: 'FORBIDDEN' },
      });
      expect(await a.request('subscribe', { room: 'thread:0190f0a0-0000-7000-8000-000000000000' })).toMatchObject({
        ok: false,
        error: { code: 'NOT_FOUND' },
      });
      for (const bad of [
        undefined,
        'trip:1',
        { room: 42 },
        { room: 'truck:0190f0a0-0000-7000-8000-000000000000' },
        { room: orgRoom(w.source.id), sinceSeq: -1 },
        { room: orgRoom(w.source.id), extra: 1 },
      ]) {
        expect(await a.request('subscribe', bad)).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
      }
      expect(await a.request('unsubscribe', {})).toMatchObject({ ok: false, error: { code: 'VALIDATION_FAILED' } });
      expect(await a.request('unsubscribe', { room: orgRoom(w.source.id) })).toEqual({ ok: true });
      // Without an ack callback, the error still comes back, as an event.
      a.socket.emit('subscribe', { room: 'nope' });
      await a.waitFor((x) => x.events.some((e) => e.event === 'rt.error'), 'rt.error');
      expect(a.events.find((e) => e.event === 'rt.error')).toMatchObject({
        request: 'subscribe',
        error: { code: 'VALIDATION_FAILED' },
      });
      expect(a.socket.connected).toBe(true);
    });

    it('a member removed from the org stops receiving its rooms, on every socket of theirs', async () => {
      const { w, tripId } = await liveTrip();
      const staff = await newMember(t.api, w.source, 'STAFF');
      const removed = await watch(t.url, staff.accessToken);
      // A second tab of the same user: one re-check per (user, room) must still reach both sockets.
      const otherTab = await watch(t.url, staff.accessToken);
      const control = await watch(t.url, w.source.owner.accessToken);
      for (const s of [removed, otherTab, control]) {
        expect(await s.request('subscribe', { room: orgRoom(w.source.id) })).toEqual({ ok: true });
        expect(await s.request('subscribe', { room: tripRoom(tripId) })).toEqual({ ok: true });
      }
      const del = await t.api.delete(`/orgs/${w.source.id}/members/${staff.id}`, { token: w.source.owner.accessToken });
      expect(del.status).toBe(204);
      for (const s of [removed, otherTab]) {
        await s.waitFor((x) => x.events.filter((e) => e.event === 'room.revoked').length === 2, 'both rooms revoked');
      }
      await moveTo(t.api, w, tripId, 'ARRIVED');
      await control.waitFor(
        (x) =>
          x.inRoom(tripRoom(tripId), 'trip.status').length > 0 &&
          x.inRoom(orgRoom(w.source.id), 'trip.status').length > 0,
        'status',
      );
      for (const s of [removed, otherTab]) expect(s.events.filter((e) => e.event === 'trip.status')).toEqual([]);
    });
  });

  describe('losing access, with no periodic re-check to rely on', () => {
    let a: TestApp;
    let b: AppNode;
    beforeAll(async () => {
      a = await startTestApp({ realtimeReauthorizeMs: 3_600_000 });
      b = await startAnotherNode(a);
    });
    afterAll(async () => {
      await b?.close();
      await a?.close();
    });

    it('a member removed on one node loses the rooms on every node at once', async () => {
      const w = await newWorld(a.api);
      const staff = await newMember(a.api, w.source, 'STAFF');
      const onA = await watch(a.url, staff.accessToken);
      const onB = await watch(b.url, staff.accessToken);
      for (const s of [onA, onB]) {
        expect(await s.request('subscribe', { room: orgRoom(w.source.id) })).toEqual({ ok: true });
      }
      const del = await a.api.delete(`/orgs/${w.source.id}/members/${staff.id}`, { token: w.source.owner.accessToken });
      expect(del.status).toBe(204);
      for (const s of [onA, onB]) {
        await s.waitFor((x) => x.events.some((e) => e.event === 'room.revoked'), 'room revoked');
        expect(s.events.find((e) => e.event === 'room.revoked')).toMatchObject({ room: orgRoom(w.source.id) });
      }
    });

    it('a logout disconnects the sockets of that session at once on every node; another session stays', async () => {
      const u = await newUser(a.api);
      const login = await a.api.post('/auth/login', { phone: u.phone, password: u.password });
      expect(login.status).toBe(200);
      const onA = await watch(a.url, u.accessToken);
      const onB = await watch(b.url, u.accessToken);
      const otherSession = await watch(b.url, login.body.data.accessToken);
      const closed = [onA, onB].map(
        (s) => new Promise<string>((resolve) => s.socket.once('disconnect', (reason) => resolve(reason))),
      );
      const out = await a.api.post('/auth/logout', { refreshToken: u.refreshToken }, { token: u.accessToken });
      expect(out.status).toBe(204);
      expect(await Promise.all(closed)).toEqual(['io server disconnect', 'io server disconnect']);
      for (const s of [onA, onB]) {
        expect(s.events.find((e) => e.event === 'auth.expired')).toMatchObject({ code: 'INVALID_TOKEN' });
      }
      // The other login of the same user is untouched, and answers.
      expect(otherSession.socket.connected).toBe(true);
      expect(await otherSession.request('unsubscribe', { room: orgRoom(u.id) })).toEqual({ ok: true });
      expect((await refusal(b.url, u.accessToken)).data.code).toBe('INVALID_TOKEN');
    });

    it("a driver removed from the org leaves its trip's room on every node at once: no further events, no new subscribe", async () => {
      const w = await newWorld(a.api);
      const trip = await activeTrip(a.api, w);
      const room = tripRoom(trip.id);
      const onA = await watch(a.url, w.driver.accessToken);
      const onB = await watch(b.url, w.driver.accessToken);
      const control = await watch(b.url, w.source.owner.accessToken);
      for (const s of [onA, onB, control]) expect(await s.request('subscribe', { room })).toEqual({ ok: true });
      const del = await a.api.delete(`/orgs/${w.source.id}/members/${w.driver.id}`, {
        token: w.source.owner.accessToken,
      });
      expect(del.status).toBe(204);
      for (const s of [onA, onB]) {
        await s.waitFor((x) => x.events.some((e) => e.event === 'room.revoked'), 'trip room revoked');
        expect(s.events.find((e) => e.event === 'room.revoked')).toMatchObject({
          room,
          error: { code: 'NOT_FOUND' },
        });
      }
      await moveTo(a.api, w, trip.id, 'ARRIVED');
      await control.waitFor((x) => x.inRoom(room, 'trip.status').length > 0, 'status in the trip room');
      for (const s of [onA, onB]) {
        // Asked after the event went out on every node: an event sent to this socket would have arrived before the answer.
        expect(await s.request('subscribe', { room })).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
        expect(s.events.filter((e) => e.event === 'trip.status')).toEqual([]);
      }
    });

    it('a demotion that keeps access leaves the subscription alone', async () => {
      const w = await newWorld(a.api);
      const admin = await newMember(a.api, w.source, 'ADMIN');
      const s = await watch(b.url, admin.accessToken);
      expect(await s.request('subscribe', { room: orgRoom(w.source.id) })).toEqual({ ok: true });
      const res = await a.api.patch(
        `/orgs/${w.source.id}/members/${admin.id}`,
        { role: 'STAFF' },
        { token: w.source.owner.accessToken },
      );
      expect(res.status).toBe(200);
      // A later event in the room still arrives, and nothing was revoked.
      const trip = await activeTrip(a.api, w);
      await s.waitFor((x) => x.inRoom(orgRoom(w.source.id), 'trip.status').length > 0, 'status in org room', 10_000);
      expect(trip.id).toBeTruthy();
      expect(s.events.some((e) => e.event === 'room.revoked')).toBe(false);
    });
  });

  describe('events', () => {
    it('trip.location, trip.status and trip.event carry room and a per-room seq increasing by one', async () => {
      const { w, tripId } = await liveTrip();
      const room = tripRoom(tripId);
      const s = await watch(t.url, w.destination.owner.accessToken);
      expect(await s.request('subscribe', { room })).toEqual({ ok: true });
      const orgWatch = await watch(t.url, w.source.owner.accessToken);
      expect(await orgWatch.request('subscribe', { room: orgRoom(w.source.id) })).toEqual({ ok: true });
      await ping(t.url, w, tripId, 2);
      await s.waitFor((x) => points(x, room).length === 2, 'two points');
      await moveTo(t.api, w, tripId, 'ARRIVED');
      await s.waitFor((x) => x.inRoom(room, 'trip.status').length === 1, 'status');
      const loc = s.inRoom(room, 'trip.location')[0];
      expect(loc).toEqual({
        event: 'trip.location',
        room,
        seq: expect.any(Number),
        tripId,
        points: [1, 2].map(() => ({
          lat: expect.any(Number),
          lng: 75.8,
          speed: 5,
          heading: 0,
          recordedAt: expect.any(String),
        })),
      });
      expect(s.inRoom(room, 'trip.status')[0]).toEqual({
        event: 'trip.status',
        room,
        seq: expect.any(Number),
        tripId,
        status: 'ARRIVED',
        at: expect.any(String),
      });
      const all = seqs(s, room);
      expect(all).toEqual(all.map((_, i) => all[0] + i));
      await orgWatch.waitFor((x) => x.inRoom(orgRoom(w.source.id), 'trip.status').length === 1, 'org status');
      expect(orgWatch.inRoom(orgRoom(w.source.id))[0]).toMatchObject({
        tripId,
        status: 'ARRIVED',
        seq: expect.any(Number),
      });

      // trip.event: appended by features (QR scans) through TripsService.
      const { TripsService } = await import('../../src/modules/trips/trips.service');
      await t.app.get(TripsService).appendEvent(tripId, { type: 'SCAN', at: new Date(), data: { action: 'LOAD' } });
      await s.waitFor((x) => x.inRoom(room, 'trip.event').length === 1, 'trip.event');
      expect(s.inRoom(room, 'trip.event')[0]).toEqual({
        event: 'trip.event',
        room,
        seq: expect.any(Number),
        tripId,
        type: 'SCAN',
        at: expect.any(String),
        data: { action: 'LOAD' },
      });
    });

    it('coalesces a burst of trip.location into at most one event per window, dropping no point', async () => {
      const { w, tripId } = await liveTrip();
      const room = tripRoom(tripId);
      const s = await watch(t.url, w.source.owner.accessToken);
      expect(await s.request('subscribe', { room })).toEqual({ ok: true });
      const publisher = t.app.get(RealtimePublisher);
      for (let i = 0; i < 50; i++)
        publisher.publish(room, 'trip.location', {
          tripId,
          points: [{ lat: i, lng: 0, speed: null, heading: null, recordedAt: `p${i}` }],
        });
      await s.waitFor((x) => points(x, room).length === 50, 'fifty points');
      // The first point goes out at once; the other 49 arrived within one window and form one event.
      expect(s.inRoom(room, 'trip.location').map((e) => (e.points as unknown[]).length)).toEqual([1, 49]);
      expect(points(s, room).map((p) => p.recordedAt)).toEqual(Array.from({ length: 50 }, (_, i) => `p${i}`));
    });
  });

  describe('two nodes on one Redis', () => {
    it('a ping posted to node A reaches a watcher on node B, and both nodes share one sequence', async () => {
      const { w, tripId } = await liveTrip();
      const room = tripRoom(tripId);
      const onA = await watch(t.url, w.source.owner.accessToken);
      const onB = await watch(nodeB.url, w.destination.owner.accessToken, ['polling']);
      expect(await onA.request('subscribe', { room })).toEqual({ ok: true });
      expect(await onB.request('subscribe', { room })).toEqual({ ok: true });
      await ping(t.url, w, tripId);
      await onB.waitFor((x) => points(x, room).length === 1, 'the ping on node B');
      // Alternate nodes; each request waits for the previous one, so every event has its own seq.
      for (let i = 0; i < 6; i++) await ping(i % 2 ? t.url : nodeB.url, w, tripId);
      for (const s of [onA, onB]) await s.waitFor((x) => points(x, room).length === 7, 'seven points');
      const a = seqs(onA, room);
      expect(a).toEqual(a.map((_, i) => a[0] + i));
      expect(seqs(onB, room)).toEqual(a);
      expect(onB.inRoom(room)).toEqual(onA.inRoom(room));
    });

    it('a watcher reconnecting with sinceSeq gets exactly the missed events, then live ones, while pings keep flowing', async () => {
      const { w, tripId } = await liveTrip();
      const room = tripRoom(tripId);
      const control = await watch(t.url, w.source.owner.accessToken);
      expect(await control.request('subscribe', { room })).toEqual({ ok: true });
      let flowing = true;
      let posted = 0;
      const pinger = (async () => {
        while (flowing) {
          await ping(posted % 3 ? t.url : nodeB.url, w, tripId);
          posted += 1;
        }
      })();
      try {
        const first = await watch(nodeB.url, w.destination.owner.accessToken);
        expect(await first.request('subscribe', { room })).toEqual({ ok: true });
        await first.waitFor((x) => x.inRoom(room).length >= 3, 'three events before the drop');
        first.close();
        const lastSeen = Math.max(...seqs(first, room));
        const before = seqs(first, room);
        await control.waitFor((x) => seqs(x, room).some((s) => s > lastSeen + 3), 'events while away');
        const again = await watch(nodeB.url, w.destination.owner.accessToken);
        const ack = await again.request('subscribe', { room, sinceSeq: lastSeen });
        expect(ack).toMatchObject({ ok: true, replayed: expect.any(Number) });
        expect(ack.truncated).toBeUndefined();
        expect(ack.replayed).toBeGreaterThanOrEqual(3);
        const target = Math.max(...seqs(again, room)) + 3;
        await again.waitFor((x) => seqs(x, room).some((s) => s >= target), 'live events after the replay');
        flowing = false;
        await pinger;
        // The last events may still be on their way when the pinger stops (crossing Redis from the other
        // node, or a merged trip.location at the end of its window): wait until both watchers hold the same
        // newest seq and it has not moved for a while. A seq that never reaches one of them times the test out.
        let finalSeq = 0;
        for (let stable = 0; stable < 2;) {
          await new Promise((r) => setTimeout(r, 300));
          const newest = Math.max(...seqs(control, room));
          stable = newest === finalSeq && Math.max(...seqs(again, room)) === newest ? stable + 1 : 0;
          finalSeq = newest;
        }
        const got = seqs(again, room);
        expect(got).toEqual(Array.from({ length: finalSeq - lastSeen }, (_, i) => lastSeen + 1 + i));
        // The same events, byte for byte, as the watcher that never left.
        expect(again.inRoom(room)).toEqual(control.inRoom(room).filter((e) => e.seq! > lastSeen));
        expect(before.length + got.length).toBe(control.inRoom(room).filter((e) => e.seq! >= before[0]).length);
      } finally {
        flowing = false;
        await pinger.catch(() => undefined);
      }
    });

    it('a replay from before what the log keeps says truncated', async () => {
      const { w, tripId } = await liveTrip();
      const room = tripRoom(tripId);
      // A node whose log keeps 10 events: seq 2 is long trimmed after 61 events.
      const s = await watch(t.url, w.source.owner.accessToken);
      const short = await startAnotherNode(t, { realtimeLogMaxEvents: 10 });
      try {
        for (let i = 0; i < 60; i++)
          short.app
            .get(RealtimePublisher)
            .publish(room, 'trip.status', { tripId, status: 'IN_TRANSIT', at: String(i) });
        const b = await connectWatcher(short.url, w.source.owner.accessToken);
        open.push(b);
        expect(await b.request('subscribe', { room })).toEqual({ ok: true });
        short.app.get(RealtimePublisher).publish(room, 'trip.status', { tripId, status: 'IN_TRANSIT', at: 'last' });
        await b.waitFor((x) => x.inRoom(room).length === 1, 'the last event');
        const ack = await s.request('subscribe', { room, sinceSeq: 1 });
        expect(ack).toMatchObject({ ok: true, truncated: true });
        await s.waitFor((x) => x.inRoom(room).some((e) => e.at === 'last'), 'replayed tail');
        // A complete replay from a recent seq is not truncated.
        const s2 = await watch(t.url, w.source.owner.accessToken);
        const last = b.inRoom(room)[0].seq!;
        expect(await s2.request('subscribe', { room, sinceSeq: last - 3 })).toEqual({
          ok: true,
          replayed: 3,
          lastSeq: last,
        });
        expect(seqs(s2, room)).toEqual([last - 2, last - 1, last]);
      } finally {
        await short.close();
      }
    });
  });
});
