import { AppConfig } from '../../infra/config/config';
import { PingRow } from './ping-filters';
import { PingWriter } from './ping-writer';
import { PingKey, TrackingRepository } from './tracking.repository';

const trip = 'trip-1';
const row = (s: number, tripId = trip): PingRow => ({
  tripId,
  recordedAt: new Date(Date.UTC(2026, 0, 1, 10, 0, s)),
  lat: 1,
  lng: 2,
  accuracy: null,
  speed: null,
  heading: null,
  altitude: null,
  batchId: null,
});

/** An in-memory stand-in for the table's unique key, to test the writer's own accounting. */
function writerWith(stored: Set<string>, opts: Partial<AppConfig> = {}) {
  const writer = new PingWriter({} as TrackingRepository, { pingWriterWindowMs: 2, pingWriterMaxRows: 1000, ...opts } as AppConfig);
  const statements: number[] = [];
  writer.insert = async (rows) => {
    statements.push(rows.length);
    const out: PingKey[] = [];
    for (const r of rows) {
      const key = `${r.tripId}|${r.recordedAt.getTime()}`;
      if (!stored.has(key)) {
        stored.add(key);
        out.push({ tripId: r.tripId, ms: r.recordedAt.getTime() });
      }
    }
    return out;
  };
  return { writer, statements };
}

describe('PingWriter', () => {
  it('writes concurrent requests in one statement, each with its own exact counts', async () => {
    const stored = new Set([`${trip}|${row(1).recordedAt.getTime()}`]);
    const { writer, statements } = writerWith(stored);
    const [a, b, c] = await Promise.all([
      writer.write([row(1), row(2), row(3)]),
      writer.write([row(3), row(4), row(4)]),
      writer.write([row(5, 'trip-2')]),
    ]);
    expect(statements).toEqual([5]);
    expect(a).toEqual({ accepted: 2, duplicates: 1 });
    expect(b).toEqual({ accepted: 1, duplicates: 2 });
    expect(c).toEqual({ accepted: 1, duplicates: 0 });
  });

  it('splits at the row limit without splitting a request', async () => {
    const { writer, statements } = writerWith(new Set(), { pingWriterMaxRows: 4 });
    const results = await Promise.all([writer.write([row(1), row(2), row(3)]), writer.write([row(4), row(5)]), writer.write([row(6)])]);
    expect(statements).toEqual([3, 3]);
    expect(results.map((r) => r.accepted)).toEqual([3, 2, 1]);
  });

  it('fails every request of a failed flush and only those', async () => {
    const { writer } = writerWith(new Set());
    let fail = true;
    const insert = writer.insert;
    writer.insert = async (rows) => {
      if (fail) {
        fail = false;
        throw new Error('connection lost');
      }
      return insert(rows);
    };
    const first = await Promise.allSettled([writer.write([row(1)]), writer.write([row(2)])]);
    expect(first.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect((first[0] as PromiseRejectedResult).reason.code).toBe('SERVICE_UNAVAILABLE');
    await expect(writer.write([row(1)])).resolves.toEqual({ accepted: 1, duplicates: 0 });
  });

  it('answers only after the after-flush work, and drains on shutdown', async () => {
    const { writer } = writerWith(new Set(), { pingWriterWindowMs: 50 });
    const order: string[] = [];
    writer.onFlush(async (byTrip) => {
      order.push(`flushed ${[...byTrip.values()].flat().length}`);
    });
    const pending = writer.write([row(1), row(2)]).then(() => order.push('answered'));
    await writer.onApplicationShutdown();
    await pending;
    expect(order).toEqual(['flushed 2', 'answered']);
  });
});
