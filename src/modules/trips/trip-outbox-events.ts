import type { OutboxEventInput } from '../../infra/outbox/outbox-writer';
import type { TripStatus } from './trip-status';

/**
 * The outbox events of a trip's status change: `trip.status` for each of the
 * trip's orgs (one row per org, each delivered with its own orgId), plus
 * `trip.arrived` when the trip reached ARRIVED. `view` is the trip as
 * `GET /trips/:id` returns it.
 */
export function tripStatusEvents(
  trip: { sourceOrgId: string; destinationOrgId: string },
  status: TripStatus,
  view: Record<string, unknown>,
): OutboxEventInput[] {
  const types = status === 'ARRIVED' ? ['trip.status', 'trip.arrived'] : ['trip.status'];
  const orgs = [...new Set([trip.sourceOrgId, trip.destinationOrgId])];
  return orgs.flatMap((orgId) => types.map((type) => ({ type, orgId, data: view })));
}
