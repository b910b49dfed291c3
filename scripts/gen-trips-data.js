#!/usr/bin/env node
// Fills a dedicated benchmark database with trips and pings, in SQL
// (generate_series), not over HTTP: 200 orgs, 2,000 drivers and trucks,
// 200,000 trips over the last year and 5,000,000 pings, in a few minutes.
//
//   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/waybill_bench node scripts/gen-trips-data.js
//
// Creates and migrates the database if needed (src/infra/db/migrate.cli.ts).
// Reuses it when it already holds the data set (same sizes): nothing is
// regenerated. GEN_TRIPS / GEN_PINGS change the sizes; GEN_FORCE=1 regenerates.
//
// Shape, so that the list filters have something to walk: org 0 ("Big
// Shipper") is the source of a quarter of all trips (50k), every other org of
// ~750; a trip's driver and truck belong to its source org (10 each per org,
// so a driver of org 0 has ~5,000 trips); statuses mostly COMPLETED, some
// CANCELLED and PLANNED, and the newest trip of every other driver active
// (LOADING, IN_TRANSIT or ARRIVED: the one-active-trip-per-driver/truck indexes hold).
const { spawnSync } = require('node:child_process');
const { URL } = require('node:url');
const path = require('node:path');
const { Client } = require('pg');

const ROOT = path.join(__dirname, '..');
const DEFAULT_URL = 'postgresql://postgres@127.0.0.1:5432/waybill_bench';
const ORGS = 200;
const PER_ORG = 10; // drivers and trucks per org
/** Bumped when the shape of the data changes, so that an older data set is regenerated. */
const DATA_VERSION = 2;

function settings(env = process.env) {
  return {
    url: env.DATABASE_URL || DEFAULT_URL,
    trips: Number(env.GEN_TRIPS || 200_000),
    pings: Number(env.GEN_PINGS || 5_000_000),
    force: env.GEN_FORCE === '1',
  };
}

