import { DatabaseError } from 'pg';
import { toErrorResponse } from '../../common/errors/error-response';
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
  const writer = new PingWriter(
    {} as TrackingRepository,
    { pingWriterWindowMs: 2, pingWriterMaxRows: 1000, ...opts } as AppConfig,
  );
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
    const results = await Promise.all([
      writer.write([row(1), row(2), row(3)]),
      writer.write([row(4), row(5)]),
      writer.write([row(6)]),
    ]);
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

  it('writes a refused flush again in halves: only the request that caused it fails, with a 400', async () => {
    const stored = new Set<string>();
    const { writer, statements } = writerWith(stored);
    const insert = writer.insert;
    writer.insert = async (rows) => {
      // As PostgreSQL does with a NUL in text: the whole statement is refused, nothing of it stored.
      if (rows.some((r) => r.batchId?.includes('\u0000'))) {
        statements.push(-rows.length);
        const err = new DatabaseError('invalid byte sequence for encoding "UTF8": 0x00', 0, 'error');
        err.code = '22021';
        err.severity = 'ERROR';
        throw err;
      }
      return insert(rows);
    };
    const poisoned = { ...row(3), batchId: 'b\u0000' };
    const settled = await Promise.allSettled([
      writer.write([row(1), row(2)]),
      writer.write([poisoned, row(4)]),
      writer.write([row(3), row(5)]), // the poisoned request's time: stored, since that request's rows are not
      writer.write([row(6, 'trip-2')]),
    ]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(settled.map((s) => (s.status === 'fulfilled' ? s.value : null))).toEqual([
      { accepted: 2, duplicates: 0 },
      null,
      { accepted: 2, duplicates: 0 },
      { accepted: 1, duplicates: 0 },
    ]);
    const failure = toErrorResponse((settled[1] as PromiseRejectedResult).reason, 'r');
    expect(failure.status).toBe(400);
    expect(failure.body.error.code).toBe('VALIDATION_FAILED');
    expect(JSON.stringify(failure.body)).not.toMatch(/UTF8|0x00/); // no database text in the answer
    // The 6 distinct rows refused; then the halves of two requests each; then the refused half's requests alone.
    expect(statements).toEqual([-6, -4, 3, 2, -2]);
    expect([...stored].length).toBe(5);
    expect(writer.stats.retriedApart).toBe(4 + 2);
  });

  it('answers right after the commit; the after-flush work follows, in commit order, and drains on shutdown', async () => {
    const { writer } = writerWith(new Set(), { pingWriterWindowMs: 0 });
    const order: string[] = [];
    const committed: number[] = [];
    writer.onCommit((byTrip) => committed.push([...byTrip.values()].flat().length));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    writer.onFlush(async (byTrip) => {
      const times = [...byTrip.values()].flat().map((r) => r.recordedAt.getUTCSeconds());
      order.push(`after-flush ${times.join(',')}`);
      if (order.length === 1) await gate; // the first round is slow
    });
    const first = await writer.write([row(1), row(2)]);
    order.push('answered first');
    expect(first).toEqual({ accepted: 2, duplicates: 0 });
    expect(committed).toEqual([2]);
    // Committed while the first round still runs: answered at once, its round waits (and merges with later ones).
    await writer.write([row(3)]);
    await writer.write([row(4, 'trip-2')]);
    order.push('answered later');
    const drained = writer.onApplicationShutdown().then(() => order.push('drained'));
    release();
    await drained;
    expect(order).toEqual(['after-flush 1,2', 'answered first', 'answered later', 'after-flush 3,4', 'drained']);
  });

  it('starts after-flush rounds at least the spacing apart: flushes in between share one round', async () => {
    const { writer, statements } = writerWith(new Set(), { pingWriterWindowMs: 0, pingAfterFlushSpacingMs: 500 });
    const rounds: { at: number; seconds: number[] }[] = [];
    writer.onFlush(async (byTrip) => {
      rounds.push({ at: Date.now(), seconds: [...byTrip.values()].flat().map((r) => r.recordedAt.getUTCSeconds()) });
    });
    await writer.write([row(1)]);
    await writer.write([row(2)]);
    await writer.write([row(3, 'trip-2')]);
    expect(statements).toEqual([1, 1, 1]); // three commits, each answered at once
    await writer.drain();
    // The first round at once, the other two flushes merged into one round after the spacing.
    expect(rounds.map((r) => r.seconds)).toEqual([[1], [2, 3]]);
    expect(rounds[1].at - rounds[0].at).toBeGreaterThanOrEqual(490);
  });

  it('runs several flushes at once when allowed, with exact counts for overlapping requests', async () => {
    const stored = new Set<string>();
    const { writer, statements } = writerWith(stored, { pingWriterWindowMs: 0, pingWriterMaxInFlight: 2 });
    const results = await Promise.all([
      writer.write([row(3), row(1), row(2)]),
      writer.write([row(2), row(3), row(4)]),
      writer.write([row(4), row(5)]),
    ]);
    expect(statements.length).toBeGreaterThanOrEqual(2);
    expect(results.reduce((n, r) => n + r.accepted, 0)).toBe(5);
    for (const [i, r] of results.entries()) expect(r.accepted + r.duplicates).toBe([3, 3, 2][i]);
    expect(stored.size).toBe(5);
  });
});
