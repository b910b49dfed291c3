import { randomUUID } from 'node:crypto';
import { newMember, newOrg, newUser, TestOrg, TestUser } from './factories';
import { Api } from './test-app';

/** Shared set-up of the e2e files that need orgs, a truck, a driver and trips. */
export interface TripWorld {
  source: TestOrg;
  destination: TestOrg;
  truckId: string;
  driver: TestUser;
  driverId: string;
  /** The driver's phone label (not a credential). */
  deviceId: string;
  /** The driver's tracker token: the OsmAnd credential, shown only when the driver was created. */
  trackerToken: string;
}

let truckSeq = 0;

export async function newTruck(api: Api, org: TestOrg): Promise<string> {
  truckSeq += 1;
  const res = await api.post(
    `/orgs/${org.id}/trucks`,
    { number: `RJ14 T ${truckSeq} ${randomUUID().slice(0, 6)}` },
    { token: org.owner.accessToken },
  );
  if (res.status !== 201) throw new Error(`truck: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.data.id;
}

export async function newDriver(
  api: Api,
  org: TestOrg,
): Promise<{ user: TestUser; driverId: string; deviceId: string; trackerToken: string }> {
  const user = await newUser(api, 'Driver Ramesh');
  const deviceId = `dev-${randomUUID()}`;
  const res = await api.post(
    `/orgs/${org.id}/drivers`,
    { phone: user.phone, deviceId },
    { token: org.owner.accessToken },
  );
  if (res.status !== 201) throw new Error(`driver: ${res.status} ${JSON.stringify(res.body)}`);
  return { user, driverId: res.body.data.id, deviceId, trackerToken: res.body.data.trackerToken };
}

/** Two trading orgs (new ones unless given), a truck and a driver of the source org. */
export async function newWorld(api: Api, orgs?: { source: TestOrg; destination: TestOrg }): Promise<TripWorld> {
  const [source, destination] = orgs
    ? [orgs.source, orgs.destination]
    : await Promise.all([newOrg(api, undefined, 'Sharma Traders'), newOrg(api, undefined, 'Gupta Mandi')]);
  const [truckId, d] = await Promise.all([newTruck(api, source), newDriver(api, source)]);
  return {
    source,
    destination,
    truckId,
    driver: d.user,
    driverId: d.driverId,
    deviceId: d.deviceId,
    trackerToken: d.trackerToken,
  };
}

export const JAIPUR = { name: 'Jaipur', lat: 26.9124, lng: 75.7873 };
export const DELHI = { name: 'Delhi', lat: 28.6139, lng: 77.209 };

/** The body of `POST /trips` for the world's orgs, truck and driver, Jaipur to Delhi; `extra` overrides any field. */
export function tripBody(w: TripWorld, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    sourceOrgId: w.source.id,
    destinationOrgId: w.destination.id,
    truckId: w.truckId,
    driverId: w.driverId,
    startPoint: JAIPUR,
    endPoint: DELHI,
    ...extra,
  };
}

export async function newTrip(api: Api, w: TripWorld, extra: Record<string, unknown> = {}): Promise<any> {
  const res = await api.post('/trips', tripBody(w, extra), { token: w.source.owner.accessToken });
  if (res.status !== 201) throw new Error(`trip: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.data;
}

export async function moveTo(api: Api, w: TripWorld, tripId: string, ...statuses: string[]): Promise<void> {
  for (const status of statuses) {
    const res = await api.post(`/trips/${tripId}/status`, { status }, { token: w.source.owner.accessToken });
    if (res.status !== 200) throw new Error(`status ${status}: ${res.status} ${JSON.stringify(res.body)}`);
  }
}

/** A trip in IN_TRANSIT with its own driver and truck. */
export async function activeTrip(api: Api, w: TripWorld, status = 'IN_TRANSIT'): Promise<any> {
  const trip = await newTrip(api, w);
  await moveTo(api, w, trip.id, ...(status === 'LOADING' ? ['LOADING'] : ['LOADING', 'IN_TRANSIT']));
  return trip;
}

export { newMember };
