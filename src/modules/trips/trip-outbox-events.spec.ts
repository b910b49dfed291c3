import { tripStatusEvents } from './trip-outbox-events';

describe('tripStatusEvents', () => {
  const view = { id: 't1', status: 'LOADING' };

  it('writes trip.status for both orgs of the trip', () => {
    const events = tripStatusEvents({ sourceOrgId: 'A', destinationOrgId: 'B' }, 'LOADING', view);
    expect(events.map((e) => `${e.type}@${e.orgId}`)).toEqual(['trip.status@A', 'trip.status@B']);
    expect(events.every((e) => e.data === view)).toBe(true);
  });

  it('adds trip.arrived on ARRIVED', () => {
    const events = tripStatusEvents({ sourceOrgId: 'A', destinationOrgId: 'B' }, 'ARRIVED', view);
    expect(events.map((e) => `${e.type}@${e.orgId}`)).toEqual([
      'trip.status@A',
      'trip.arrived@A',
      'trip.status@B',
      'trip.arrived@B',
    ]);
  });

  it('writes once for a trip within one org', () => {
    expect(tripStatusEvents({ sourceOrgId: 'A', destinationOrgId: 'A' }, 'IN_TRANSIT', view)).toHaveLength(1);
  });
});
