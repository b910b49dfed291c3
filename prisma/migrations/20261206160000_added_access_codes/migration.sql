-- Access codes (crew logins). A code session is an ordinary user (no phone:
-- it cannot log in with a password) with one membership, in the code's org
-- with the code's role, and its own refresh-token family; every access check
-- then applies to it unchanged (docs/access-codes.md).
ALTER TABLE "users" ALTER COLUMN "phone" DROP NOT NULL;

CREATE TYPE "access_code_status" AS ENUM ('ACTIVE', 'DISABLED');

-- The secret is stored only as its SHA-256 hex digest; logins look the code up
-- by the digest. `active_sessions` is the exact seat count: a login raises it
-- with one conditional UPDATE, an ended session lowers it by one.
CREATE TABLE "access_codes" (
    "id" UUID NOT NULL,
    "org_id" UUID NOT NULL,
    "label" TEXT NOT NULL,
    "role" "role" NOT NULL,
    "code_hash" TEXT NOT NULL,
    "max_sessions" INTEGER NOT NULL,
    "active_sessions" INTEGER NOT NULL DEFAULT 0,
    "expires_at" TIMESTAMPTZ(3),
    "status" "access_code_status" NOT NULL DEFAULT 'ACTIVE',
    "disabled_at" TIMESTAMPTZ(3),
    "created_by_id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "access_codes_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "access_codes_seats_check" CHECK ("active_sessions" >= 0 AND "active_sessions" <= "max_sessions"),
    CONSTRAINT "access_codes_max_sessions_check" CHECK ("max_sessions" >= 1)
);

CREATE UNIQUE INDEX "access_codes_code_hash_key" ON "access_codes"("code_hash");
CREATE INDEX "access_codes_org_id_created_at_id_idx" ON "access_codes"("org_id", "created_at" DESC, "id" DESC);

ALTER TABLE "access_codes" ADD CONSTRAINT "access_codes_org_id_fkey" FOREIGN KEY ("org_id") REFERENCES "orgs"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "access_codes" ADD CONSTRAINT "access_codes_created_by_id_fkey" FOREIGN KEY ("created_by_id") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- One login with a code. `ended_at` is set once (a conditional UPDATE), and the
-- seat is freed in the same transaction only by the statement that set it.
CREATE TABLE "access_code_sessions" (
    "id" UUID NOT NULL,
    "code_id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "family_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "device_id" TEXT,
    "last_seen_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "ended_at" TIMESTAMPTZ(3),
    "end_reason" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "access_code_sessions_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX "access_code_sessions_family_id_key" ON "access_code_sessions"("family_id");
CREATE UNIQUE INDEX "access_code_sessions_user_id_key" ON "access_code_sessions"("user_id");
-- The idle sweep: open sessions by last use.
CREATE INDEX "access_code_sessions_idle_idx" ON "access_code_sessions"("last_seen_at") WHERE "ended_at" IS NULL;
-- Disabling a code: its open sessions.
CREATE INDEX "access_code_sessions_open_by_code_idx" ON "access_code_sessions"("code_id") WHERE "ended_at" IS NULL;

ALTER TABLE "access_code_sessions" ADD CONSTRAINT "access_code_sessions_code_id_fkey" FOREIGN KEY ("code_id") REFERENCES "access_codes"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "access_code_sessions" ADD CONSTRAINT "access_code_sessions_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "access_code_sessions" ADD CONSTRAINT "access_code_sessions_family_id_fkey" FOREIGN KEY ("family_id") REFERENCES "refresh_token_families"("id") ON DELETE CASCADE ON UPDATE CASCADE;
