import { wsSlowConsumerDisconnects } from '../../src/infra/observability/metrics';
import { RealtimePublisher, tripRoom } from '../../src/infra/realtime/realtime-publisher';
import { until } from '../support/net';
import { connectWatcher, Watcher } from '../support/socket-client';
import { startTestApp, TestApp } from '../support/test-app';
import { activeTrip, newWorld } from '../support/trips-fixtures';

/** A long-polling client's transport, as far as pausing it goes (engine.io-client's Polling). */
interface PausableTransport {
  name: string;
  pause(onPause: () => void): void;
}

describe('realtime: a client that stops reading', () => {
  const LIMIT = 20;
  let t: TestApp;
  const open: Watcher[] = [];
  beforeAll(async () => {
    t = await startTestApp({ realtimeMaxBufferedEvents: LIMIT });
  });
  afterAll(async () => {
    for (const w of open) w.close();
    await t?.close();
  });

  const closedSoFar = async () => (await wsSlowConsumerDisconnects.get()).values[0]?.value ?? 0;

  it('is disconnected once more events wait for it than the limit; the others get every event, and a replay the rest', async () => {
    const w = await newWorld(t.api);
    const trip = await activeTrip(t.api, w);
    const room = tripRoom(trip.id);
    const token = w.source.owner.accessToken;
    const publisher = t.app.get(RealtimePublisher);
    const publish = (i: number) =>
      publisher.publish(room, 'trip.event', { tripId: trip.id, type: 'STOPPED', at: `e${i}`, data: { i } });

    const slow = await connectWatcher(t.url, token, { transports: ['polling'] });
    const healthy = await connectWatcher(t.url, token);
    open.push(slow, healthy);
    expect(await slow.request('subscribe', { room })).toEqual({ ok: true });
    expect(await healthy.request('subscribe', { room })).toEqual({ ok: true });
    const before = await closedSoFar();

    // The slow client stops polling once its poll under way comes back (with the first event).
    const transport = slow.socket.io.engine.transport as unknown as PausableTransport;
    expect(transport.name).toBe('polling');
    const paused = new Promise<void>((resolve) => transport.pause(resolve));
    publish(0);
    await paused;
    expect(slow.inRoom(room).map((e) => e.at)).toEqual(['e0']);

    // Within the limit it is kept: a client may be briefly late.
    for (let i = 1; i <= LIMIT / 2; i++) publish(i);
    await healthy.waitFor((x) => x.inRoom(room).length === LIMIT / 2 + 1, 'the first events');
    await new Promise((r) => setTimeout(r, 1500));
    expect(await closedSoFar()).toBe(before);

    // Past it, the server closes the slow client's connection at its next check (once a second).
    const total = 3 * LIMIT;
    for (let i = LIMIT / 2 + 1; i < total; i++) publish(i);
    await until('the slow client to be closed', async () => (await closedSoFar()) === before + 1, 5000);

    // The healthy client got every event, in order, and is still connected.
    await healthy.waitFor((x) => x.inRoom(room).length === total, 'every event');
    const seqs = healthy.inRoom(room).map((e) => e.seq!);
    expect(seqs).toEqual(Array.from({ length: total }, (_, i) => seqs[0] + i));
    expect(healthy.inRoom(room).map((e) => e.at)).toEqual(Array.from({ length: total }, (_, i) => `e${i}`));
    expect(healthy.socket.connected).toBe(true);

    // What the slow client missed, it gets by reconnecting with the last seq it holds.
    const again = await connectWatcher(t.url, token);
    open.push(again);
    const lastSeen = slow.inRoom(room).at(-1)!.seq!;
    expect(await again.request('subscribe', { room, sinceSeq: lastSeen })).toMatchObject({
      ok: true,
      replayed: total - 1,
      lastSeq: seqs[total - 1],
    });
    expect(again.inRoom(room).map((e) => e.at)).toEqual(Array.from({ length: total - 1 }, (_, i) => `e${i + 1}`));
    // The paused client would only learn of it at its next poll; its engine is closed here, without one.
    slow.socket.io.engine.close();
  });
});
