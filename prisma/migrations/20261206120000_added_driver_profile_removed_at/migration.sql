-- A driver profile ends when its user leaves the org (DELETE /orgs/:orgId/members/:userId):
-- the row stays, so the trips that name it keep their driver, but from removed_at on it grants
-- no access (pings, trip visibility, its device id) and cannot be assigned to new trips.

-- AlterTable
ALTER TABLE "driver_profiles" ADD COLUMN "removed_at" TIMESTAMPTZ(3);

-- Profiles of users who already left their org before this column existed end now, their
-- device ids freed like those of profiles ended from here on.
UPDATE "driver_profiles" d SET "removed_at" = CURRENT_TIMESTAMP, "device_id" = NULL
WHERE NOT EXISTS (SELECT 1 FROM "memberships" m WHERE m."org_id" = d."org_id" AND m."user_id" = d."user_id");
