import { logSafeUrl } from './log-safe-url';

describe('logSafeUrl', () => {
  it('drops the query string of the OsmAnd path, whatever its spelling, and keeps others', () => {
    expect(logSafeUrl('/api/v1/tracking/osmand?id=secret&lat=1')).toBe('/api/v1/tracking/osmand?[redacted]');
    expect(logSafeUrl('/api/v1/tracking/osmand/?id=secret')).toBe('/api/v1/tracking/osmand/?[redacted]');
    expect(logSafeUrl('//api/v1/Tracking//OsmAnd?deviceid=secret')).toBe('//api/v1/Tracking//OsmAnd?[redacted]');
    expect(logSafeUrl('/api/v1/tracking/osmand')).toBe('/api/v1/tracking/osmand');
    expect(logSafeUrl('/api/v1/trips?fields=id')).toBe('/api/v1/trips?fields=id');
  });
});
