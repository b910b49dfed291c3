import { demoRoutes, maxSpeedup, randomSource, TruckMotion } from './fleet-sim';
import { haversineM } from './india-routes';

describe('fleet simulation', () => {
  it('routes are distinct city pairs 80 to 400 km apart, in the same order every time', () => {
    const routes = demoRoutes();
    expect(routes.length).toBeGreaterThan(10);
    for (const [a, b] of routes) {
      expect(a.name).not.toBe(b.name);
      const d = haversineM(a, b);
      expect(d).toBeGreaterThanOrEqual(80_000);
      expect(d).toBeLessThanOrEqual(400_000);
    }
    expect(demoRoutes().map(([a, b]) => `${a.name}-${b.name}`)).toEqual(routes.map(([a, b]) => `${a.name}-${b.name}`));
  });

  it('a truck drives from its start to its end, never faster than speedup x 1.2 x cruise between fixes', () => {
    const [from, to] = demoRoutes()[0];
    const truck = new TruckMotion(from, to, 0.08, 15, 3, randomSource(7));
    let prev = truck.fix();
    expect(haversineM(prev, from)).toBeLessThan(50);
    let steps = 0;
    while (!truck.arrived && steps < 100_000) {
      const next = truck.advance(1);
      // Straight-line distance between fixes (plus their few metres of noise) is at most the distance driven.
      expect(haversineM(prev, next)).toBeLessThanOrEqual(15 * 1.2 * 3 + 10);
      prev = next;
      steps += 1;
    }
    expect(truck.arrived).toBe(true);
    expect(haversineM(prev, to)).toBeLessThan(50);
    // The road is longer than the straight line, but not absurdly.
    expect(truck.lengthM).toBeGreaterThan(haversineM(from, to));
    expect(truck.lengthM).toBeLessThan(haversineM(from, to) * 1.5);
  });

  it('starts mid-way when asked, and keeps speedups under the implied-speed filter', () => {
    const [from, to] = demoRoutes()[3];
    const truck = new TruckMotion(from, to, -0.05, 15, 1, randomSource(1), 0.5);
    expect(truck.share).toBeCloseTo(0.5);
    expect(maxSpeedup(15, 70)).toBeLessThanOrEqual((70 * 0.8) / (15 * 1.2));
    expect(maxSpeedup(15, 70) * 15 * 1.2).toBeLessThan(70);
    expect(maxSpeedup(100, 70)).toBe(1);
  });
});
