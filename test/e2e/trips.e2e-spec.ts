import { Client } from 'pg';
import { InProcessRealtimePublisher, RealtimeEvent } from '../../src/infra/realtime/realtime-publisher';
import { newOrg, newUser } from '../support/factories';
import { startTestApp, TestApp } from '../support/test-app';
import {
  DELHI,
  JAIPUR,
  moveTo,
  newDriver,
  newMember,
  newTrip,
  newTruck,
  newWorld,
  tripBody,
  TripWorld,
} from '../support/trips-fixtures';

/** Counts the SQL statements the app sends that touch a table, by wrapping pg's Client.query in this process. */
function countQueries(table: string): { stop: () => string[] } {
  const proto = Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  const seen: string[] = [];
  proto.query = function (this: unknown, ...args: unknown[]) {
    const first = args[0] as string | { text?: string };
    const text = typeof first === 'string' ? first : (first?.text ?? '');
    if (text.includes(`"${table}"`) || new RegExp(`\\b${table}\\b`).test(text)) seen.push(text);
    return original.apply(this, args);
  };
  return {
    stop() {
      proto.query = original;
      return seen;
    },
  };
}

describe('trips', () => {
  let t: TestApp;
  let w: TripWorld;
  beforeAll(async () => {
    t = await startTestApp();
    w = await newWorld(t.api);
  });
  afterAll(() => t.close());

  describe('create', () => {
    it('creates a PLANNED trip for a member of the source org', async () => {
      const res = await t.api.post('/trips', tripBody(w, { estimatedArrival: '2030-01-02T10:00:00Z' }), {
        token: w.source.owner.accessToken,
      });
      expect(res.status).toBe(201);
      expect(res.body.data).toMatchObject({
        id: expect.any(String),
        status: 'PLANNED',
        sourceOrgId: w.source.id,
        destinationOrgId: w.destination.id,
        truckId: w.truckId,
        driverId: w.driverId,
        startPoint: JAIPUR,
        endPoint: DELHI,
        estimatedArrival: '2030-01-02T10:00:00.000Z',
        distanceKm: 0,
        latestLocation: null,
      });
    });

    it('lets STAFF of the destination org create one with its own truck and driver; ACCOUNTANT gets 403, an outsider 404', async () => {
      const staff = await newMember(t.api, w.destination, 'STAFF');
      const accountant = await newMember(t.api, w.destination, 'ACCOUNTANT');
      const outsider = await newUser(t.api);
      const [truckId, driver] = await Promise.all([newTruck(t.api, w.destination), newDriver(t.api, w.destination)]);
      const body = tripBody(w, { truckId, driverId: driver.driverId });
      expect((await t.api.post('/trips', body, { token: staff.accessToken })).status).toBe(201);
      const forbidden = await t.api.post('/trips', body, { token: accountant.accessToken });
      expect(forbidden.status).toBe(403);
      const hidden = await t.api.post('/trips', body, { token: outsider.accessToken });
      expect(hidden.status).toBe(404);
    });

    it('refuses a truck or driver of another org, naming the fields', async () => {
      const other = await newOrg(t.api);
      const [truck, driver] = await Promise.all([newTruck(t.api, other), newDriver(t.api, other)]);
      const res = await t.api.post('/trips', tripBody(w, { truckId: truck, driverId: driver.driverId }), {
        token: w.source.owner.accessToken,
      });
      expect(res.status).toBe(422);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      expect(res.body.error.details.map((d: { path: string }) => d.path).sort()).toEqual(['driverId', 'truckId']);
    });

    describe("an org never assigns the other org's truck or driver", () => {
      const tripCount = async () => (await t.sql.query(`SELECT count(*)::int AS n FROM trips`)).rows[0].n as number;
      const paths = (body: { error: { details: { path: string }[] } }) => body.error.details.map((d) => d.path).sort();
      let b: { truckId: string; driverId: string };
      beforeAll(async () => {
        const [truckId, driver] = await Promise.all([newTruck(t.api, w.destination), newDriver(t.api, w.destination)]);
        b = { truckId, driverId: driver.driverId };
      });
      const body = (extra: Record<string, unknown>) => tripBody(w, extra);

      it("the source org with the destination org's truck: 422 naming truckId, nothing created", async () => {
        const before = await tripCount();
        const res = await t.api.post('/trips', body({ truckId: b.truckId }), { token: w.source.owner.accessToken });
        expect(res.status).toBe(422);
        expect(res.body.error.code).toBe('VALIDATION_FAILED');
        expect(paths(res.body)).toEqual(['truckId']);
        expect(await tripCount()).toBe(before);
      });

      it("the source org with the destination org's driver: 422 naming driverId, nothing created", async () => {
        const before = await tripCount();
        const res = await t.api.post('/trips', body({ driverId: b.driverId }), { token: w.source.owner.accessToken });
        expect(res.status).toBe(422);
        expect(res.body.error.code).toBe('VALIDATION_FAILED');
        expect(paths(res.body)).toEqual(['driverId']);
        expect(await tripCount()).toBe(before);
      });

      it("the destination org's staff with the source org's truck and driver: 422 naming both", async () => {
        const staff = await newMember(t.api, w.destination, 'STAFF');
        const res = await t.api.post('/trips', body({}), { token: staff.accessToken });
        expect(res.status).toBe(422);
        expect(paths(res.body)).toEqual(['driverId', 'truckId']);
      });

      it('a member of both orgs assigns the truck of one and the driver of the other only where they operate', async () => {
        const both = await newMember(t.api, w.source, 'STAFF');
        const added = await t.api.post(
          `/orgs/${w.destination.id}/members`,
          { phone: both.phone, role: 'ACCOUNTANT' },
          { token: w.destination.owner.accessToken },
        );
        expect(added.status).toBe(201);
        // Staff of the source org: its truck and driver, yes; the destination's (where they only keep the books), no.
        expect((await t.api.post('/trips', body({}), { token: both.accessToken })).status).toBe(201);
        const res = await t.api.post('/trips', body({ driverId: b.driverId }), { token: both.accessToken });
        expect(res.status).toBe(422);
        expect(paths(res.body)).toEqual(['driverId']);
      });

      it('an unknown counterparty org: 422 naming it, not a 500', async () => {
        const unknown = '0190a000-0000-7000-8000-00000000abcd';
        const before = await tripCount();
        const asSource = await t.api.post('/trips', body({ destinationOrgId: unknown }), {
          token: w.source.owner.accessToken,
        });
        expect(asSource.status).toBe(422);
        expect(asSource.body.error.code).toBe('VALIDATION_FAILED');
        expect(paths(asSource.body)).toEqual(['destinationOrgId']);
        const asDestination = await t.api.post(
          '/trips',
          body({ sourceOrgId: unknown, destinationOrgId: w.destination.id, ...b }),
          { token: w.destination.owner.accessToken },
        );
        expect(asDestination.status).toBe(422);
        expect(paths(asDestination.body)).toEqual(['sourceOrgId']);
        expect(await tripCount()).toBe(before);
      });

      it('a driver who left the org is no longer assignable: 422 naming driverId', async () => {
        const gone = await newDriver(t.api, w.source);
        const del = await t.api.delete(`/orgs/${w.source.id}/members/${gone.user.id}`, {
          token: w.source.owner.accessToken,
        });
        expect(del.status).toBe(204);
        const res = await t.api.post('/trips', body({ driverId: gone.driverId }), {
          token: w.source.owner.accessToken,
        });
        expect(res.status).toBe(422);
        expect(paths(res.body)).toEqual(['driverId']);
      });
    });

    it('validates the body, naming each field', async () => {
      const res = await t.api.post(
        '/trips',
        tripBody(w, { sourceOrgId: 'nope', startPoint: { name: 'X', lat: 91, lng: 0 }, extra: 1 }),
        { token: w.source.owner.accessToken },
      );
      expect(res.status).toBe(400);
      const paths = res.body.error.details.map((d: { path: string }) => d.path);
      expect(paths).toEqual(expect.arrayContaining(['sourceOrgId', 'startPoint.lat']));
    });
  });

  describe('visibility', () => {
    it('members of either org and the assigned driver see the trip; other drivers and outsiders get 404', async () => {
      const trip = await newTrip(t.api, w);
      const destStaff = await newMember(t.api, w.destination, 'ACCOUNTANT');
      const otherDriver = await newDriver(t.api, w.source);
      const outsider = await newUser(t.api);
      expect((await t.api.get(`/trips/${trip.id}`, { token: w.destination.owner.accessToken })).status).toBe(200);
      expect((await t.api.get(`/trips/${trip.id}`, { token: destStaff.accessToken })).status).toBe(200);
      expect((await t.api.get(`/trips/${trip.id}`, { token: w.driver.accessToken })).status).toBe(200);
      const asOtherDriver = await t.api.get(`/trips/${trip.id}`, { token: otherDriver.user.accessToken });
      expect(asOtherDriver.status).toBe(404);
      expect(asOtherDriver.body.error.code).toBe('NOT_FOUND');
      expect((await t.api.get(`/trips/${trip.id}`, { token: outsider.accessToken })).status).toBe(404);
      expect((await t.api.get(`/trips/${trip.id}/events`, { token: outsider.accessToken })).status).toBe(404);
      expect(
        (await t.api.get(`/trips/0190a000-0000-7000-8000-000000000000`, { token: w.source.owner.accessToken })).status,
      ).toBe(404);
    });

    it('a driver lists only the trips assigned to them', async () => {
      const mine = await newTrip(t.api, w);
      const other = await newDriver(t.api, w.source);
      const theirs = await newTrip(t.api, w, { driverId: other.driverId });
      const res = await t.api.get('/trips?limit=100', { token: w.driver.accessToken });
      const ids = res.body.data.map((x: { id: string }) => x.id);
      expect(ids).toContain(mine.id);
      expect(ids).not.toContain(theirs.id);
      expect(res.body.data.every((x: { driverId: string }) => x.driverId === w.driverId)).toBe(true);
      const inOrg = await t.api.get(`/trips?orgId=${w.source.id}&limit=100`, { token: w.driver.accessToken });
      expect(inOrg.body.data.every((x: { driverId: string }) => x.driverId === w.driverId)).toBe(true);
    });
  });

  describe('list', () => {
    let x: TripWorld;
    const ids: string[] = [];
    beforeAll(async () => {
      x = await newWorld(t.api);
      for (let i = 0; i < 5; i++) ids.push((await newTrip(t.api, x)).id);
      await moveTo(t.api, x, ids[1], 'CANCELLED');
      await moveTo(t.api, x, ids[3], 'LOADING');
    });

    it('pages newest first with a cursor, every trip once', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res: any = await t.api.get(`/trips?orgId=${x.source.id}&limit=2${cursor ? `&cursor=${cursor}` : ''}`, {
          token: x.source.owner.accessToken,
        });
        expect(res.status).toBe(200);
        seen.push(...res.body.data.map((r: { id: string }) => r.id));
        cursor = res.body.meta.nextCursor;
      } while (cursor);
      expect(seen).toEqual([...ids].reverse());
    });

    it('filters by status, side and driver', async () => {
      const token = x.source.owner.accessToken;
      const cancelled = await t.api.get(`/trips?orgId=${x.source.id}&status=CANCELLED`, { token });
      expect(cancelled.body.data.map((r: { id: string }) => r.id)).toEqual([ids[1]]);
      const asDest = await t.api.get(`/trips?orgId=${x.source.id}&side=destination`, { token });
      expect(asDest.body.data).toEqual([]);
      const destSide = await t.api.get(`/trips?orgId=${x.destination.id}&side=destination&status=LOADING`, {
        token: x.destination.owner.accessToken,
      });
      expect(destSide.body.data.map((r: { id: string }) => r.id)).toEqual([ids[3]]);
      const byDriver = await t.api.get(`/trips?driverId=${x.driverId}&limit=100`, { token });
      expect(byDriver.body.data).toHaveLength(5);
      const noOrgFilter = await t.api.get(`/trips?limit=100`, { token: x.destination.owner.accessToken });
      expect(noOrgFilter.body.data.map((r: { id: string }) => r.id)).toEqual([...ids].reverse());
    });

    it('404 for an org the caller is not in; 400 for a bad filter', async () => {
      const res = await t.api.get(`/trips?orgId=${x.source.id}`, { token: w.source.owner.accessToken });
      expect(res.status).toBe(404);
      const bad = await t.api.get(`/trips?status=FLYING`, { token: w.source.owner.accessToken });
      expect(bad.status).toBe(400);
      expect(bad.body.error.details[0].path).toBe('status');
    });

    it('?fields= selects dotted paths into relations, joined, whatever the page size', async () => {
      const token = x.source.owner.accessToken;
      const counter = countQueries('trips');
      const res = await t.api.get(
        `/trips?orgId=${x.source.id}&limit=5&fields=id,status,truck.number,driver.name,sourceOrg.name,latestLocation`,
        { token },
      );
      const queries = counter.stop();
      expect(res.status).toBe(200);
      expect(res.body.data).toHaveLength(5);
      expect(res.body.data[0]).toEqual({
        id: ids[4],
        status: 'PLANNED',
        truck: { number: expect.stringMatching(/^RJ14 T/) },
        driver: { name: 'Driver Ramesh' },
        sourceOrg: { name: 'Sharma Traders' },
        latestLocation: null,
      });
      // An org seen from both sides: the page's ids from a UNION of one index range per side, then
      // one read of the selected fields of those ids, relations joined (not one query per row).
      expect(queries).toHaveLength(2);
      expect(queries[0]).toMatch(/UNION/);
      expect(queries[1]).toMatch(/trucks/);
      expect(queries[1]).toMatch(/driver_profiles/);
      expect(queries[1]).toMatch(/users/);
      // Only the asked-for columns are read.
      for (const q of queries) expect(q).not.toMatch(/distance_km|start_name|password_hash|phone/);

      // One side of one org: a single query, relations joined.
      const oneSide = countQueries('trips');
      const sideRes = await t.api.get(
        `/trips?orgId=${x.source.id}&side=source&limit=5&fields=id,status,truck.number,driver.name`,
        { token },
      );
      const sideQueries = oneSide.stop();
      expect(sideRes.body.data).toHaveLength(5);
      expect(sideQueries).toHaveLength(1);
      expect(sideQueries[0]).toMatch(/trucks/);

      const detailCounter = countQueries('trips');
      const one = await t.api.get(`/trips/${ids[0]}?fields=driver.phone,destinationOrg`, { token });
      const detailQueries = detailCounter
        .stop()
        .filter((q) => /driver_profiles|users|orgs/.test(q) && /SELECT/i.test(q));
      expect(one.body.data).toEqual({
        driver: { phone: expect.stringMatching(/^\+91/) },
        destinationOrg: { id: x.destination.id, name: 'Gupta Mandi', city: 'Jaipur' },
      });
      expect(detailQueries.length).toBeLessThanOrEqual(2); // the access check and the selected read
    });

    it('an unknown field is a 400 listing it', async () => {
      const res = await t.api.get(`/trips?fields=id,truck.secret,bogus`, { token: x.source.owner.accessToken });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      expect(res.body.error.message).toContain('truck.secret');
      expect(res.body.error.details.map((d: { field: string }) => d.field)).toEqual(['truck.secret', 'bogus']);
      const detail = await t.api.get(`/trips/${ids[0]}?fields=driver.passwordHash`, {
        token: x.source.owner.accessToken,
      });
      expect(detail.status).toBe(400);
    });
  });

  describe('status', () => {
    it('walks the state machine and logs each move, announcing it', async () => {
      const x = await newWorld(t.api);
      const trip = await newTrip(t.api, x);
      const realtime = t.app.get(InProcessRealtimePublisher);
      const seen: RealtimeEvent[] = [];
      const off = realtime.on((e) => seen.push(e));
      await moveTo(t.api, x, trip.id, 'LOADING', 'IN_TRANSIT', 'ARRIVED', 'COMPLETED');
      off();
      const detail = await t.api.get(`/trips/${trip.id}`, { token: x.destination.owner.accessToken });
      expect(detail.body.data.status).toBe('COMPLETED');
      const statusEvents = seen
        .filter((e) => e.event === 'trip.status' && e.room === `trip:${trip.id}`)
        .map((e) => e.payload.status);
      expect(statusEvents).toEqual(['LOADING', 'IN_TRANSIT', 'ARRIVED', 'COMPLETED']);
      expect(seen.some((e) => e.room === `org:${x.destination.id}` && e.payload.status === 'COMPLETED')).toBe(true);

      const log = await t.api.get(`/trips/${trip.id}/events?limit=3`, { token: x.destination.owner.accessToken });
      expect(log.status).toBe(200);
      expect(log.body.data.map((e: { data: { to: string } }) => e.data.to)).toEqual([
        'COMPLETED',
        'ARRIVED',
        'IN_TRANSIT',
      ]);
      expect(log.body.data[0]).toMatchObject({
        type: 'STATUS_CHANGED',
        tripId: trip.id,
        actorUserId: x.source.owner.id,
        data: { from: 'ARRIVED', to: 'COMPLETED' },
      });
      const rest = await t.api.get(`/trips/${trip.id}/events?limit=3&cursor=${log.body.meta.nextCursor}`, {
        token: x.destination.owner.accessToken,
      });
      expect(rest.body.data.map((e: { data: { to: string } }) => e.data.to)).toEqual(['LOADING', 'PLANNED']);
      expect(rest.body.meta.nextCursor).toBeNull();
    });

    it('an illegal move is 409 ILLEGAL_TRANSITION naming both states', async () => {
      const x = await newWorld(t.api);
      const trip = await newTrip(t.api, x);
      const res = await t.api.post(
        `/trips/${trip.id}/status`,
        { status: 'ARRIVED' },
        { token: x.source.owner.accessToken },
      );
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe('ILLEGAL_TRANSITION');
      expect(res.body.error.message).toContain('PLANNED');
      expect(res.body.error.message).toContain('ARRIVED');
      await moveTo(t.api, x, trip.id, 'LOADING', 'IN_TRANSIT', 'ARRIVED');
      const cancel = await t.api.post(
        `/trips/${trip.id}/status`,
        { status: 'CANCELLED' },
        { token: x.source.owner.accessToken },
      );
      expect(cancel.status).toBe(409);
      expect(cancel.body.error.details[0]).toMatchObject({ from: 'ARRIVED', to: 'CANCELLED' });
    });

    it('of concurrent moves from the same state exactly one wins', async () => {
      const x = await newWorld(t.api);
      const trip = await newTrip(t.api, x);
      const results = await Promise.all(
        Array.from({ length: 8 }, () =>
          t.api.post(`/trips/${trip.id}/status`, { status: 'LOADING' }, { token: x.source.owner.accessToken }),
        ),
      );
      expect(results.filter((r) => r.status === 200)).toHaveLength(1);
      expect(results.filter((r) => r.status === 409 && r.body.error.code === 'ILLEGAL_TRANSITION')).toHaveLength(7);
      const log = await t.sql.query(
        `SELECT count(*)::int AS n FROM trip_events WHERE trip_id = $1 AND data->>'to' = 'LOADING'`,
        [trip.id],
      );
      expect(log.rows[0].n).toBe(1);
    });

    it('a driver or a truck has one active trip at a time: DRIVER_BUSY / TRUCK_BUSY, also under concurrency', async () => {
      const x = await newWorld(t.api);
      const first = await newTrip(t.api, x);
      const second = await newTrip(t.api, x);
      await moveTo(t.api, x, first.id, 'LOADING');
      const busy = await t.api.post(
        `/trips/${second.id}/status`,
        { status: 'LOADING' },
        { token: x.source.owner.accessToken },
      );
      expect(busy.status).toBe(409);
      expect(busy.body.error.code).toBe('DRIVER_BUSY');

      const otherDriver = await newDriver(t.api, x.source);
      const sameTruck = await newTrip(t.api, x, { driverId: otherDriver.driverId });
      const truckBusy = await t.api.post(
        `/trips/${sameTruck.id}/status`,
        { status: 'LOADING' },
        { token: x.source.owner.accessToken },
      );
      expect(truckBusy.status).toBe(409);
      expect(truckBusy.body.error.code).toBe('TRUCK_BUSY');

      // Once the first is done, the second may go; any number may stay PLANNED.
      await moveTo(t.api, x, first.id, 'CANCELLED');
      const y = await newWorld(t.api);
      const racers = await Promise.all([newTrip(t.api, y), newTrip(t.api, y), newTrip(t.api, y)]);
      const raced = await Promise.all(
        racers.map((r) =>
          t.api.post(`/trips/${r.id}/status`, { status: 'LOADING' }, { token: y.source.owner.accessToken }),
        ),
      );
      expect(raced.filter((r) => r.status === 200)).toHaveLength(1);
      expect(raced.filter((r) => r.status === 409 && r.body.error.code === 'DRIVER_BUSY')).toHaveLength(2);
    });

    it('the driver may start and arrive but not complete or cancel; an accountant may not move it', async () => {
      const x = await newWorld(t.api);
      const trip = await newTrip(t.api, x);
      const driverMove = await t.api.post(
        `/trips/${trip.id}/status`,
        { status: 'LOADING', note: 'loading at gate 3' },
        { token: x.driver.accessToken },
      );
      expect(driverMove.status).toBe(200);
      expect(driverMove.body.data.status).toBe('LOADING');
      const cancel = await t.api.post(
        `/trips/${trip.id}/status`,
        { status: 'CANCELLED' },
        { token: x.driver.accessToken },
      );
      expect(cancel.status).toBe(403);
      const accountant = await newMember(t.api, x.destination, 'ACCOUNTANT');
      const res = await t.api.post(
        `/trips/${trip.id}/status`,
        { status: 'IN_TRANSIT' },
        { token: accountant.accessToken },
      );
      expect(res.status).toBe(403);
      const log = await t.api.get(`/trips/${trip.id}/events`, { token: x.source.owner.accessToken });
      expect(log.body.data[0].data).toEqual({ from: 'PLANNED', to: 'LOADING', note: 'loading at gate 3' });
    });
  });
});
