-- Points committed but not yet counted in their trip's distance, latest location and detectors:
-- one row per trip per ping flush, inserted by the flush's own statement and deleted by the
-- after-flush round (of any node) that counts them, under the trip's row lock.
-- CreateTable
CREATE TABLE "trip_ping_backlog" (
    "id" BIGSERIAL NOT NULL,
    "trip_id" UUID NOT NULL,
    "recorded_at" TIMESTAMPTZ(3)[] NOT NULL,
    "lat" DOUBLE PRECISION[] NOT NULL,
    "lng" DOUBLE PRECISION[] NOT NULL,
    "speed" DOUBLE PRECISION[] NOT NULL,
    "heading" DOUBLE PRECISION[] NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "trip_ping_backlog_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "trip_ping_backlog_trip_id_idx" ON "trip_ping_backlog"("trip_id");

-- AddForeignKey
ALTER TABLE "trip_ping_backlog" ADD CONSTRAINT "trip_ping_backlog_trip_id_fkey" FOREIGN KEY ("trip_id") REFERENCES "trips"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Takes (deletes and returns) the backlog of these trips, one row per point, in (trip, time) order.
-- The table churns (every row is deleted within milliseconds of its insert) faster than autovacuum
-- visits it: a bitmap scan would walk every dead index entry since the last vacuum, while a plain
-- index scan marks the dead entries it meets, so later scans (and inserts) skip and reclaim them.
CREATE FUNCTION take_trip_ping_backlog(trip_ids uuid[])
RETURNS TABLE (trip_id uuid, recorded_at timestamptz, lat float8, lng float8, speed float8, heading float8)
LANGUAGE sql
SET enable_bitmapscan = off
SET enable_seqscan = off
AS $$
  WITH taken AS (
    DELETE FROM trip_ping_backlog b WHERE b.trip_id = ANY(trip_ids)
    RETURNING b.trip_id, b.recorded_at, b.lat, b.lng, b.speed, b.heading
  )
  SELECT taken.trip_id, p.recorded_at, p.lat, p.lng, p.speed, p.heading
  FROM taken, unnest(taken.recorded_at, taken.lat, taken.lng, taken.speed, taken.heading)
    AS p(recorded_at, lat, lng, speed, heading)
  ORDER BY 1, 2
$$;
