-- A driver's trips newest first, whatever their status (GET /trips?driverId=, and a driver's own list).
-- CreateIndex
CREATE INDEX "trips_driver_id_created_at_id_idx" ON "trips"("driver_id", "created_at" DESC, "id" DESC);
