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
