-- The unread count of a thread (messages of others after the reader's marker) reads (thread_id, seq, sender_id)
-- from this index alone (an index-only scan) instead of one heap page per unread message.
-- It also serves the message pages (thread_id = $1 AND seq < $2 ORDER BY seq DESC), so it replaces the old index.
DROP INDEX "chat_messages_thread_id_seq_idx";
CREATE INDEX "chat_messages_thread_id_seq_sender_id_idx" ON "chat_messages"("thread_id", "seq" DESC, "sender_id");

-- Index-only scans skip the heap only for pages the visibility map marks all-visible, which vacuum sets: vacuum
-- this (insert-mostly) table after every 10,000 inserted rows rather than after 20% of the table, so the newest
-- messages (the unread ones) are not left behind an ever larger unvacuumed tail.
ALTER TABLE "chat_messages" SET (autovacuum_vacuum_insert_threshold = 10000, autovacuum_vacuum_insert_scale_factor = 0);
