import { KNOTS_TO_MPS, osmandToken, parseOsmAnd } from './osmand';

const now = new Date('2026-01-01T12:00:00Z');

describe('parseOsmAnd', () => {
  it('reads the query string of Traccar Client / OsmAnd (speed in knots)', () => {
    const r = parseOsmAnd(
      {
        id: '123456',
        timestamp: '1767268800',
        lat: '26.9124',
        lon: '75.7873',
        speed: '10.0',
        bearing: '90.5',
        altitude: '431.0',
        accuracy: '12.0',
        batt: '89.0',
      },
      undefined,
      now,
    );
    expect(r).toEqual({
      fix: {
        latitude: 26.9124,
        longitude: 75.7873,
        timestamp: 1767268800000,
        speed: 10 * KNOTS_TO_MPS,
        heading: 90.5,
        altitude: 431,
        accuracy: 12,
      },
    });
  });

  it('reads deviceid, location=lat,lon, heading, ms and ISO timestamps, a form body', () => {
    const a = parseOsmAnd(
      {},
      { deviceid: 'abc', location: '26.9,75.8', heading: '45', timestamp: '1767268800123' },
      now,
    );
    expect(a).toMatchObject({
      fix: { latitude: 26.9, longitude: 75.8, heading: 45, timestamp: 1767268800123, speed: null },
    });
    const b = parseOsmAnd({ id: 'abc', lat: '1', lon: '2', timestamp: '2026-01-01T11:00:00Z' }, undefined, now);
    expect(b).toMatchObject({ fix: { timestamp: Date.parse('2026-01-01T11:00:00Z') } });
    const c = parseOsmAnd({ id: 'abc', lat: '1', lon: '2' }, undefined, now);
    expect(c).toMatchObject({ fix: { timestamp: now.getTime() } });
  });

  it('reads the JSON body of newer Traccar Client versions (speed in m/s)', () => {
    const r = parseOsmAnd(
      {},
      {
        location: {
          timestamp: '2026-01-01T11:59:00.000Z',
          coords: { latitude: 26.9, longitude: 75.8, accuracy: 5, speed: 12.5, heading: -1, altitude: 400 },
          is_moving: true,
          odometer: 0,
          event: 'motionchange',
          battery: { level: 0.8, is_charging: false },
          activity: { type: 'in_vehicle' },
        },
        device_id: 'traccar-1',
      },
      now,
    );
    expect(r).toEqual({
      fix: {
        latitude: 26.9,
        longitude: 75.8,
        timestamp: Date.parse('2026-01-01T11:59:00Z'),
        speed: 12.5,
        heading: null,
        altitude: 400,
        accuracy: 5,
      },
    });
  });

  it('names what is missing', () => {
    const r = parseOsmAnd({ lat: 'x' }, undefined, now);
    expect('errors' in r && r.errors.map((e) => e.path)).toEqual(['lat']);
    const t = parseOsmAnd({ id: '1', lat: '1', lon: '2', timestamp: 'whenever' }, undefined, now);
    expect('errors' in t && t.errors.map((e) => e.path)).toEqual(['timestamp']);
  });
});

describe('osmandToken', () => {
  it('reads the tracker token where each app puts its device identifier', () => {
    expect(osmandToken({ id: 'tok-a', lat: '1' }, undefined)).toBe('tok-a');
    expect(osmandToken({}, { deviceid: 'tok-b' })).toBe('tok-b');
    expect(osmandToken({}, { device_id: 'tok-c', location: { coords: {} } })).toBe('tok-c');
    expect(osmandToken({ id: ' ' }, undefined)).toBeUndefined();
    expect(osmandToken({}, undefined)).toBeUndefined();
  });
});
