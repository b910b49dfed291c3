import { canTransition, isActive, TRIP_STATUSES, TripStatus } from './trip-status';

const LEGAL = new Set([
  'PLANNED>LOADING',
  'LOADING>IN_TRANSIT',
  'IN_TRANSIT>ARRIVED',
  'ARRIVED>COMPLETED',
  'PLANNED>CANCELLED',
  'LOADING>CANCELLED',
  'IN_TRANSIT>CANCELLED',
]);

describe('trip state machine', () => {
  const pairs: [TripStatus, TripStatus][] = TRIP_STATUSES.flatMap((from) =>
    TRIP_STATUSES.map((to) => [from, to] as [TripStatus, TripStatus]),
  );

  it('covers every pair of states', () => {
    expect(pairs).toHaveLength(36);
  });

  it.each(pairs)('%s -> %s', (from, to) => {
    expect(canTransition(from, to)).toBe(LEGAL.has(`${from}>${to}`));
  });

  it('knows the active states', () => {
    expect(TRIP_STATUSES.filter(isActive)).toEqual(['LOADING', 'IN_TRANSIT', 'ARRIVED']);
  });
});
