-- Chat: one thread per trip and per ledger account, messages, per-user read
-- markers and attachments. Threads name their trip or account (and users) by
-- id without foreign keys into the trips, ledger and users tables: the chat
-- module asks their services (TripsService, LedgerService, OrgsService) and
-- keeps a copy of the two orgs and the driver, which never change.

CREATE TABLE "chat_threads" (
    "id" UUID NOT NULL,
    "trip_id" UUID,
    "account_id" UUID,
    "title" TEXT,
    -- The trip's two orgs or the account's two orgs (membership is computed from them at read time).
    "org_ids" UUID[] NOT NULL,
    -- The trip's driver profile (null for an account thread).
    "driver_id" UUID,
    "created_by_id" UUID NOT NULL,
    "last_message_at" TIMESTAMPTZ(3),
    -- last_message_at, or created_at before the first message: the order of the thread list.
    "activity_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "chat_threads_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "chat_threads_one_subject" CHECK (("trip_id" IS NULL) <> ("account_id" IS NULL))
);

CREATE UNIQUE INDEX "chat_threads_trip_id_key" ON "chat_threads"("trip_id");
CREATE UNIQUE INDEX "chat_threads_account_id_key" ON "chat_threads"("account_id");
CREATE INDEX "chat_threads_org_ids_idx" ON "chat_threads" USING GIN ("org_ids");
CREATE INDEX "chat_threads_driver_id_idx" ON "chat_threads"("driver_id");
CREATE INDEX "chat_threads_activity_at_id_idx" ON "chat_threads"("activity_at" DESC, "id" DESC);

CREATE TABLE "chat_messages" (
    "id" UUID NOT NULL,
    -- Insertion order: pages and read markers are keyed on it.
    "seq" BIGSERIAL NOT NULL,
    "thread_id" UUID NOT NULL,
    "sender_id" UUID NOT NULL,
    "client_message_id" TEXT NOT NULL,
    "body" TEXT NOT NULL,
    "attachment_ids" UUID[] NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "chat_messages_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX "chat_messages_seq_key" ON "chat_messages"("seq");
CREATE UNIQUE INDEX "chat_messages_thread_id_sender_id_client_message_id_key" ON "chat_messages"("thread_id", "sender_id", "client_message_id");
CREATE INDEX "chat_messages_thread_id_seq_idx" ON "chat_messages"("thread_id", "seq" DESC);

ALTER TABLE "chat_messages" ADD CONSTRAINT "chat_messages_thread_id_fkey" FOREIGN KEY ("thread_id") REFERENCES "chat_threads"("id") ON DELETE CASCADE ON UPDATE CASCADE;

CREATE TABLE "chat_read_markers" (
    "thread_id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "last_read_seq" BIGINT NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "chat_read_markers_pkey" PRIMARY KEY ("thread_id", "user_id")
);

ALTER TABLE "chat_read_markers" ADD CONSTRAINT "chat_read_markers_thread_id_fkey" FOREIGN KEY ("thread_id") REFERENCES "chat_threads"("id") ON DELETE CASCADE ON UPDATE CASCADE;

CREATE TABLE "chat_attachments" (
    "id" UUID NOT NULL,
    "uploader_id" UUID NOT NULL,
    "storage_key" TEXT NOT NULL,
    "content_type" TEXT NOT NULL,
    "size" BIGINT NOT NULL,
    "filename" TEXT NOT NULL,
    -- The message that carries it; null until sent (an orphan after CHAT_ATTACHMENT_ORPHAN_MS).
    "message_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "chat_attachments_pkey" PRIMARY KEY ("id")
);

CREATE INDEX "chat_attachments_message_id_created_at_idx" ON "chat_attachments"("message_id", "created_at");

ALTER TABLE "chat_attachments" ADD CONSTRAINT "chat_attachments_message_id_fkey" FOREIGN KEY ("message_id") REFERENCES "chat_messages"("id") ON DELETE SET NULL ON UPDATE CASCADE;
