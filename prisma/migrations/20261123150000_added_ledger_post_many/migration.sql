-- Group commit of postings: `SELECT ledger_post_many($1::jsonb)` runs
-- `ledger_post` for each request of a JSON array, in order, in one
-- transaction, and returns the outcomes as a JSON array in the same order.
--
-- The app sends the postings that arrived while the previous statement ran
-- (src/modules/ledger/posting-batcher.ts), sorted by account id so that
-- concurrent batches take their account locks in one order (no deadlock).
-- Each posting still locks its account, checks its key and rules and writes
-- balanced entries exactly as alone; postings of one account in a batch see
-- each other (a repeated key replays, the balance chains). They share one
-- statement and one commit: a raised error fails the whole statement, and the
-- app then runs each of its postings alone, so only the faulty one fails.
CREATE FUNCTION ledger_post_many(ps jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  outcomes jsonb[] := '{}';
  i integer;
BEGIN
  IF jsonb_typeof(ps) <> 'array' THEN
    RAISE EXCEPTION 'ledger_post_many: an array of postings is expected' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  FOR i IN 0 .. jsonb_array_length(ps) - 1 LOOP
    outcomes := outcomes || ledger_post(ps->i);
  END LOOP;
  RETURN to_jsonb(outcomes);
END;
$$;
