import { LocalWindowCounter } from './local-window-counter';

describe('LocalWindowCounter', () => {
  let now = 1_000_000;
  const clock = () => now;

  it('counts hits in a window and starts over once it ends', () => {
    const c = new LocalWindowCounter(10, clock);
    expect(c.hit('a', 60_000)).toEqual({ current: 1, ttl: 60_000 });
    now += 20_000;
    expect(c.hit('a', 60_000)).toEqual({ current: 2, ttl: 40_000 });
    expect(c.hit('b', 60_000)).toEqual({ current: 1, ttl: 60_000 });
    now += 40_000;
    expect(c.hit('a', 60_000)).toEqual({ current: 1, ttl: 60_000 });
  });

  it('keeps at most maxKeys counters, dropping the oldest window first', () => {
    const c = new LocalWindowCounter(2, clock);
    c.hit('old', 60_000);
    now += 1;
    c.hit('mid', 60_000);
    c.hit('mid', 60_000);
    now += 1;
    c.hit('new', 60_000);
    expect(c.size).toBe(2);
    expect(c.hit('mid', 60_000).current).toBe(3);
    expect(c.hit('old', 60_000).current).toBe(1); // was dropped
  });
});
