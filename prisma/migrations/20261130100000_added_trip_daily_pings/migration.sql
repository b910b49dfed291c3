-- Points per trip per UTC day (by recorded_at), counted when they are counted into their trip:
-- the after-flush round that takes a trip's backlog (under the trip's row lock, in its own
-- transaction) adds the taken points here. org_stats then reads today's count per trip instead
-- of scanning today's pings at every refresh, a scan that grew through the day (docs/ledger.md).

-- CreateTable
CREATE TABLE "trip_daily_pings" (
    "trip_id" UUID NOT NULL,
    "day" DATE NOT NULL,
    "pings" BIGINT NOT NULL DEFAULT 0,

    CONSTRAINT "trip_daily_pings_pkey" PRIMARY KEY ("trip_id","day")
);

-- CreateIndex
CREATE INDEX "trip_daily_pings_day_idx" ON "trip_daily_pings"("day");

-- AddForeignKey
ALTER TABLE "trip_daily_pings" ADD CONSTRAINT "trip_daily_pings_trip_id_fkey" FOREIGN KEY ("trip_id") REFERENCES "trips"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Points already stored when this runs are counted by the backfill below, whether still in the
-- backlog or not; the backlog rows they belong to get count_daily = false, so taking them later
-- (by this function, or by a round that was already calling the old one) counts nothing twice.
-- Rows inserted from now on get true. The lock holds flushes and rounds until this commits,
-- so no point falls between the backfill and the function.
LOCK TABLE "trip_ping_backlog" IN EXCLUSIVE MODE;

-- AlterTable
ALTER TABLE "trip_ping_backlog" ADD COLUMN "count_daily" BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE "trip_ping_backlog" ALTER COLUMN "count_daily" SET DEFAULT true;

-- Taking the backlog now also counts the taken points per (trip, UTC day), in the same statement.
CREATE OR REPLACE FUNCTION take_trip_ping_backlog(trip_ids uuid[])
RETURNS TABLE (trip_id uuid, recorded_at timestamptz, lat float8, lng float8, speed float8, heading float8)
LANGUAGE sql
SET enable_bitmapscan = off
SET enable_seqscan = off
AS $$
  WITH taken AS (
    DELETE FROM trip_ping_backlog b WHERE b.trip_id = ANY(trip_ids)
    RETURNING b.trip_id, b.recorded_at, b.lat, b.lng, b.speed, b.heading, b.count_daily
  ), points AS (
    SELECT taken.trip_id, p.recorded_at, p.lat, p.lng, p.speed, p.heading, taken.count_daily
    FROM taken, unnest(taken.recorded_at, taken.lat, taken.lng, taken.speed, taken.heading)
      AS p(recorded_at, lat, lng, speed, heading)
  ), counted AS (
    INSERT INTO trip_daily_pings AS d (trip_id, day, pings)
    SELECT points.trip_id, (points.recorded_at AT TIME ZONE 'UTC')::date, count(*)
    FROM points WHERE points.count_daily GROUP BY 1, 2
    ON CONFLICT (trip_id, day) DO UPDATE SET pings = d.pings + EXCLUDED.pings
  )
  SELECT points.trip_id, points.recorded_at, points.lat, points.lng, points.speed, points.heading
  FROM points ORDER BY 1, 2
$$;

-- Backfill of the day this runs (UTC), from today's stretch of the recorded_at BRIN index: the
-- same scan one refresh of the old view made. Earlier days hold only points counted after it.
INSERT INTO "trip_daily_pings" (trip_id, day, pings)
SELECT trip_id, (recorded_at AT TIME ZONE 'UTC')::date, count(*)
FROM "trip_pings"
WHERE recorded_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
GROUP BY 1, 2;

-- org_stats: pings today from the daily counts.
DROP MATERIALIZED VIEW "org_stats";

CREATE MATERIALIZED VIEW "org_stats" AS
WITH trip_sides AS (
  SELECT id, source_org_id AS org_id, status FROM "trips"
  UNION
  SELECT id, destination_org_id AS org_id, status FROM "trips"
),
trips_by_status AS (
  SELECT org_id, jsonb_object_agg(status, n) AS trips_by_status
  FROM (SELECT org_id, status::text AS status, count(*) AS n FROM trip_sides GROUP BY org_id, status) s
  GROUP BY org_id
),
pings_today AS (
  SELECT ts.org_id, sum(d.pings) AS pings_today
  FROM "trip_daily_pings" d
  JOIN trip_sides ts ON ts.id = d.trip_id
  WHERE d.day = (now() AT TIME ZONE 'UTC')::date
  GROUP BY ts.org_id
),
balances AS (
  SELECT org_id, currency,
         sum(greatest(balance, 0)) AS receivable,
         sum(greatest(-balance, 0)) AS payable
  FROM (
    SELECT org_a_id AS org_id, currency, balance FROM "ledger_accounts"
    UNION ALL
    SELECT org_b_id AS org_id, currency, -balance FROM "ledger_accounts"
  ) sides
  GROUP BY org_id, currency
),
money AS (
  SELECT org_id,
         jsonb_object_agg(currency, receivable) AS receivables,
         jsonb_object_agg(currency, payable) AS payables
  FROM balances GROUP BY org_id
)
SELECT o.id AS org_id,
       coalesce(t.trips_by_status, '{}'::jsonb) AS trips_by_status,
       coalesce(p.pings_today, 0)::bigint AS pings_today,
       coalesce(m.receivables, '{}'::jsonb) AS receivables,
       coalesce(m.payables, '{}'::jsonb) AS payables,
       now() AS refreshed_at
FROM "orgs" o
LEFT JOIN trips_by_status t ON t.org_id = o.id
LEFT JOIN pings_today p ON p.org_id = o.id
LEFT JOIN money m ON m.org_id = o.id;

CREATE UNIQUE INDEX "org_stats_org_id_key" ON "org_stats"("org_id");
