-- CreateEnum
CREATE TYPE "ledger_posting_kind" AS ENUM ('INVOICE', 'PAYMENT', 'REVERSAL');

-- CreateEnum
CREATE TYPE "invoice_status" AS ENUM ('OPEN', 'PARTIALLY_PAID', 'PAID', 'REVERSED');

-- CreateTable
CREATE TABLE "ledger_accounts" (
    "id" UUID NOT NULL,
    "org_a_id" UUID NOT NULL,
    "org_b_id" UUID NOT NULL,
    "currency" TEXT NOT NULL,
    "balance" BIGINT NOT NULL DEFAULT 0,
    "entry_count" INTEGER NOT NULL DEFAULT 0,
    "last_posted_at" TIMESTAMPTZ(3),
    "created_by_id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ledger_accounts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ledger_postings" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "seq" INTEGER NOT NULL,
    "kind" "ledger_posting_kind" NOT NULL,
    "posted_by_org_id" UUID NOT NULL,
    "posted_by_user_id" UUID NOT NULL,
    "reversal_of_id" UUID,
    "memo" TEXT,
    "idempotency_key" TEXT,
    "request_hash" TEXT NOT NULL,
    "response" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "ledger_postings_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ledger_entries" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "posting_id" UUID NOT NULL,
    "org_id" UUID NOT NULL,
    "seq" INTEGER NOT NULL,
    "amount" BIGINT NOT NULL,
    "running_balance" BIGINT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "ledger_entries_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "invoices" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "posting_id" UUID NOT NULL,
    "issuer_org_id" UUID NOT NULL,
    "number" TEXT NOT NULL,
    "amount" BIGINT NOT NULL,
    "amount_paid" BIGINT NOT NULL DEFAULT 0,
    "status" "invoice_status" NOT NULL DEFAULT 'OPEN',
    "trip_id" UUID,
    "due_date" DATE,
    "memo" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "invoices_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "payments" (
    "id" UUID NOT NULL,
    "account_id" UUID NOT NULL,
    "posting_id" UUID NOT NULL,
    "payer_org_id" UUID NOT NULL,
    "payee_org_id" UUID NOT NULL,
    "amount" BIGINT NOT NULL,
    "method" TEXT NOT NULL,
    "reference" TEXT,
    "invoice_id" UUID,
    "memo" TEXT,
    "reversed_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "payments_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "outbox_events" (
    "id" UUID NOT NULL,
    "type" TEXT NOT NULL,
    "org_id" UUID NOT NULL,
    "data" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "published_at" TIMESTAMPTZ(3),

    CONSTRAINT "outbox_events_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "ledger_accounts_org_a_id_created_at_id_idx" ON "ledger_accounts"("org_a_id", "created_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "ledger_accounts_org_b_id_created_at_id_idx" ON "ledger_accounts"("org_b_id", "created_at" DESC, "id" DESC);

-- CreateIndex
CREATE UNIQUE INDEX "ledger_accounts_org_a_id_org_b_id_currency_key" ON "ledger_accounts"("org_a_id", "org_b_id", "currency");

-- CreateIndex
CREATE UNIQUE INDEX "ledger_postings_reversal_of_id_key" ON "ledger_postings"("reversal_of_id");

-- CreateIndex
CREATE UNIQUE INDEX "ledger_postings_account_id_seq_key" ON "ledger_postings"("account_id", "seq");

-- CreateIndex
CREATE UNIQUE INDEX "ledger_postings_account_id_idempotency_key_key" ON "ledger_postings"("account_id", "idempotency_key");

-- CreateIndex
CREATE INDEX "ledger_entries_account_id_org_id_created_at_seq_idx" ON "ledger_entries"("account_id", "org_id", "created_at", "seq");

-- CreateIndex
CREATE INDEX "ledger_entries_posting_id_idx" ON "ledger_entries"("posting_id");

-- CreateIndex
CREATE UNIQUE INDEX "ledger_entries_account_id_org_id_seq_key" ON "ledger_entries"("account_id", "org_id", "seq");

-- CreateIndex
CREATE UNIQUE INDEX "invoices_posting_id_key" ON "invoices"("posting_id");

-- CreateIndex
CREATE INDEX "invoices_trip_id_idx" ON "invoices"("trip_id");

-- CreateIndex
CREATE UNIQUE INDEX "invoices_account_id_number_key" ON "invoices"("account_id", "number");

-- CreateIndex
CREATE UNIQUE INDEX "payments_posting_id_key" ON "payments"("posting_id");

-- CreateIndex
CREATE INDEX "payments_invoice_id_idx" ON "payments"("invoice_id");

-- CreateIndex
CREATE INDEX "payments_account_id_created_at_id_idx" ON "payments"("account_id", "created_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "outbox_events_published_at_created_at_idx" ON "outbox_events"("published_at", "created_at");

-- AddForeignKey
ALTER TABLE "ledger_accounts" ADD CONSTRAINT "ledger_accounts_org_a_id_fkey" FOREIGN KEY ("org_a_id") REFERENCES "orgs"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ledger_accounts" ADD CONSTRAINT "ledger_accounts_org_b_id_fkey" FOREIGN KEY ("org_b_id") REFERENCES "orgs"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ledger_postings" ADD CONSTRAINT "ledger_postings_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "ledger_accounts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ledger_postings" ADD CONSTRAINT "ledger_postings_reversal_of_id_fkey" FOREIGN KEY ("reversal_of_id") REFERENCES "ledger_postings"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "ledger_accounts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ledger_entries" ADD CONSTRAINT "ledger_entries_posting_id_fkey" FOREIGN KEY ("posting_id") REFERENCES "ledger_postings"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "invoices" ADD CONSTRAINT "invoices_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "ledger_accounts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "invoices" ADD CONSTRAINT "invoices_posting_id_fkey" FOREIGN KEY ("posting_id") REFERENCES "ledger_postings"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "payments" ADD CONSTRAINT "payments_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "ledger_accounts"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "payments" ADD CONSTRAINT "payments_posting_id_fkey" FOREIGN KEY ("posting_id") REFERENCES "ledger_postings"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "payments" ADD CONSTRAINT "payments_invoice_id_fkey" FOREIGN KEY ("invoice_id") REFERENCES "invoices"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- ---------------------------------------------------------------------------
-- What Prisma cannot express.

-- Entries are append-only: a mistake is corrected by a reversal, never by an edit.
CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ledger_entries is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER ledger_entries_no_update_delete
  BEFORE UPDATE OR DELETE ON "ledger_entries"
  FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only();

CREATE TRIGGER ledger_entries_no_truncate
  BEFORE TRUNCATE ON "ledger_entries"
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_append_only();

-- Postings are the journal: just as immutable as their entries.
CREATE TRIGGER ledger_postings_no_update_delete
  BEFORE UPDATE OR DELETE ON "ledger_postings"
  FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only();

-- Double entry: at commit, the entries of every posting touched by the
-- transaction must sum to zero, with one entry for each org of the account.
CREATE FUNCTION ledger_entries_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  total NUMERIC;
  sides INTEGER;
BEGIN
  SELECT coalesce(sum(amount), 0), count(*) INTO total, sides
    FROM "ledger_entries" WHERE posting_id = NEW.posting_id;
  IF total <> 0 OR sides <> 2 THEN
    RAISE EXCEPTION 'posting % is not balanced: % entries summing to %', NEW.posting_id, sides, total
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER ledger_entries_balanced
  AFTER INSERT ON "ledger_entries"
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION ledger_entries_check_balanced();

-- Amounts of documents are positive minor units.
ALTER TABLE "invoices" ADD CONSTRAINT "invoices_amount_positive" CHECK ("amount" > 0 AND "amount_paid" >= 0 AND "amount_paid" <= "amount");
ALTER TABLE "payments" ADD CONSTRAINT "payments_amount_positive" CHECK ("amount" > 0);
ALTER TABLE "ledger_accounts" ADD CONSTRAINT "ledger_accounts_org_order" CHECK ("org_a_id" < "org_b_id");

-- Org stats for dashboards: trips by status, pings today (UTC) and what each
-- org is owed / owes per currency. Refreshed CONCURRENTLY by a repeatable
-- Bull job (src/modules/stats), read from the replica; `refreshed_at` gives
-- the figures' age. The unique index is what CONCURRENTLY needs.
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
  SELECT ts.org_id, count(*) AS pings_today
  FROM trip_sides ts
  JOIN "trip_pings" p ON p.trip_id = ts.id
   AND p.recorded_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
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
