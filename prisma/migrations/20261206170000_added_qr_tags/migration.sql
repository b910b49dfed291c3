-- QR tags on trucks, cargo, trips and documents (docs/qr.md). The code is the
-- tag's public address (it is printed in the QR), so it is stored as is.
-- `scan_count` is exact: a scan raises it with one conditional UPDATE (never
-- past `max_scans`) in the transaction that logs the scan. EXPIRED is derived
-- from `expires_at`, never stored.
CREATE TYPE "qr_entity_type" AS ENUM ('TRUCK', 'CARGO', 'TRIP', 'DOCUMENT');
CREATE TYPE "qr_tag_status" AS ENUM ('ACTIVE', 'DISABLED');
CREATE TYPE "qr_scan_action" AS ENUM ('VIEW', 'CHECK_IN', 'LOAD', 'UNLOAD', 'DELIVER');
CREATE TYPE "qr_batch_status" AS ENUM ('PENDING', 'RUNNING', 'DONE', 'FAILED');

CREATE TABLE "qr_batches" (
    "id" UUID NOT NULL,
    "org_id" UUID NOT NULL,
    "status" "qr_batch_status" NOT NULL DEFAULT 'PENDING',
    "total" INTEGER NOT NULL,
    "done" INTEGER NOT NULL DEFAULT 0,
    "failed" INTEGER NOT NULL DEFAULT 0,
    "items" JSONB NOT NULL,
    "created_by_id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "qr_batches_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "qr_tags" (
    "id" UUID NOT NULL,
    "org_id" UUID NOT NULL,
    "entity_type" "qr_entity_type" NOT NULL,
    "entity_id" TEXT NOT NULL,
    "title" TEXT NOT NULL,
    "code" TEXT NOT NULL,
    "is_public" BOOLEAN NOT NULL DEFAULT true,
    "status" "qr_tag_status" NOT NULL DEFAULT 'ACTIVE',
    "expires_at" TIMESTAMPTZ(3),
    "max_scans" INTEGER,
    "scan_count" INTEGER NOT NULL DEFAULT 0,
    "disabled_at" TIMESTAMPTZ(3),
    "batch_id" UUID,
    "batch_index" INTEGER,
    "created_by_id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "qr_tags_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "qr_tags_scan_count_check" CHECK ("scan_count" >= 0 AND ("max_scans" IS NULL OR "scan_count" <= "max_scans")),
    CONSTRAINT "qr_tags_max_scans_check" CHECK ("max_scans" IS NULL OR "max_scans" >= 1)
);

CREATE UNIQUE INDEX "qr_tags_code_key" ON "qr_tags"("code");
-- A batch job retried after a crash inserts each item once.
CREATE UNIQUE INDEX "qr_tags_batch_id_batch_index_key" ON "qr_tags"("batch_id", "batch_index");
CREATE INDEX "qr_tags_org_id_created_at_id_idx" ON "qr_tags"("org_id", "created_at" DESC, "id" DESC);

ALTER TABLE "qr_tags" ADD CONSTRAINT "qr_tags_org_id_fkey" FOREIGN KEY ("org_id") REFERENCES "orgs"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "qr_tags" ADD CONSTRAINT "qr_tags_created_by_id_fkey" FOREIGN KEY ("created_by_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
ALTER TABLE "qr_tags" ADD CONSTRAINT "qr_tags_batch_id_fkey" FOREIGN KEY ("batch_id") REFERENCES "qr_batches"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "qr_batches" ADD CONSTRAINT "qr_batches_org_id_fkey" FOREIGN KEY ("org_id") REFERENCES "orgs"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "qr_batches" ADD CONSTRAINT "qr_batches_created_by_id_fkey" FOREIGN KEY ("created_by_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- The scan log. `org_id` is the tag's org, copied so analytics read one table
-- by (org_id, scanned_at).
CREATE TABLE "qr_scans" (
    "id" UUID NOT NULL,
    "tag_id" UUID NOT NULL,
    "org_id" UUID NOT NULL,
    "action" "qr_scan_action" NOT NULL,
    "scanner_user_id" UUID NOT NULL,
    "trip_id" UUID,
    "lat" DOUBLE PRECISION,
    "lng" DOUBLE PRECISION,
    "scanned_at" TIMESTAMPTZ(3) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "qr_scans_pkey" PRIMARY KEY ("id")
);

CREATE INDEX "qr_scans_tag_id_created_at_id_idx" ON "qr_scans"("tag_id", "created_at" DESC, "id" DESC);
CREATE INDEX "qr_scans_org_id_scanned_at_idx" ON "qr_scans"("org_id", "scanned_at");

ALTER TABLE "qr_scans" ADD CONSTRAINT "qr_scans_tag_id_fkey" FOREIGN KEY ("tag_id") REFERENCES "qr_tags"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "qr_scans" ADD CONSTRAINT "qr_scans_scanner_user_id_fkey" FOREIGN KEY ("scanner_user_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
