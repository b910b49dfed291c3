import { detect, readDetectorState, TrackFix } from './detectors';
import { distanceM, pathLengthM } from './geo';

const cfg = { arrivalRadiusM: 300, overspeedLimitMps: 25, stoppedMinutes: 10 };
const end = { lat: 28.6139, lng: 77.209 };
const fix = (min: number, lat: number, lng = 77.0, speed: number | null = null): TrackFix => ({
  lat,
  lng,
  speed,
  recordedAt: new Date(Date.UTC(2026, 0, 1, 10, min)),
});

describe('geo', () => {
  it('measures great-circle distances', () => {
    expect(distanceM({ lat: 26.9124, lng: 75.7873 }, end) / 1000).toBeCloseTo(235.3, 0);
    expect(
      pathLengthM([
        { lat: 0, lng: 1 },
        { lat: 0, lng: 2 },
        { lat: 0, lng: 3 },
      ]) / 1000,
    ).toBeCloseTo(222.39, 1);
  });
});

describe('detect', () => {
  const base = { status: 'IN_TRANSIT', end, previous: null, state: readDetectorState(null) };

  it('reports arrival within the radius of the end point, once', () => {
    const r = detect({ ...base, points: [fix(0, 28.5, 77.2), fix(1, 28.6125, 77.209), fix(2, 28.6139, 77.209)] }, cfg);
    expect(r.arrive).toBe(true);
    expect(r.events.filter((e) => e.type === 'ARRIVAL')).toHaveLength(1);
    expect(r.events[0].at.toISOString()).toBe('2026-01-01T10:01:00.000Z');
  });

  it('does not report arrival unless IN_TRANSIT', () => {
    expect(detect({ ...base, status: 'LOADING', points: [fix(0, 28.6139, 77.209)] }, cfg).arrive).toBe(false);
  });

  it('reports an overspeed episode once, from reported or implied speed', () => {
    const r = detect(
      {
        ...base,
        points: [
          fix(0, 27, 77, 20),
          fix(1, 27.01, 77, 30),
          fix(2, 27.02, 77, 31),
          fix(3, 27.03, 77, 10),
          fix(4, 27.04, 77, 26),
        ],
      },
      cfg,
    );
    expect(r.events.filter((e) => e.type === 'OVERSPEED').map((e) => e.at.getUTCMinutes())).toEqual([1, 4]);
    // 0.1 degree (11 km) in one minute, no reported speed.
    const implied = detect({ ...base, points: [fix(0, 27, 77), fix(1, 27.1, 77)] }, cfg);
    expect(implied.events.map((e) => e.type)).toEqual(['OVERSPEED']);
    expect(implied.state.overspeeding).toBe(true);
  });

  it('reports a stop longer than the configured time while IN_TRANSIT, once, and carries the state across flushes', () => {
    const first = detect({ ...base, points: [fix(0, 27, 77, 0), fix(5, 27.0001, 77, 0)] }, cfg);
    expect(first.events).toEqual([]);
    const second = detect(
      {
        ...base,
        previous: fix(5, 27.0001, 77, 0),
        state: first.state,
        points: [fix(9, 27, 77, 0), fix(11, 27, 77.0002, 0), fix(20, 27, 77, 0)],
      },
      cfg,
    );
    expect(second.events.map((e) => [e.type, e.at.getUTCMinutes()])).toEqual([['STOPPED', 11]]);
    expect(second.events[0].data.since).toBe('2026-01-01T10:00:00.000Z');
    // Moving on starts a new episode.
    const third = detect({ ...base, state: second.state, points: [fix(21, 27.1, 77, 10)] }, cfg);
    expect(third.state.stop?.reported).toBe(false);
    const loading = detect({ ...base, status: 'LOADING', points: [fix(0, 27, 77, 0), fix(30, 27, 77, 0)] }, cfg);
    expect(loading.events).toEqual([]);
  });
});