function migrateDatabase(url) {
  const res = spawnSync(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', path.join(ROOT, 'src', 'infra', 'db', 'migrate.cli.ts')],
    {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: url, TS_NODE_PROJECT: path.join(ROOT, 'tsconfig.json') },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  if (res.status !== 0) throw new Error('migration of the benchmark database failed');
}

/** The data set recorded by the last complete generation, or null. */
async function current(sql) {
  const { rows } = await sql
    .query(`SELECT value FROM bench_dataset WHERE name = 'trips-list'`)
    .catch(() => ({ rows: [] }));
  return rows[0] ? rows[0].value : null;
}

const log = (msg) => process.stderr.write(`gen-trips-data: ${msg}\n`);

async function timed(sql, label, text) {
  const started = Date.now();
  const res = await sql.query(text);
  log(`${label}: ${res.rowCount ?? ''} rows, ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/**
 * Ensures the data set; returns its description and whether it was generated now.
 * @returns {Promise<{ url: string, trips: number, pings: number, generated: boolean, seconds: number }>}
 */
async function ensureTripsData(env = process.env) {
  const s = settings(env);
  const started = Date.now();
  const name = new URL(s.url).pathname.slice(1);
  if (!/^[a-z0-9_]+$/.test(name) || !name.includes('bench'))
    throw new Error(`refusing to fill ${name}: the database name must contain "bench"`);
  const adminUrl = new URL(s.url);
  adminUrl.pathname = '/postgres';
  const admin = new Client({ connectionString: adminUrl.toString() });
  await admin.connect();
  try {
    const exists = (await admin.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [name])).rowCount > 0;
    if (exists) {
      const probe = new Client({ connectionString: s.url });
      await probe.connect();
      const have = await current(probe).finally(() => probe.end());
      if (!s.force && have && have.version === DATA_VERSION && have.trips === s.trips && have.pings === s.pings) {
        return { url: s.url, trips: s.trips, pings: s.pings, generated: false, seconds: 0 };
      }
      // Another data set, or half made: start from an empty database.
      await admin.query(`DROP DATABASE "${name}" WITH (FORCE)`);
    }
  } finally {
    await admin.end();
  }
  migrateDatabase(s.url);
  const sql = new Client({ connectionString: s.url });
  await sql.connect();
  try {
    await sql.query(`CREATE TABLE IF NOT EXISTS bench_dataset (name text PRIMARY KEY, value jsonb NOT NULL)`);
    log(`generating ${s.trips} trips and ${s.pings} pings into ${name}`);
    await sql.query(`SET synchronous_commit = off`);
    await sql.query(`SET maintenance_work_mem = '256MB'`);
    await sql.query(`SET work_mem = '64MB'`);

    // Deterministic ids from a label (md5 shaped as a version-4 uuid), so that a rerun produces the same rows
    // and the benchmark finds them: bench_uuid('org-0') is the big org, bench_uuid('driver-0') its first driver.
    await sql.query(`CREATE OR REPLACE FUNCTION bench_uuid(label text) RETURNS uuid IMMUTABLE LANGUAGE sql AS $$
      SELECT (substr(h, 1, 12) || '4' || substr(h, 14, 3) || '8' || substr(h, 18, 15))::uuid FROM md5(label) h $$`);
    const id = (label) => `bench_uuid(${label})`;
    await timed(
      sql,
      'orgs',
      `INSERT INTO orgs (id, name, city, created_at, updated_at)
       SELECT ${id(`'org-' || o`)}, CASE WHEN o = 0 THEN 'Big Shipper' ELSE 'Bench Org ' || o END, 'Jaipur', now() - interval '400 days', now()
       FROM generate_series(0, ${ORGS - 1}) o`,
    );
    // Users: one owner per org, one user per driver. The hash is not a usable password: the benchmark registers its own users.
    await timed(
      sql,
      'users',
      `INSERT INTO users (id, phone, name, password_hash, created_at, updated_at)
       SELECT ${id(`'owner-' || o`)}, '+9170' || lpad(o::text, 8, '0'), 'Owner ' || o, 'x', now() - interval '400 days', now()
       FROM generate_series(0, ${ORGS - 1}) o
       UNION ALL
       SELECT ${id(`'driver-user-' || d`)}, '+9171' || lpad(d::text, 8, '0'), 'Driver ' || d, 'x', now() - interval '400 days', now()
       FROM generate_series(0, ${ORGS * PER_ORG - 1}) d`,
    );
    await timed(
      sql,
      'memberships',
      `INSERT INTO memberships (id, org_id, user_id, role, created_at)
       SELECT ${id(`'m-owner-' || o`)}, ${id(`'org-' || o`)}, ${id(`'owner-' || o`)}, 'OWNER'::role, now() - interval '400 days'
       FROM generate_series(0, ${ORGS - 1}) o
       UNION ALL
       SELECT ${id(`'m-driver-' || d`)}, ${id(`'org-' || (d / ${PER_ORG})`)}, ${id(`'driver-user-' || d`)}, 'DRIVER'::role, now() - interval '400 days'
       FROM generate_series(0, ${ORGS * PER_ORG - 1}) d`,
    );
    await timed(
      sql,
      'drivers and trucks',
      `WITH d AS (SELECT d FROM generate_series(0, ${ORGS * PER_ORG - 1}) d),
       drivers AS (
         INSERT INTO driver_profiles (id, org_id, user_id, device_id, created_at)
         SELECT ${id(`'driver-' || d`)}, ${id(`'org-' || (d / ${PER_ORG})`)}, ${id(`'driver-user-' || d`)}, 'bench-device-' || d, now() - interval '400 days' FROM d
         RETURNING 1)
       INSERT INTO trucks (id, org_id, number, created_at)
       SELECT ${id(`'truck-' || d`)}, ${id(`'org-' || (d / ${PER_ORG})`)}, 'RJ14 B ' || d, now() - interval '400 days' FROM d`,
    );
    // Trip i: source org 0 for every 4th trip, else one of the other orgs; destination another org;
    // driver/truck k of the source org; created over the last 365 days, newest = highest i.
    await timed(
      sql,
      'trips',
      `INSERT INTO trips (id, source_org_id, destination_org_id, truck_id, driver_id, status,
                          start_name, start_lat, start_lng, end_name, end_lat, end_lng,
                          distance_km, created_at, updated_at)
       SELECT ${id(`'trip-' || i`)}, ${id(`'org-' || src`)}, ${id(`'org-' || dst`)},
              ${id(`'truck-' || (src * ${PER_ORG} + k)`)}, ${id(`'driver-' || (src * ${PER_ORG} + k)`)},
              (CASE WHEN i % 20 = 0 THEN 'CANCELLED' WHEN i % 20 IN (1, 2) THEN 'PLANNED' ELSE 'COMPLETED' END)::trip_status,
              'Jaipur', 26.9124, 75.7873, 'Delhi', 28.6139, 77.209,
              (i % 300)::float8, created, created
       FROM (
         SELECT i,
                CASE WHEN i % 4 = 0 THEN 0 ELSE 1 + (i * 7919) % ${ORGS - 1} END AS src,
                (i * 104729 + 1) % ${ORGS} AS dst0,
                (i / 4) % ${PER_ORG} AS k,
                now() - interval '365 days' + (i::float8 / ${s.trips}) * interval '365 days' AS created
         FROM generate_series(0::bigint, ${s.trips - 1}) i
       ) g, LATERAL (SELECT CASE WHEN g.dst0 = g.src THEN (g.src + 1) % ${ORGS} ELSE g.dst0 END AS dst) x`,
    );
    // The newest trip of every other driver is on the road (one active trip per driver and truck).
    await timed(
      sql,
      'active trips',
      `UPDATE trips t SET status = (CASE WHEN n.rn % 3 = 0 THEN 'LOADING' WHEN n.rn % 3 = 1 THEN 'IN_TRANSIT' ELSE 'ARRIVED' END)::trip_status
       FROM (SELECT id, row_number() OVER (ORDER BY driver_id) AS rn
             FROM (SELECT DISTINCT ON (driver_id) id, driver_id FROM trips ORDER BY driver_id, created_at DESC) newest) n
       WHERE t.id = n.id AND n.rn % 2 = 0`,
    );
    // Pings: the same number for every trip that has been on the road, 30 s apart from its creation.
    const moving = Number(
      (await sql.query(`SELECT count(*)::int AS n FROM trips WHERE status NOT IN ('PLANNED', 'CANCELLED')`)).rows[0].n,
    );
    const perTrip = Math.max(1, Math.ceil(s.pings / moving));
    // Loaded without the primary key and FK trigger, then the key built once (a sort, not 5M index inserts).
    await sql.query(`ALTER TABLE trip_pings DROP CONSTRAINT IF EXISTS trip_pings_pkey`);
    await sql.query(`SET session_replication_role = replica`);
    await timed(
      sql,
      'pings',
      `INSERT INTO trip_pings (trip_id, recorded_at, lat, lng, accuracy, speed, heading, altitude, received_at)
       SELECT t.id, t.created_at + p * interval '30 seconds',
              26.9124 + p * 0.0003, 75.7873 + p * 0.0002, 5, 11 + (p % 7), 45, 430, t.created_at + p * interval '30 seconds'
       FROM (SELECT id, created_at FROM trips WHERE status NOT IN ('PLANNED', 'CANCELLED') ORDER BY id) t,
            generate_series(1, ${perTrip}) p
       LIMIT ${s.pings}`,
    );
    await sql.query(`SET session_replication_role = origin`);
    await timed(
      sql,
      'pings primary key',
      `ALTER TABLE trip_pings ADD CONSTRAINT trip_pings_pkey PRIMARY KEY (trip_id, recorded_at)`,
    );
    await timed(
      sql,
      'latest locations',
      `UPDATE trips t SET latest_lat = l.lat, latest_lng = l.lng, latest_speed = l.speed, latest_heading = l.heading, latest_recorded_at = l.recorded_at
       FROM (SELECT DISTINCT ON (trip_id) trip_id, lat, lng, speed, heading, recorded_at FROM trip_pings ORDER BY trip_id, recorded_at DESC) l
       WHERE t.id = l.trip_id`,
    );
    await timed(sql, 'vacuum analyze', `VACUUM (ANALYZE) trips`);
    await timed(sql, 'vacuum analyze pings', `VACUUM (ANALYZE) trip_pings`);
    await sql.query(`VACUUM (ANALYZE) orgs, users, memberships, driver_profiles, trucks`);
    const counts = (
      await sql.query(
        `SELECT (SELECT count(*) FROM trips)::int AS trips, (SELECT count(*) FROM trip_pings)::int AS pings`,
      )
    ).rows[0];
    const seconds = Math.round((Date.now() - started) / 100) / 10;
    await sql.query(`INSERT INTO bench_dataset (name, value) VALUES ('trips-list', $1)`, [
      JSON.stringify({
        version: DATA_VERSION,
        trips: s.trips,
        pings: s.pings,
        stored: counts,
        generatedAt: new Date().toISOString(),
        seconds,
      }),
    ]);
    log(`done: ${counts.trips} trips, ${counts.pings} pings in ${seconds} s`);
    return { url: s.url, trips: s.trips, pings: s.pings, generated: true, seconds };
  } finally {
    await sql.end();
  }
}

module.exports = { ensureTripsData, DEFAULT_URL };

if (require.main === module) {
  ensureTripsData()
    .then((r) => process.stdout.write(`${JSON.stringify(r)}\n`))
    .catch((err) => {
      process.stderr.write(`${err.stack}\n`);
      process.exit(1);
    });
}
