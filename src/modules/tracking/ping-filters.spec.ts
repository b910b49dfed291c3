import { checkPoints, parseTimestamp, speedFilter } from './ping-filters';

const trip = '0190a000-0000-7000-8000-000000000001';
const now = new Date('2026-01-01T12:00:00.000Z');
const ctx = { tripId: trip, tripCreatedAt: new Date('2026-01-01T00:00:00.000Z'), now };

describe('parseTimestamp', () => {
  it.each([
    ['2026-01-01T10:00:00.123Z', '2026-01-01T10:00:00.123Z'],
    ['2026-01-01T15:30:00.5+05:30', '2026-01-01T10:00:00.500Z'],
    ['2026-01-01 10:00:00', '2026-01-01T10:00:00.000Z'],
    [1767261600, '2026-01-01T10:00:00.000Z'],
    [1767261600123, '2026-01-01T10:00:00.123Z'],
    ['1767261600', '2026-01-01T10:00:00.000Z'],
    ['1767261600123', '2026-01-01T10:00:00.123Z'],
    [1767261600.5, '2026-01-01T10:00:00.500Z'],
  ])('%p', (input, expected) => {
    expect(parseTimestamp(input)?.toISOString()).toBe(expected);
  });

  it.each([['yesterday'], [''], [null], [-5], [Number.NaN], [{}], ['2026-13-45T99:00:00Z']])('rejects %p', (input) => {
    expect(parseTimestamp(input)).toBeNull();
  });
});

describe('checkPoints', () => {
  const p = (over: Record<string, unknown>) => ({
    latitude: 26.9,
    longitude: 75.8,
    timestamp: '2026-01-01T11:00:00Z',
    ...over,
  });

  it('keeps good points and rejects each bad one with its reason', () => {
    const { candidates, rejected } = checkPoints(
      [
        p({}),
        p({ latitude: 91 }),
        p({ longitude: -180.5 }),
        p({ latitude: 0, longitude: 0 }),
        p({ timestamp: '2026-01-01T12:05:01Z' }),
        p({ timestamp: '2026-01-01T12:04:59Z' }),
        p({ timestamp: '2025-12-31T23:59:59Z' }),
        p({ timestamp: 'soon' }),
        p({ latitude: '26.9' }),
        p({ extra: true }),
        'garbage',
      ],
      ctx,
    );
    expect(candidates.map((c) => c.index)).toEqual([0, 5]);
    expect(rejected.map((r) => [r.index, r.reason])).toEqual([
      [1, 'OUT_OF_RANGE'],
      [2, 'OUT_OF_RANGE'],
      [3, 'NULL_ISLAND'],
      [4, 'FUTURE_TIMESTAMP'],
      [6, 'BEFORE_TRIP_START'],
      [7, 'INVALID'],
      [8, 'INVALID'],
      [9, 'INVALID'],
      [10, 'INVALID'],
    ]);
  });

  it('normalises optional fields', () => {
    const { candidates } = checkPoints([p({ speed: -1, heading: 370, accuracy: 5, batchId: 'b1' })], ctx);
    expect(candidates[0].row).toMatchObject({
      tripId: trip,
      speed: null,
      heading: 10,
      accuracy: 5,
      batchId: 'b1',
      altitude: null,
    });
  });
});

describe('speedFilter', () => {
  const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 11, 0, s));
  const cand = (index: number, s: number, lat: number) => ({
    index,
    row: {
      tripId: trip,
      recordedAt: at(s),
      lat,
      lng: 75.8,
      accuracy: null,
      speed: null,
      heading: null,
      altitude: null,
      batchId: null,
    },
  });
  // 0.001 degree of latitude is about 111 m.

  it('rejects a jump faster than the maximum from the previous fix, comparing the next point with the last kept one', () => {
    const { kept, rejected } = speedFilter([cand(0, 10, 26.9), cand(1, 20, 26.91), cand(2, 30, 26.9005)], [], 70);
    expect(rejected).toEqual([{ index: 1, reason: 'SPEED_JUMP' }]); // 1.1 km in 10 s
    expect(kept.map((k) => k.index)).toEqual([0, 2]);
  });

  it('compares with the neighbour in time, not the order of the batch, and with the stored track', () => {
    const stored = [
      { lat: 26.9, lng: 75.8, recordedAt: at(0) },
      { lat: 27.5, lng: 75.8, recordedAt: at(100) },
    ];
    // Index 0 comes after the stored jump point in time; index 1 lies between the two stored fixes.
    const { kept, rejected } = speedFilter([cand(0, 110, 27.5004), cand(1, 5, 26.9002)], stored, 70);
    expect(rejected).toEqual([]);
    expect(kept.map((k) => k.index)).toEqual([0, 1]);
    const far = speedFilter([cand(0, 5, 27.0)], stored, 70);
    expect(far.rejected).toEqual([{ index: 0, reason: 'SPEED_JUMP' }]);
  });

  it('does not treat a repeat of a stored instant as a jump', () => {
    const stored = [{ lat: 26.9, lng: 75.8, recordedAt: at(10) }];
    expect(speedFilter([cand(0, 10, 26.95)], stored, 70).rejected).toEqual([]);
  });
});
