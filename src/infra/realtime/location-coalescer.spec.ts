import { LocationCoalescer } from './location-coalescer';

describe('LocationCoalescer', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('sends the first point at once, merges a burst into one event per window, and drops nothing', () => {
    let now = 1_000_000;
    const sent: { room: string; points: number[] }[] = [];
    const c = new LocationCoalescer(
      100,
      (room, p) => sent.push({ room, points: p.points as number[] }),
      () => now,
    );
    c.offer('trip:a', { tripId: 'a', points: [1] });
    expect(sent).toEqual([{ room: 'trip:a', points: [1] }]);
    for (let i = 2; i <= 5; i++) {
      now += 10;
      c.offer('trip:a', { tripId: 'a', points: [i] });
    }
    c.offer('trip:b', { tripId: 'b', points: [9] });
    expect(sent).toHaveLength(2);
    now += 60;
    jest.advanceTimersByTime(100);
    expect(sent[2]).toEqual({ room: 'trip:a', points: [2, 3, 4, 5] });
    // A quiet spell: the next point goes out at once.
    now += 500;
    c.offer('trip:a', { tripId: 'a', points: [6] });
    expect(sent[3]).toEqual({ room: 'trip:a', points: [6] });
    c.close();
  });
});

describe('LocationCoalescer: points per event', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  const point = (s: number) => ({ recordedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString(), s });

  it('an event carries at most maxPoints, the newest, and counts the others in dropped', () => {
    let now = 1_000_000;
    const sent: { points: { s: number }[]; dropped?: number }[] = [];
    const c = new LocationCoalescer(
      100,
      (_room, p) => sent.push({ points: p.points as { s: number }[], dropped: p.dropped as number | undefined }),
      () => now,
      3,
    );
    // One flush larger than the cap goes out at once, capped.
    c.offer('trip:a', { tripId: 'a', points: [1, 2, 3, 4, 5].map(point) });
    expect(sent[0].points.map((p) => p.s)).toEqual([3, 4, 5]);
    expect(sent[0].dropped).toBe(2);
    // A window merging several flushes, one of them older (a backlog): the newest three by time are kept.
    now += 10;
    c.offer('trip:a', { tripId: 'a', points: [10, 11].map(point) });
    c.offer('trip:a', { tripId: 'a', points: [6, 7].map(point) });
    c.offer('trip:a', { tripId: 'a', points: [12, 13].map(point) });
    now += 100;
    jest.advanceTimersByTime(100);
    expect(sent[1].points.map((p) => p.s)).toEqual([11, 12, 13]);
    expect(sent[1].dropped).toBe(3);
    // Within the cap: no dropped field.
    now += 500;
    c.offer('trip:a', { tripId: 'a', points: [20, 21].map(point) });
    expect(sent[2]).toEqual({ points: [20, 21].map(point), dropped: undefined });
    c.close();
  });
});
