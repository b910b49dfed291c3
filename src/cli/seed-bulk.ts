import { Client } from 'pg';
import { CITIES, FIRST_NAMES, SURNAMES, TRADES } from './india-routes';

/**
 * A large, realistic data set written in SQL (`INSERT … SELECT` over
 * `generate_series`, never row by row): orgs in Indian cities, an owner each,
 * drivers and trucks, trips across every status between the orgs' cities,
 * pings along road-like routes, and ledger accounts with invoices and payments
 * posted through `ledger_post` (the function every posting of the service
 * goes through).
 *
 * Idempotent: every id is derived from a label (`seed_uuid('trip-42')`), every
 * insert is `ON CONFLICT DO NOTHING`, and the two long steps (pings, ledger)
 * run in chunks of one statement each, a chunk skipped when its last row is
 * there. A second run with the same sizes adds nothing; a run with larger
 * sizes adds the difference (with smaller ones, the rows already there stay).
 */
export interface BulkSeedOptions {
  orgs: number;
  trips: number;
  pings: number;
  /** The password hash given to every generated user (the CLI hashes `waybill-demo`). */
  passwordHash: string;
  /** Trips per ping statement. */
  chunkTrips?: number;
}

export interface BulkSeedResult {
  /** Rows this run added, by table. */
  added: Record<string, number>;
  seconds: number;
}

export type SeedLog = (line: string, opts?: { sameLine?: boolean }) => void;

/** Drivers (and trucks) per org: enough that each drives a few dozen trips, at most 5. */
export function driversPerOrg(orgs: number, trips: number): number {
  return Math.max(1, Math.min(5, Math.ceil(trips / orgs / 8)));
}

/**
 * Phones of the generated users: owners `+91790<org>`, drivers `+91791<org><slot>` (E.164, 13 digits). A
 * driver, truck or user is named by its org and slot, so runs of other sizes agree on who is who.
 */
export const ownerPhone = (org: number) => `+91790${String(org).padStart(7, '0')}`;
export const driverPhone = (org: number, slot: number) => `+91791${String(org * 10 + slot).padStart(7, '0')}`;

const rate = (rows: number, ms: number) => Math.round((rows * 1000) / Math.max(ms, 1)).toLocaleString('en-US');

/**
 * SQL helpers the statements share, dropped at the end: `seed_uuid` makes a
 * version-4-shaped uuid from a label (one expression, so PostgreSQL inlines it).
 */
const HELPERS = `
CREATE OR REPLACE FUNCTION seed_uuid(label text) RETURNS uuid IMMUTABLE LANGUAGE sql AS $$
  SELECT overlay(overlay(md5('waybill-seed:' || label) placing '4' from 13) placing '8' from 17)::uuid $$;
CREATE OR REPLACE FUNCTION seed_distance_m(lat1 float8, lng1 float8, lat2 float8, lng2 float8)
RETURNS float8 IMMUTABLE LANGUAGE sql AS $$
  SELECT 2 * 6371000 * asin(sqrt(sin(radians(lat2 - lat1) / 2) ^ 2
    + cos(radians(lat1)) * cos(radians(lat2)) * sin(radians(lng2 - lng1) / 2) ^ 2)) $$;
`;
const DROP_HELPERS = `
DROP FUNCTION IF EXISTS seed_uuid(text);
DROP FUNCTION IF EXISTS seed_distance_m(float8, float8, float8, float8);
`;

