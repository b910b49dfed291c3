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
