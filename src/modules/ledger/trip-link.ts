import { Injectable } from '@nestjs/common';
import { LedgerRepository } from './ledger.repository';

/**
 * How the ledger checks an invoice's trip: it must be a trip between the two
 * orgs of the account (either direction). The trips feature exports no
 * service method for this yet, so the ledger repository reads the `trips`
 * table's two org columns; swap in TripsService here once it offers one.
 */
@Injectable()
export class TripLink {
  constructor(private readonly repo: LedgerRepository) {}

  /**
   * `unknown` when there is no such trip, `elsewhere` when it is not between
   * the two orgs (in either direction); with the trip's two orgs, so a caller
   * can tell whether it may see the trip at all.
   */
  async tripLink(
    tripId: string,
    orgAId: string,
    orgBId: string,
  ): Promise<'unknown' | 'between' | { elsewhere: [string, string] }> {
    const trip = await this.repo.findTripOrgs(tripId);
    if (!trip) return 'unknown';
    const orgs = [trip.sourceOrgId, trip.destinationOrgId].sort();
    return orgs[0] === orgAId && orgs[1] === orgBId
      ? 'between'
      : { elsewhere: [trip.sourceOrgId, trip.destinationOrgId] };
  }
}
