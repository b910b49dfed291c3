import { DomainError } from '../../common/errors/domain-error';
import { DEFAULT_TRIP_FIELDS, parseTripFields, projectTrip, tripSelect } from './trip-fields';

describe('trip field selection', () => {
  it('defaults to the trip itself, without relations', () => {
    expect(parseTripFields(undefined)).toEqual(DEFAULT_TRIP_FIELDS);
    expect(parseTripFields('')).toEqual(DEFAULT_TRIP_FIELDS);
  });

  it('turns dotted paths into one nested select', () => {
    const fields = parseTripFields('id,truck.number,driver.name,sourceOrg.name,latestLocation');
    expect(tripSelect(fields)).toEqual({
      id: true,
      createdAt: true,
      truck: { select: { number: true } },
      driver: { select: { user: { select: { name: true } } } },
      sourceOrg: { select: { name: true } },
      latestLat: true,
      latestLng: true,
      latestSpeed: true,
      latestHeading: true,
      latestRecordedAt: true,
    });
  });

  it('merges paths into the same relation', () => {
    const select = tripSelect(parseTripFields('driver.name,driver.phone,driver.id'));
    expect(select.driver).toEqual({ select: { user: { select: { name: true, phone: true } }, id: true } });
  });

  it('expands a bare relation to all its fields', () => {
    expect(parseTripFields('sourceOrg')).toEqual(['sourceOrg.id', 'sourceOrg.name', 'sourceOrg.city']);
  });

  it('rejects unknown fields, listing all of them', () => {
    try {
      parseTripFields('id,secret,truck.owner,driver.user.passwordHash');
      throw new Error('expected a failure');
    } catch (err) {
      expect(err).toBeInstanceOf(DomainError);
      const e = err as DomainError;
      expect(e.code).toBe('VALIDATION_FAILED');
      expect(e.details?.map((d) => d.field)).toEqual(['secret', 'truck.owner', 'driver.user.passwordHash']);
    }
  });

  it('projects a row into exactly the requested shape', () => {
    const row = {
      id: 't1',
      createdAt: new Date(0),
      latestRecordedAt: null,
      truck: { number: 'RJ14 AB 1234' },
      driver: { user: { name: 'Ramesh' } },
    };
    expect(projectTrip(row, ['id', 'truck.number', 'driver.name', 'latestLocation'])).toEqual({
      id: 't1',
      truck: { number: 'RJ14 AB 1234' },
      driver: { name: 'Ramesh' },
      latestLocation: null,
    });
  });
});