export async function seedBulk(databaseUrl: string, opts: BulkSeedOptions, log: SeedLog): Promise<BulkSeedResult> {
  const { orgs, trips, pings } = opts;
  if (!Number.isInteger(orgs) || orgs < 2) throw new Error('--orgs must be an integer of at least 2');
  if (!Number.isInteger(trips) || trips < 0) throw new Error('--trips must be a non-negative integer');
  if (!Number.isInteger(pings) || pings < 0) throw new Error('--pings must be a non-negative integer');
  const per = driversPerOrg(orgs, trips);
  const chunkTrips = opts.chunkTrips ?? 5000;
  const started = Date.now();
  const added: Record<string, number> = {};
  const sql = new Client({ connectionString: databaseUrl });
  await sql.connect();
  try {
    await sql.query(`SET synchronous_commit = off`);
    await sql.query(`SET work_mem = '64MB'`);
    await sql.query(HELPERS);

    const step = async (table: string, text: string, params: unknown[] = []) => {
      const t0 = Date.now();
      const res = await sql.query(text, params);
      const rows = res.rowCount ?? 0;
      added[table] = (added[table] ?? 0) + rows;
      log(`${table}: +${rows.toLocaleString('en-US')} rows, ${rate(rows, Date.now() - t0)} rows/s`);
    };

    const cities = {
      name: CITIES.map((c) => c.name),
      rto: CITIES.map((c) => c.rto),
      lat: CITIES.map((c) => c.lat),
      lng: CITIES.map((c) => c.lng),
    };
    const C = CITIES.length;
    await sql.query(
      `CREATE TEMP TABLE seed_cities ON COMMIT PRESERVE ROWS AS
       SELECT (ord - 1)::int AS ci, name, rto, lat, lng
       FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[]) WITH ORDINALITY AS c(name, rto, lat, lng, ord)`,
      [cities.name, cities.rto, cities.lat, cities.lng],
    );

    // Org o: in city o % C, named after a family and a trade.
    await step(
      'orgs',
      `INSERT INTO orgs (id, name, city, created_at, updated_at)
       SELECT seed_uuid('org-' || o),
              ($1::text[])[1 + o % $3] || ' ' || ($2::text[])[1 + (o / $3) % $4]
                || CASE WHEN o >= $3 * $4 THEN ' ' || (o / ($3 * $4) + 1) ELSE '' END,
              c.name, now() - interval '420 days', now()
       FROM generate_series(0, $5 - 1) o JOIN seed_cities c ON c.ci = o % ${C}
       ON CONFLICT DO NOTHING`,
      [SURNAMES, TRADES, SURNAMES.length, TRADES.length, orgs],
    );
    await step(
      'users',
      `INSERT INTO users (id, phone, name, password_hash, created_at, updated_at)
       SELECT seed_uuid('owner-' || o), '+91790' || lpad(o::text, 7, '0'),
              ($1::text[])[1 + (o * 7) % $2] || ' ' || ($3::text[])[1 + o % $4], $5, now() - interval '420 days', now()
       FROM generate_series(0, $6 - 1) o
       UNION ALL
       SELECT seed_uuid('driver-user-' || (d / $7) || '-' || (d % $7)), '+91791' || lpad(((d / $7) * 10 + d % $7)::text, 7, '0'),
              ($1::text[])[1 + (d * 11) % $2] || ' ' || ($3::text[])[1 + (d * 5) % $4], $5, now() - interval '420 days', now()
       FROM generate_series(0, $6::int * $7::int - 1) d
       ON CONFLICT DO NOTHING`,
      [FIRST_NAMES, FIRST_NAMES.length, SURNAMES, SURNAMES.length, opts.passwordHash, orgs, per],
    );
    await step(
      'memberships',
      `INSERT INTO memberships (id, org_id, user_id, role, created_at)
       SELECT seed_uuid('m-owner-' || o), seed_uuid('org-' || o), seed_uuid('owner-' || o), 'OWNER'::role, now() - interval '420 days'
       FROM generate_series(0, $1 - 1) o
       UNION ALL
       SELECT seed_uuid('m-driver-' || (d / $2) || '-' || (d % $2)), seed_uuid('org-' || (d / $2)),
              seed_uuid('driver-user-' || (d / $2) || '-' || (d % $2)), 'DRIVER'::role,
              now() - interval '420 days'
       FROM generate_series(0, $1::int * $2::int - 1) d
       ON CONFLICT DO NOTHING`,
      [orgs, per],
    );
    await step(
      'driver_profiles',
      `INSERT INTO driver_profiles (id, org_id, user_id, license_no, device_id, created_at)
       SELECT seed_uuid('driver-' || (d / $2) || '-' || (d % $2)), seed_uuid('org-' || (d / $2)),
              seed_uuid('driver-user-' || (d / $2) || '-' || (d % $2)),
              c.rto || '-20' || lpad(((d * 7919) % 100000000)::text, 11, '0'), 'seed-device-' || (d / $2) || '-' || (d % $2),
              now() - interval '420 days'
       FROM generate_series(0, $1::int * $2::int - 1) d JOIN seed_cities c ON c.ci = (d / $2) % ${C}
       ON CONFLICT DO NOTHING`,
      [orgs, per],
    );
    await step(
      'trucks',
      `INSERT INTO trucks (id, org_id, number, type, capacity_kg, created_at)
       SELECT seed_uuid('truck-' || (d / $2) || '-' || (d % $2)), seed_uuid('org-' || (d / $2)),
              c.rto || ' ' || chr(65 + (d / 26) % 26) || chr(65 + d % 26) || ' ' || lpad(((d / $2) * 10 + d % $2)::text, 4, '0'),
              (ARRAY['TRAILER', 'CONTAINER', 'OPEN_BODY', 'TANKER'])[1 + d % 4], (ARRAY[25000, 16000, 9000, 12000])[1 + d % 4],
              now() - interval '420 days'
       FROM generate_series(0, $1::int * $2::int - 1) d JOIN seed_cities c ON c.ci = (d / $2) % ${C}
       ON CONFLICT DO NOTHING`,
      [orgs, per],
    );

    // The plan of every trip, worked out once (a temporary table): who, where, when, which status and how many pings.
    // Trip i: source org i % orgs, driver and truck k of that org; the last orgs × per trips are each driver's newest
    // (one per driver and truck), the only ones that may be active, so one active trip per driver and truck holds.
    const block = orgs * per;
    await sql.query(
      `CREATE TEMP TABLE seed_plan ON COMMIT PRESERVE ROWS AS
       WITH base AS (
         SELECT i, i % $1 AS src,
                (i % $1 + 1 + ((i / $1) * 7919 + i) % ($1 - 1)) % $1 AS dst,
                (i / $1) % $2 AS k,
                CASE WHEN i >= $3 - $4 THEN
                  CASE WHEN i % 2 = 0 THEN (ARRAY['LOADING', 'IN_TRANSIT', 'ARRIVED'])[1 + ((i / 2) % 3)::int]
                       WHEN i % 10 = 1 THEN 'PLANNED' ELSE 'COMPLETED' END
                ELSE CASE WHEN i % 20 = 7 THEN 'CANCELLED' ELSE 'COMPLETED' END END AS status,
                (((i * 7919) % 301 - 150) / 1000.0)::float8 AS bend
         FROM generate_series(0::bigint, $3::bigint - 1) i
       ), placed AS (
         SELECT b.*, sc.ci AS sci,
                CASE WHEN b.dst % ${C} = sc.ci THEN (sc.ci + 1 + b.i % ${C - 1}) % ${C} ELSE b.dst % ${C} END AS dci
         FROM base b JOIN seed_cities sc ON sc.ci = b.src % ${C}
       ), routed AS (
         SELECT p.*, s.name AS start_name, s.lat AS lat1, s.lng AS lng1, e.name AS end_name, e.lat AS lat2, e.lng AS lng2,
                seed_distance_m(s.lat, s.lng, e.lat, e.lng) * 1.2 AS road_m,
                CASE p.status WHEN 'COMPLETED' THEN 1.0 WHEN 'ARRIVED' THEN 1.0
                              WHEN 'IN_TRANSIT' THEN 0.2 + ((p.i / 2) % 7) / 10.0 ELSE 0.0 END::float8 AS frac,
                p.status NOT IN ('PLANNED', 'CANCELLED') AS moving
         FROM placed p JOIN seed_cities s ON s.ci = p.sci JOIN seed_cities e ON e.ci = p.dci
       ), ranked AS (
         SELECT r.*, r.road_m / 13.0 AS duration_s,
                CASE WHEN r.moving THEN row_number() OVER (PARTITION BY r.moving ORDER BY r.i) - 1 END AS mrank,
                count(*) FILTER (WHERE r.moving) OVER () AS movers
         FROM routed r
       )
       SELECT i, src, dst, k, status, bend, start_name, lat1, lng1, end_name, lat2, lng2, road_m, frac, duration_s,
              CASE WHEN NOT moving OR movers = 0 THEN 0
                   ELSE $5 / movers + CASE WHEN mrank < $5 % movers THEN 1 ELSE 0 END END::int AS n_pings,
              -- Older trips spread over the past year; the newest block ends just now.
              CASE WHEN i >= $3 - $4
                   THEN now() - make_interval(secs => 4200 + frac * duration_s + (i % 97) * 60)
                        - CASE WHEN status IN ('COMPLETED', 'PLANNED') THEN interval '2 days' ELSE interval '0' END
                   ELSE now() - interval '400 days' + (i::float8 / greatest($3, 1)) * interval '390 days' END AS created,
              seed_uuid('trip-' || i) AS id
       FROM ranked`,
      [orgs, per, trips, block, pings],
    );
    await sql.query(`CREATE INDEX ON seed_plan (i)`);
    await sql.query(`ANALYZE seed_plan`);

    // Ping p of a trip's n: the first 55 minutes at the origin (loading), then along the road at about 13 m/s.
    const pingSelect = (series: string) => `
      SELECT pl.i, pl.id AS trip_id,
             pl.created + make_interval(secs => 300 + (p::float8 / greatest(pl.n_pings, 1)) * s.span) AS recorded_at,
             q.pt[1] + ((p * 7) % 11 - 5) * 0.00001 AS lat, q.pt[2] + ((p * 13) % 11 - 5) * 0.00001 AS lng,
             (5 + p % 10)::float8 AS accuracy,
             CASE WHEN ff.f > 0 AND ff.f < 1 THEN 13 + 4 * sin(p) ELSE 0 END AS speed,
             ((degrees(atan2((pl.lng2 - pl.lng1) * cos(radians(pl.lat1)), pl.lat2 - pl.lat1)) + 360)::numeric % 360)::float8 AS heading,
             (250 + p % 40)::float8 AS altitude
      FROM seed_plan pl,
           LATERAL (SELECT 3300 + pl.frac * pl.duration_s AS span) s,
           LATERAL ${series} p,
           LATERAL (SELECT greatest(0, least(1, ((p::float8 / greatest(pl.n_pings, 1)) * s.span - 3300) / pl.duration_s)) AS f) ff,
           -- routePoint (india-routes.ts): the straight line, bowed by \`bend\` and two small wiggles.
           LATERAL (SELECT sin(pi() * ff.f) * pl.bend + sin(pi() * ff.f * 7) * 0.012 + sin(pi() * ff.f * 23) * 0.004 AS side) w,
           LATERAL (SELECT ARRAY[pl.lat1 + (pl.lat2 - pl.lat1) * ff.f - (pl.lng2 - pl.lng1) * w.side,
                                 pl.lng1 + (pl.lng2 - pl.lng1) * ff.f + (pl.lat2 - pl.lat1) * w.side] AS pt) q
      WHERE pl.n_pings > 0`;

    await step(
      'trips',
      `INSERT INTO trips (id, source_org_id, destination_org_id, truck_id, driver_id, status,
                          start_name, start_lat, start_lng, end_name, end_lat, end_lng, estimated_arrival, distance_km,
                          latest_lat, latest_lng, latest_speed, latest_heading, latest_recorded_at, created_at, updated_at)
       SELECT pl.id, seed_uuid('org-' || pl.src), seed_uuid('org-' || pl.dst),
              seed_uuid('truck-' || pl.src || '-' || pl.k), seed_uuid('driver-' || pl.src || '-' || pl.k), pl.status::trip_status,
              pl.start_name, pl.lat1, pl.lng1, pl.end_name, pl.lat2, pl.lng2,
              pl.created + make_interval(secs => 3600 + pl.duration_s * 1.1), round((pl.road_m * pl.frac / 1000)::numeric, 1)::float8,
              last.lat, last.lng, last.speed, last.heading, last.recorded_at,
              pl.created, coalesce(last.recorded_at, pl.created)
       FROM seed_plan pl
       LEFT JOIN (${pingSelect('generate_series(pl.n_pings, pl.n_pings)')}) last ON last.trip_id = pl.id
       ON CONFLICT DO NOTHING`,
    );

    // Pings, one statement per chunk of trips; a chunk whose last moving trip has all its pings is done already.
    const totalPings = Number(
      (await sql.query(`SELECT coalesce(sum(n_pings), 0)::bigint AS n FROM seed_plan`)).rows[0].n,
    );
    try {
      // Without foreign-key triggers (superuser only): the trips were just written.
      await sql.query(`SET session_replication_role = replica`);
    } catch {
      /* not a superuser: the checks run, a little slower */
    }
    let done = 0;
    let pingRows = 0;
    const pingStart = Date.now();
    for (let lo = 0; lo < trips; lo += chunkTrips) {
      const hi = Math.min(trips, lo + chunkTrips) - 1;
      const inChunk = await sql.query<{ n: string; last_id: string | null; last_n: number | null }>(
        `SELECT sum(n_pings)::bigint AS n,
                (array_agg(id ORDER BY i DESC) FILTER (WHERE n_pings > 0))[1] AS last_id,
                (array_agg(n_pings ORDER BY i DESC) FILTER (WHERE n_pings > 0))[1] AS last_n
         FROM seed_plan WHERE i BETWEEN $1 AND $2`,
        [lo, hi],
      );
      const { n, last_id: lastId, last_n: lastN } = inChunk.rows[0];
      if (lastId) {
        const have = await sql.query<{ c: number }>(`SELECT count(*)::int AS c FROM trip_pings WHERE trip_id = $1`, [
          lastId,
        ]);
        if (have.rows[0].c < (lastN ?? 0)) {
          const res = await sql.query(
            `INSERT INTO trip_pings (trip_id, recorded_at, lat, lng, accuracy, speed, heading, altitude, received_at)
             SELECT trip_id, recorded_at, lat, lng, accuracy, speed, heading, altitude, recorded_at + interval '2 seconds'
             FROM (${pingSelect('generate_series(1, pl.n_pings)')} AND pl.i BETWEEN $1 AND $2) x
             ON CONFLICT DO NOTHING`,
            [lo, hi],
          );
          pingRows += res.rowCount ?? 0;
        }
      }
      done += Number(n ?? 0);
      const pct = totalPings ? Math.round((done * 100) / totalPings) : 100;
      log(
        `pings: ${done.toLocaleString('en-US')} / ${totalPings.toLocaleString('en-US')} (${pct}%), +${pingRows.toLocaleString('en-US')} new, ${rate(pingRows, Date.now() - pingStart)} rows/s`,
        { sameLine: true },
      );
    }
    await sql.query(`SET session_replication_role = origin`).catch(() => undefined);
    added.trip_pings = pingRows;
    log(`pings: +${pingRows.toLocaleString('en-US')} rows, ${rate(pingRows, Date.now() - pingStart)} rows/s`);

    // Ledger: one INR account per pair of orgs that invoiced; every tenth completed trip invoiced by its source org
    // (freight about ₹40 a km, in paise), most of them paid by the destination org, in full or in part.
    await sql.query(
      `CREATE TEMP TABLE seed_invoices ON COMMIT PRESERVE ROWS AS
       SELECT pl.i, pl.id AS trip_id, seed_uuid('org-' || pl.src) AS seller, seed_uuid('org-' || pl.dst) AS buyer,
              seed_uuid('owner-' || pl.src) AS seller_user, seed_uuid('owner-' || pl.dst) AS buyer_user,
              least(seed_uuid('org-' || pl.src), seed_uuid('org-' || pl.dst)) AS org_a,
              greatest(seed_uuid('org-' || pl.src), seed_uuid('org-' || pl.dst)) AS org_b,
              (round(pl.road_m / 1000 * 40) * 100 + (pl.i % 100) * 100)::bigint AS amount,
              CASE WHEN (pl.i / 10) % 4 IN (0, 2) THEN 1.0 WHEN (pl.i / 10) % 4 = 1 THEN 0.5 ELSE 0 END AS paid_share,
              pl.created + make_interval(secs => 3600 + pl.duration_s) AS delivered_at
       FROM seed_plan pl WHERE pl.status = 'COMPLETED' AND pl.i % 10 = 3`,
    );
    // A posting's ids are named by the trip and the account: a run of other sizes (another trip i) never collides.
    await sql.query(
      `ALTER TABLE seed_invoices ADD COLUMN tag text;
       UPDATE seed_invoices SET tag = i || '-' || org_a || '-' || org_b`,
    );
    await step(
      'ledger_accounts',
      `INSERT INTO ledger_accounts (id, org_a_id, org_b_id, currency, created_by_id, created_at)
       SELECT DISTINCT ON (org_a, org_b) seed_uuid('account-' || org_a || '-' || org_b), org_a, org_b, 'INR', seller_user,
              now() - interval '410 days'
       FROM seed_invoices ORDER BY org_a, org_b, i
       ON CONFLICT DO NOTHING`,
    );
    const posting = (kind: 'inv' | 'pay') => `seed_uuid('${kind}-posting-' || s.tag)`;
    const INVOICE = `jsonb_build_object(
        'kind', 'INVOICE', 'accountId', seed_uuid('account-' || s.org_a || '-' || s.org_b), 'side', s.seller,
        'userId', s.seller_user, 'idempotencyKey', 'seed-invoice-' || s.i, 'requestHash', md5('seed-invoice-' || s.i),
        'now', s.delivered_at, 'postingId', ${posting('inv')}, 'documentId', seed_uuid('invoice-' || s.tag),
        'entryIds', jsonb_build_array(seed_uuid('inv-entry-a-' || s.tag), seed_uuid('inv-entry-b-' || s.tag)),
        'outboxIds', jsonb_build_array(seed_uuid('inv-outbox-1-' || s.tag), seed_uuid('inv-outbox-2-' || s.tag)),
        'memo', 'Freight ' || pl.start_name || ' to ' || pl.end_name,
        'invoice', jsonb_build_object('number', 'INV-' || lpad(s.i::text, 7, '0'), 'amount', s.amount,
                                      'tripId', s.trip_id, 'dueDate', to_char(s.delivered_at + interval '30 days', 'YYYY-MM-DD')))`;
    const PAYMENT = `jsonb_build_object(
        'kind', 'PAYMENT', 'accountId', seed_uuid('account-' || s.org_a || '-' || s.org_b), 'side', s.buyer,
        'userId', s.buyer_user, 'idempotencyKey', 'seed-payment-' || s.i, 'requestHash', md5('seed-payment-' || s.i),
        'now', s.delivered_at + interval '3 days', 'postingId', ${posting('pay')}, 'documentId', seed_uuid('payment-' || s.tag),
        'entryIds', jsonb_build_array(seed_uuid('pay-entry-a-' || s.tag), seed_uuid('pay-entry-b-' || s.tag)),
        'outboxIds', jsonb_build_array(seed_uuid('pay-outbox-1-' || s.tag), seed_uuid('pay-outbox-2-' || s.tag)),
        'memo', NULL,
        'payment', jsonb_build_object('amount', round(s.amount * s.paid_share)::bigint,
                                      'method', (ARRAY['UPI', 'NEFT', 'RTGS', 'CHEQUE'])[1 + (s.i % 4)::int],
                                      'reference', 'UTR' || lpad(s.i::text, 10, '0'),
                                      'invoiceId', seed_uuid('invoice-' || s.tag), 'direction', 'PAID'))`;
    const invoiceCount = Number((await sql.query(`SELECT count(*)::int AS n FROM seed_invoices`)).rows[0].n);
    let posted = 0;
    let postings = 0;
    let refused = 0;
    const ledgerStart = Date.now();
    const chunk = 1000;
    for (let lo = 0; lo < trips; lo += chunk * 10) {
      const hi = Math.min(trips, lo + chunk * 10) - 1;
      const last = await sql.query<{ tag: string; paid: boolean }>(
        `SELECT tag, paid_share > 0 AS paid FROM seed_invoices WHERE i BETWEEN $1 AND $2 ORDER BY i DESC LIMIT 1`,
        [lo, hi],
      );
      if (last.rowCount === 0) continue;
      const lastPosting = `seed_uuid('${last.rows[0].paid ? 'pay' : 'inv'}-posting-' || $1::text)`;
      const there = await sql.query(`SELECT 1 FROM ledger_postings WHERE id = ${lastPosting}`, [last.rows[0].tag]);
      const inChunk = Number(
        (
          await sql.query(
            `SELECT count(*) + count(*) FILTER (WHERE paid_share > 0) AS n FROM seed_invoices WHERE i BETWEEN $1 AND $2`,
            [lo, hi],
          )
        ).rows[0].n,
      );
      if (there.rowCount === 0) {
        for (const [doc, filter] of [
          [INVOICE, ''],
          [PAYMENT, 'AND s.paid_share > 0'],
        ] as const) {
          // Called in trip order (ledger times only move forward on an account); replays answer `replayed`.
          const res = await sql.query<{ fresh: number; failed: number; errors: string[] | null }>(
            `SELECT count(*) FILTER (WHERE NOT (r ? 'error') AND NOT coalesce((r->>'replayed')::boolean, false))::int AS fresh,
                    count(*) FILTER (WHERE r ? 'error')::int AS failed,
                    (array_agg(DISTINCT r->>'error') FILTER (WHERE r ? 'error')) AS errors
             FROM (SELECT ledger_post(${doc}) AS r
                   FROM seed_invoices s JOIN seed_plan pl ON pl.i = s.i
                   WHERE s.i BETWEEN $1 AND $2 ${filter} ORDER BY s.i) x`,
            [lo, hi],
          );
          postings += res.rows[0].fresh;
          refused += res.rows[0].failed;
          if (res.rows[0].failed > 0)
            log(`ledger: ${res.rows[0].failed} refused (${(res.rows[0].errors ?? []).join(', ')})`);
        }
      }
      posted += inChunk;
      log(
        `ledger postings: ${posted.toLocaleString('en-US')} planned so far, +${postings.toLocaleString('en-US')} new, ${rate(postings, Date.now() - ledgerStart)} postings/s`,
        {
          sameLine: true,
        },
      );
    }
    added.ledger_postings = postings;
    log(
      `ledger: ${invoiceCount.toLocaleString('en-US')} invoices planned, +${postings.toLocaleString('en-US')} postings` +
        (refused ? `, ${refused} refused` : ''),
    );
    await sql.query(`ANALYZE orgs, users, memberships, driver_profiles, trucks, trips, trip_pings, ledger_accounts`);
    return { added, seconds: Math.round((Date.now() - started) / 100) / 10 };
  } finally {
    // The helpers go even when a step failed: nothing of the generator stays in the schema.
    await sql.query(`RESET session_replication_role; ${DROP_HELPERS}`).catch(() => undefined);
    await sql.end();
  }
}
