-- A driver's tracker token (the OsmAnd credential) is stored only as its
-- SHA-256 hex digest; lookups go by the digest. Existing drivers get no token
-- until one is issued (POST /orgs/:orgId/drivers/:driverId/tracker-token).
ALTER TABLE "driver_profiles" ADD COLUMN "tracker_token_hash" TEXT;

CREATE UNIQUE INDEX "driver_profiles_tracker_token_hash_key" ON "driver_profiles"("tracker_token_hash");
