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

  async isTripBetween(tripId: string, orgAId: string, orgBId: string): Promise<boolean> {
    const trip = await this.repo.findTripOrgs(tripId);
    if (!trip) return false;
    const orgs = [trip.sourceOrgId, trip.destinationOrgId].sort();
    return orgs[0] === orgAId && orgs[1] === orgBId;
  }
}
