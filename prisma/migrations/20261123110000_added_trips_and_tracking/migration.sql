-- CreateEnum
CREATE TYPE "trip_status" AS ENUM ('PLANNED', 'LOADING', 'IN_TRANSIT', 'ARRIVED', 'COMPLETED', 'CANCELLED');

-- CreateEnum
CREATE TYPE "trip_event_type" AS ENUM ('STATUS_CHANGED', 'ARRIVAL', 'OVERSPEED', 'STOPPED', 'SCAN');

-- CreateTable
CREATE TABLE "trips" (
    "id" UUID NOT NULL,
    "source_org_id" UUID NOT NULL,
    "destination_org_id" UUID NOT NULL,
    "truck_id" UUID NOT NULL,
    "driver_id" UUID NOT NULL,
    "status" "trip_status" NOT NULL DEFAULT 'PLANNED',
    "start_name" TEXT NOT NULL,
    "start_lat" DOUBLE PRECISION NOT NULL,
    "start_lng" DOUBLE PRECISION NOT NULL,
    "end_name" TEXT NOT NULL,
    "end_lat" DOUBLE PRECISION NOT NULL,
    "end_lng" DOUBLE PRECISION NOT NULL,
    "estimated_arrival" TIMESTAMPTZ(3),
    "distance_km" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "latest_lat" DOUBLE PRECISION,
    "latest_lng" DOUBLE PRECISION,
    "latest_speed" DOUBLE PRECISION,
    "latest_heading" DOUBLE PRECISION,
    "latest_recorded_at" TIMESTAMPTZ(3),
    "detector_state" JSONB,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "trips_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "trip_pings" (
    "trip_id" UUID NOT NULL,
    "recorded_at" TIMESTAMPTZ(3) NOT NULL,
    "lat" DOUBLE PRECISION NOT NULL,
    "lng" DOUBLE PRECISION NOT NULL,
    "accuracy" DOUBLE PRECISION,
    "speed" DOUBLE PRECISION,
    "heading" DOUBLE PRECISION,
    "altitude" DOUBLE PRECISION,
    "batch_id" TEXT,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "trip_pings_pkey" PRIMARY KEY ("trip_id","recorded_at")
);

-- CreateTable
CREATE TABLE "trip_events" (
    "id" UUID NOT NULL,
    "trip_id" UUID NOT NULL,
    "type" "trip_event_type" NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL,
    "data" JSONB,
    "actor_user_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "trip_events_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "trips_source_org_id_status_created_at_id_idx" ON "trips"("source_org_id", "status", "created_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "trips_destination_org_id_status_created_at_id_idx" ON "trips"("destination_org_id", "status", "created_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "trips_source_org_id_created_at_id_idx" ON "trips"("source_org_id", "created_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "trips_destination_org_id_created_at_id_idx" ON "trips"("destination_org_id", "created_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "trips_driver_id_status_created_at_id_idx" ON "trips"("driver_id", "status", "created_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "trips_truck_id_status_idx" ON "trips"("truck_id", "status");

-- CreateIndex
CREATE INDEX "trip_pings_recorded_at_idx" ON "trip_pings" USING BRIN ("recorded_at");

-- CreateIndex
CREATE INDEX "trip_events_trip_id_created_at_id_idx" ON "trip_events"("trip_id", "created_at" DESC, "id" DESC);

-- AddForeignKey
ALTER TABLE "trips" ADD CONSTRAINT "trips_source_org_id_fkey" FOREIGN KEY ("source_org_id") REFERENCES "orgs"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "trips" ADD CONSTRAINT "trips_destination_org_id_fkey" FOREIGN KEY ("destination_org_id") REFERENCES "orgs"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "trips" ADD CONSTRAINT "trips_truck_id_fkey" FOREIGN KEY ("truck_id") REFERENCES "trucks"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "trips" ADD CONSTRAINT "trips_driver_id_fkey" FOREIGN KEY ("driver_id") REFERENCES "driver_profiles"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "trip_pings" ADD CONSTRAINT "trip_pings_trip_id_fkey" FOREIGN KEY ("trip_id") REFERENCES "trips"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "trip_events" ADD CONSTRAINT "trip_events_trip_id_fkey" FOREIGN KEY ("trip_id") REFERENCES "trips"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Beyond what Prisma expresses:
-- A driver and a truck have at most one active trip. The service checks this
-- under row locks and reports DRIVER_BUSY / TRUCK_BUSY; these partial unique
-- indexes make it impossible to break even by a bug or a second writer.
CREATE UNIQUE INDEX "trips_one_active_per_driver" ON "trips"("driver_id") WHERE "status" IN ('LOADING', 'IN_TRANSIT', 'ARRIVED');
CREATE UNIQUE INDEX "trips_one_active_per_truck" ON "trips"("truck_id") WHERE "status" IN ('LOADING', 'IN_TRANSIT', 'ARRIVED');

-- The latest location and distance are rewritten once per trip per ping
-- flush; free space on each page lets those updates stay HOT (no index churn).
ALTER TABLE "trips" SET (fillfactor = 80);
