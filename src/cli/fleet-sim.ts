import { alongPolyline, CITIES, City, haversineM, LatLng, routePolyline } from './india-routes';

/** A small deterministic random source (mulberry32), so a demo run can be replayed with `--seed`. */
export function randomSource(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** City pairs a truck can drive in a demo: 80 to 400 km apart, in a fixed order. */
export function demoRoutes(): Array<[City, City]> {
  const pairs: Array<[City, City, number]> = [];
  for (const a of CITIES) {
    for (const b of CITIES) {
      const d = haversineM(a, b);
      if (a !== b && d >= 80_000 && d <= 400_000) pairs.push([a, b, d]);
    }
  }
  // Interleave short and long ones, the same order on every run.
  pairs.sort((x, y) => x[0].name.localeCompare(y[0].name) || x[2] - y[2]);
  return pairs.map(([a, b]) => [a, b]);
}

export interface Fix extends LatLng {
  /** m/s */
  speed: number;
  heading: number;
  accuracy: number;
}

/**
 * One truck driving a road-like route: cruise speed with some variation,
 * now and then a stop (a dhaba, a toll plaza), GPS noise of a few metres.
 * `speedup` multiplies the distance covered per second (the fixes carry real
 * times, so the speed they report is the multiplied one).
 */
export class TruckMotion {
  readonly points: LatLng[];
  readonly lengthM: number;
  private travelled: number;
  private stoppedFor = 0;
  private speed = 0;

  constructor(
    from: LatLng,
    to: LatLng,
    bend: number,
    private readonly cruiseMps: number,
    private readonly speedup: number,
    private readonly random: () => number,
    /** Where on the route the truck starts, as a share of its length (a demo starts trucks mid-way). */
    startShare = 0,
  ) {
    const route = routePolyline(from, to, bend, 400);
    this.points = route.points;
    this.lengthM = route.lengthM;
    this.travelled = Math.max(0, Math.min(1, startShare)) * this.lengthM;
  }

  get share(): number {
    return this.travelled / this.lengthM;
  }

  get arrived(): boolean {
    return this.travelled >= this.lengthM;
  }

  get remainingM(): number {
    return Math.max(0, this.lengthM - this.travelled);
  }

  /** Moves `dtSec` seconds on and returns the fix there. */
  advance(dtSec: number): Fix {
    if (this.stoppedFor > 0) {
      this.stoppedFor -= dtSec;
      this.speed = 0;
    } else if (this.random() < 0.002 * dtSec) {
      this.stoppedFor = 10 + this.random() * 40; // a short stop, in real seconds
      this.speed = 0;
    } else {
      const target = this.cruiseMps * (0.8 + this.random() * 0.4);
      this.speed += (target - this.speed) * Math.min(1, dtSec / 5);
      this.travelled = Math.min(this.lengthM, this.travelled + this.speed * this.speedup * dtSec);
    }
    return this.fix();
  }

  /** The fix where the truck is now, without moving. */
  fix(): Fix {
    const at = alongPolyline(this.points, this.travelled);
    const noise = () => (this.random() - 0.5) * 0.00008; // about ±4 m
    return {
      lat: at.lat + noise(),
      lng: at.lng + noise(),
      speed: Math.round(this.speed * this.speedup * 10) / 10,
      heading: Math.round(at.heading),
      accuracy: Math.round(4 + this.random() * 8),
    };
  }
}

/** The largest speedup whose fixes stay under the server's implied-speed filter, with a margin. */
export function maxSpeedup(cruiseMps: number, maxImpliedMps: number): number {
  return Math.max(1, Math.floor(((maxImpliedMps * 0.8) / (cruiseMps * 1.2)) * 10) / 10);
}
