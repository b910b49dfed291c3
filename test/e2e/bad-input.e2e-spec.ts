import { randomUUID } from 'node:crypto';
import { statementRefused } from '../../src/common/errors/database-errors';
import { toErrorResponse } from '../../src/common/errors/error-response';
import { Db } from '../../src/infra/db/db.service';
import { newOrg, newUser, TestOrg, TestUser } from '../support/factories';
import { connectWatcher } from '../support/socket-client';
import { ApiResponse, startTestApp, TestApp } from '../support/test-app';
import { activeTrip, DELHI, JAIPUR, tripBody as newTripBody, newWorld, TripWorld } from '../support/trips-fixtures';

/** A cursor as the API encodes them, around any content. */
const cursorOf = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** Rows of every table a bad request could have written to. */
const TABLES = [
  'users',
  'orgs',
  'memberships',
  'trucks',
  'driver_profiles',
  'trips',
  'trip_events',
  'trip_pings',
  'ledger_accounts',
  'invoices',
  'payments',
  'ledger_entries',
];

describe('bad input: always a 4xx in the envelope, never a 5xx, nothing written', () => {
  let t: TestApp;
  let owner: TestUser;
  let org: TestOrg;
  let other: TestOrg;
  let w: TripWorld;
  let tripId: string;
  let accountId: string;
  let entryId: string;

  const as = (u: TestUser) => ({ token: u.accessToken });
  const idem = () => ({ token: owner.accessToken, headers: { 'idempotency-key': randomUUID() } });
  const fix = (extra: Record<string, unknown> = {}) => ({
    latitude: 26.9,
    longitude: 75.8,
    timestamp: new Date(Date.now() - 60_000).toISOString(),
    ...extra,
  });
  // The world's source and destination are org and other.
  const tripBody = (extra: Record<string, unknown> = {}) => newTripBody(w, extra);

  async function counts(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const table of TABLES) {
      out[table] = Number((await t.sql.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
    }
    return out;
  }

  beforeAll(async () => {
    t = await startTestApp();
    owner = await newUser(t.api);
    org = await newOrg(t.api, owner);
    other = await newOrg(t.api);
    w = await newWorld(t.api, { source: org, destination: other });
    tripId = (await activeTrip(t.api, w)).id;
    await t.sql.query(`UPDATE trips SET created_at = now() - interval '2 hours' WHERE id = $1`, [tripId]);
    const acc = await t.api.post(`/orgs/${org.id}/accounts`, { counterpartyOrgId: other.id }, as(owner));
    accountId = acc.body.data.id;
    const inv = await t.api.post(`/ledger/accounts/${accountId}/invoices`, { number: 'INV-1', amount: 1000 }, idem());
    entryId = inv.body.data.entries[0].id;
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Sends each case; every answer must be its expected 4xx, with the envelope, and nothing may be written. */
  async function expectAll(cases: [string, number, () => Promise<ApiResponse>, string?][]): Promise<void> {
    const before = await counts();
    const seen: string[] = [];
    const wanted: string[] = [];
    for (const [name, status, send, path] of cases) {
      const res = await send();
      const paths = ((res.body?.error?.details ?? []) as { path?: string }[]).map((d) => d.path);
      const named = path === undefined || paths.includes(path) ? '' : ` (no detail names ${path}: ${paths.join()})`;
      seen.push(`${name}: ${res.status} ${res.body?.success === false ? res.body.error.code : 'no envelope'}${named}`);
      wanted.push(`${name}: ${status} ${res.body?.success === false ? res.body.error.code : 'an envelope'}`);
    }
    expect(seen).toEqual(wanted);
    expect(await counts()).toEqual(before);
  }

  it('a NUL or an unpaired surrogate in any string (body, query, params, keys) is a 400 naming the field', async () => {
    const driver = () => as(w.driver);
    await expectAll([
      // auth
      [
        'register name NUL',
        400,
        () => t.api.post('/auth/register', { phone: '+919800000001', name: 'a\u0000', password: 'password-123' }),
        'name',
      ],
      [
        'register name lone surrogate',
        400,
        () =>
          t.api.post('/auth/register', undefined, {
            raw: '{"phone":"+919800000002","name":"\\ud800","password":"password-123"}',
          }),
        'name',
      ],
      [
        'login password NUL',
        400,
        () => t.api.post('/auth/login', { phone: owner.phone, password: 'x\u0000' }),
        'password',
      ],
      ['refresh token NUL', 400, () => t.api.post('/auth/refresh', { refreshToken: 'x\u0000' }), 'refreshToken'],
      // orgs
      ['org name NUL', 400, () => t.api.post('/orgs', { name: 'Sharma\u0000Traders' }, as(owner)), 'name'],
      [
        'org name lone low surrogate',
        400,
        () => t.api.post('/orgs', undefined, { ...as(owner), raw: '{"name":"x\\udc00"}' }),
        'name',
      ],
      ['org city NUL', 400, () => t.api.patch(`/orgs/${org.id}`, { city: '\u0000' }, as(owner)), 'city'],
      ['org id param NUL', 400, () => t.api.get('/orgs/%00', as(owner)), 'orgId'],
      [
        'truck type NUL',
        400,
        () => t.api.post(`/orgs/${org.id}/trucks`, { number: 'RJ 1', type: 'x\u0000' }, as(owner)),
        'type',
      ],
      [
        'driver licence NUL',
        400,
        () => t.api.post(`/orgs/${org.id}/drivers`, { phone: owner.phone, licenseNo: 'L\u0000' }, as(owner)),
        'licenseNo',
      ],
      ['members cursor NUL', 400, () => t.api.get(`/orgs/${org.id}/members?cursor=a%00`, as(owner)), 'cursor'],
      // trips
      [
        'trip place NUL',
        400,
        () => t.api.post('/trips', tripBody({ startPoint: { ...JAIPUR, name: 'J\u0000' } }), as(owner)),
        'startPoint.name',
      ],
      [
        'trip note NUL',
        400,
        () => t.api.post(`/trips/${tripId}/status`, { status: 'ARRIVED', note: '\u0000' }, as(owner)),
        'note',
      ],
      ['trip fields NUL', 400, () => t.api.get(`/trips/${tripId}?fields=id%00`, as(owner)), 'fields'],
      // tracking ping: one bad string fails the request (before it can reach a shared INSERT)
      [
        'ping batchId NUL',
        400,
        () => t.api.post('/tracking/ping', { tripId, locations: [fix(), fix({ batchId: 'b\u0000' })] }, driver()),
        'locations.1.batchId',
      ],
      [
        'ping batchId lone surrogate',
        400,
        () =>
          t.api.post('/tracking/ping', undefined, {
            ...driver(),
            raw: `{"tripId":"${tripId}","locations":[${JSON.stringify(fix()).slice(0, -1)},"batchId":"\\ud83d"}]}`,
          }),
        'locations.0.batchId',
      ],
      [
        'ping key NUL',
        400,
        () =>
          t.api.post('/tracking/ping', undefined, {
            ...driver(),
            raw: `{"tripId":"${tripId}","locations":[${JSON.stringify(fix()).slice(0, -1)},"a\\u0000":1}]}`,
          }),
        'locations.0.a\u0000',
      ],
      // osmand: query string, form body, JSON body
      ['osmand id NUL', 400, () => t.api.get(`/tracking/osmand?id=%00&lat=26.9&lon=75.8`), 'id'],
      [
        'osmand form NUL',
        400,
        () =>
          t.api.post('/tracking/osmand', undefined, {
            raw: `id=${w.trackerToken}&lat=26.9&lon=75.8&timestamp=x%00`,
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
          }),
        'timestamp',
      ],
      [
        'osmand JSON lone surrogate',
        400,
        () =>
          t.api.post('/tracking/osmand', undefined, {
            raw: `{"device_id":"\\udfff","location":{"coords":{"latitude":26.9,"longitude":75.8}}}`,
          }),
        'device_id',
      ],
      // ledger
      [
        'invoice memo NUL',
        400,
        () =>
          t.api.post(`/ledger/accounts/${accountId}/invoices`, { number: 'N-1', amount: 5, memo: 'm\u0000' }, idem()),
        'memo',
      ],
      [
        'invoice number lone surrogate',
        400,
        () =>
          t.api.post(`/ledger/accounts/${accountId}/invoices`, undefined, {
            ...idem(),
            raw: '{"number":"\\ud800","amount":5}',
          }),
        'number',
      ],
      [
        'payment reference NUL',
        400,
        () =>
          t.api.post(
            `/ledger/accounts/${accountId}/payments`,
            { amount: 5, method: 'cash', reference: '\u0000' },
            idem(),
          ),
        'reference',
      ],
      [
        'reversal reason NUL',
        400,
        () => t.api.post(`/ledger/entries/${entryId}/reverse`, { reason: 'r\u0000' }, idem()),
        'reason',
      ],
      [
        'entries cursor NUL',
        400,
        () => t.api.get(`/ledger/accounts/${accountId}/entries?cursor=%00`, as(owner)),
        'cursor',
      ],
    ]);
  });

  it('dates PostgreSQL cannot store, numbers out of range, bad or unknown ids and malformed cursors are 4xx', async () => {
    const year0 = '0000-01-01T00:00:00Z';
    const tampered = [
      ['%%%', '%%%'],
      ['garbage JSON', cursorOf('{garbage')],
      ['a non-UUID id', cursorOf(['2026-01-01T00:00:00Z', 'zzz'])],
      ['year 0', cursorOf([year0, randomUUID()])],
    ];
    await expectAll([
      // dates
      [
        'trip ETA year 0',
        400,
        () => t.api.post('/trips', tripBody({ estimatedArrival: year0 }), as(owner)),
        'estimatedArrival',
      ],
      [
        'trip ETA year 300000',
        400,
        () => t.api.post('/trips', tripBody({ estimatedArrival: '+300000-01-01T00:00:00Z' }), as(owner)),
        'estimatedArrival',
      ],
      [
        'invoice due date year 0',
        400,
        () =>
          t.api.post(
            `/ledger/accounts/${accountId}/invoices`,
            { number: 'N-2', amount: 5, dueDate: '0000-01-01' },
            idem(),
          ),
        'dueDate',
      ],
      [
        'entries from year 0',
        400,
        () => t.api.get(`/ledger/accounts/${accountId}/entries?from=${year0}`, as(owner)),
        'from',
      ],
      [
        'statement from year 0',
        400,
        () => t.api.get(`/ledger/accounts/${accountId}/statement?from=${year0}`, as(owner)),
        'from',
      ],
      [
        'CSV statement to year 0',
        400,
        () => t.api.get(`/ledger/accounts/${accountId}/statement?to=${year0}&format=csv`, as(owner)),
        'to',
      ],
      [
        'history from year 0',
        400,
        () => t.api.get(`/tracking/trips/${tripId}/history?from=${year0}`, as(owner)),
        'from',
      ],
      [
        'osmand timestamp too large',
        400,
        () => t.api.get(`/tracking/osmand?id=${w.trackerToken}&lat=26.9&lon=75.8&timestamp=99999999999999999999`),
        'timestamp',
      ],
      // numbers
      [
        'truck capacity 1e20',
        400,
        () => t.api.post(`/orgs/${org.id}/trucks`, { number: 'RJ 2', capacityKg: 1e20 }, as(owner)),
        'capacityKg',
      ],
      [
        'invoice amount 1e30',
        400,
        () => t.api.post(`/ledger/accounts/${accountId}/invoices`, { number: 'N-3', amount: 1e30 }, idem()),
        'amount',
      ],
      [
        'payment amount 1e30',
        400,
        () => t.api.post(`/ledger/accounts/${accountId}/payments`, { amount: 1e30, method: 'cash' }, idem()),
        'amount',
      ],
      [
        'trip latitude 1e30',
        400,
        () => t.api.post('/trips', tripBody({ endPoint: { ...DELHI, lat: 1e30 } }), as(owner)),
        'endPoint.lat',
      ],
      ['list limit 1e30', 400, () => t.api.get(`/trips?limit=1e30`, as(owner)), 'limit'],
      // ids
      ['org id not a UUID', 400, () => t.api.get('/orgs/not-a-uuid', as(owner)), 'orgId'],
      ['latest of a trip id not a UUID', 400, () => t.api.get('/tracking/trips/zzz/latest', as(owner)), 'tripId'],
      ['unknown org', 404, () => t.api.get(`/orgs/${randomUUID()}`, as(owner))],
      [
        'trip with an unknown counterparty org',
        422,
        () => t.api.post('/trips', tripBody({ destinationOrgId: randomUUID() }), as(owner)),
        'destinationOrgId',
      ],
      [
        'trip with an unknown truck',
        422,
        () => t.api.post('/trips', tripBody({ truckId: randomUUID() }), as(owner)),
        'truckId',
      ],
      [
        'ping for an unknown trip',
        404,
        () => t.api.post('/tracking/ping', { tripId: randomUUID(), locations: [fix()] }, as(w.driver)),
      ],
      [
        'account with an unknown counterparty',
        422,
        () => t.api.post(`/orgs/${org.id}/accounts`, { counterpartyOrgId: randomUUID() }, as(owner)),
        'counterpartyOrgId',
      ],
      [
        'invoice for an unknown trip',
        404,
        () =>
          t.api.post(
            `/ledger/accounts/${accountId}/invoices`,
            { number: 'N-4', amount: 5, tripId: randomUUID() },
            idem(),
          ),
        'tripId',
      ],
      [
        'payment of an unknown invoice',
        404,
        () =>
          t.api.post(
            `/ledger/accounts/${accountId}/payments`,
            { amount: 5, method: 'cash', invoiceId: randomUUID() },
            idem(),
          ),
      ],
      [
        'reversal of an unknown entry',
        404,
        () => t.api.post(`/ledger/entries/${randomUUID()}/reverse`, { reason: 'x' }, idem()),
      ],
      // cursors, on each kind of list
      ...tampered.flatMap(([what, c]): [string, number, () => Promise<ApiResponse>, string][] => [
        [`members cursor ${what}`, 400, () => t.api.get(`/orgs/${org.id}/members?cursor=${c}`, as(owner)), 'cursor'],
        [`trips cursor ${what}`, 400, () => t.api.get(`/trips?cursor=${c}`, as(owner)), 'cursor'],
        [
          `trip events cursor ${what}`,
          400,
          () => t.api.get(`/trips/${tripId}/events?cursor=${c}`, as(owner)),
          'cursor',
        ],
        [`accounts cursor ${what}`, 400, () => t.api.get(`/orgs/${org.id}/accounts?cursor=${c}`, as(owner)), 'cursor'],
        [
          `entries cursor ${what}`,
          400,
          () => t.api.get(`/ledger/accounts/${accountId}/entries?cursor=${c}`, as(owner)),
          'cursor',
        ],
      ]),
      [
        'entries cursor with a huge seq',
        400,
        () =>
          t.api.get(
            `/ledger/accounts/${accountId}/entries?cursor=${cursorOf(['2026-01-01T00:00:00Z', 1e300])}`,
            as(owner),
          ),
        'cursor',
      ],
      ['history cursor %%%', 400, () => t.api.get(`/tracking/trips/${tripId}/history?cursor=%%%`, as(owner)), 'cursor'],
      [
        'history cursor year 0',
        400,
        () => t.api.get(`/tracking/trips/${tripId}/history?cursor=${cursorOf(year0)}`, as(owner)),
        'cursor',
      ],
    ]);
  });

  it('a realtime subscribe payload with a NUL, a lone surrogate or a bad number is refused in the ack, naming the field', async () => {
    const s = await connectWatcher(t.url, owner.accessToken);
    try {
      const acks = [
        await s.request('subscribe', { room: 'trip:\u0000' }),
        await s.request('subscribe', { room: `trip:${tripId}\ud800` }),
        await s.request('subscribe', { room: `org:${org.id}`, sinceSeq: 1e300 }),
        await s.request('subscribe', { room: `org:${randomUUID()}` }),
      ];
      expect(acks.map((a) => [a.ok, a.error.code, a.error.details?.[0]?.path])).toEqual([
        [false, 'VALIDATION_FAILED', 'room'],
        [false, 'VALIDATION_FAILED', 'room'],
        [false, 'VALIDATION_FAILED', 'sinceSeq'],
        [false, 'NOT_FOUND', undefined],
      ]);
      // The socket still works.
      expect(await s.request('subscribe', { room: `trip:${tripId}` })).toEqual({ ok: true });
    } finally {
      s.close();
    }
  });

  it('maps each database error a client can cause to its 4xx, from pg itself and through Prisma', async () => {
    const db = t.app.get(Db);
    const failure = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (err) {
        const res = toErrorResponse(err, 'r');
        expect(JSON.stringify(res.body)).not.toMatch(/SELECT|INSERT|invalid input|violates/);
        return `${res.status} ${res.body.error.code} refused=${statementRefused(err)}`;
      }
      throw new Error('the statement did not fail');
    };
    const raw = {
      nul: await failure(db.sql('SELECT $1::text AS v', ['a\u0000'])),
      badUuid: await failure(db.sql('SELECT $1::uuid AS v', ['zzz'])),
      badDate: await failure(db.sql('SELECT $1::date AS v', ['garbage'])),
      year0: await failure(db.sql('SELECT $1::timestamptz AS v', ['0000-01-01T00:00:00Z'])),
      intRange: await failure(db.sql('SELECT $1::int AS v', ['99999999999'])),
      foreignKey: await failure(
        db.sql(`INSERT INTO trucks (id, org_id, number) VALUES ($1, $2, 'X')`, [randomUUID(), randomUUID()]),
      ),
    };
    const prisma = {
      nul: await failure(db.primary.org.create({ data: { name: 'a\u0000' } })),
      nulRaw: await failure(db.primary.$queryRaw`SELECT ${'a\u0000'}::text AS v`),
      badUuid: await failure(db.primary.$queryRaw`SELECT ${'zzz'}::uuid AS v`),
      year0: await failure(db.primary.$queryRaw`SELECT ${'0000-01-01T00:00:00Z'}::timestamptz AS v`),
      intRange: await failure(db.primary.truck.create({ data: { orgId: org.id, number: 'Y', capacityKg: 2 ** 40 } })),
      foreignKey: await failure(db.primary.truck.create({ data: { orgId: randomUUID(), number: 'Z' } })),
    };
    const bad = '400 VALIDATION_FAILED refused=true';
    const missing = '404 NOT_FOUND refused=true';
    expect(raw).toEqual({ nul: bad, badUuid: bad, badDate: bad, year0: bad, intRange: bad, foreignKey: missing });
    expect(prisma).toEqual({ nul: bad, nulRaw: bad, badUuid: bad, year0: bad, intRange: bad, foreignKey: missing });
  });
});
