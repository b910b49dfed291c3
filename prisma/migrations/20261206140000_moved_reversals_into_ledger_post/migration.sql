-- Reversals are posted by `ledger_post` like invoices and payments: one
-- engine writes every posting. Before, reversals ran an interactive
-- transaction in the app (lock, key lookup, reads of the original, one
-- appending statement, COMMIT); now they are one statement, and reversals
-- that arrive together share the posting batcher's `ledger_post_many` call
-- (which calls this function and needs no change).
--
-- `ledger_post` as in 20261206130000_scoped_ledger_keys_to_posting_org, with
-- a third kind. Input (jsonb), common to all kinds:
--   kind            'INVOICE' | 'PAYMENT' | 'REVERSAL'
--   accountId, side (the acting org), userId, idempotencyKey (or null),
--   requestHash, now (the node's clock), postingId,
--   entryIds [org A's, org B's], outboxIds [acting org's, other org's], memo
-- INVOICE / PAYMENT: documentId and `invoice` / `payment` as before.
-- REVERSAL: reversalOf (the id of the posting to reverse); memo is the reason.
--
-- Result: {"replayed": bool, "response": <the API's view>} or {"error": CODE, ...}
-- with nothing written. Codes of a reversal, checked in this order under the
-- account lock (after the idempotency key):
--   POSTING_NOT_FOUND            no such posting on this account
--   NOT_REVERSIBLE {reason}      reason 'REVERSAL' (a reversal is not reversed)
--                                or 'INVOICE_HAS_PAYMENTS'
--   ALREADY_REVERSED {reversalPostingId}
--   NOT_POSTER                   only the org that posted the original reverses it
--   BALANCE_LIMIT_EXCEEDED
-- A reversal appends the opposite entries of the original, links them with
-- `reversal_of_id` (unique: at most once), marks the invoice REVERSED or the
-- payment `reversed_at` (lowering its invoice's `amount_paid`), and writes
-- `ledger.invoice` / `ledger.payment` events with the original's view, its new
-- status (`status: REVERSED` / `reversed: true`) and the `reversal`.
CREATE OR REPLACE FUNCTION ledger_post(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  max_money CONSTANT bigint := 9007199254740991; -- 2^53-1: every figure stays an exact JSON number
  v_kind text := p->>'kind';
  v_side uuid := (p->>'side')::uuid;
  v_key text := p->>'idempotencyKey';
  v_hash text := p->>'requestHash';
  v_posting_id uuid := (p->>'postingId')::uuid;
  v_doc_id uuid := (p->>'documentId')::uuid;
  acc ledger_accounts%ROWTYPE;
  inv invoices%ROWTYPE;
  pay payments%ROWTYPE;
  orig ledger_postings%ROWTYPE;
  prior record;
  v_reversed_by uuid;
  v_other uuid;
  v_amount bigint;
  v_delta_a bigint;
  v_balance bigint;
  v_seq integer;
  v_at timestamptz;
  v_at_text text;
  v_payee uuid;
  v_payer uuid;
  v_invoice_id uuid;
  v_paid bigint;
  v_entries jsonb;
  v_view jsonb;
  v_event_type text;
  v_event_data jsonb;
BEGIN
  IF v_kind IS NULL OR v_kind NOT IN ('INVOICE', 'PAYMENT', 'REVERSAL') THEN
    RAISE EXCEPTION 'ledger_post: unknown kind %', v_kind USING ERRCODE = 'invalid_parameter_value';
  END IF;

  -- Postings on one account are serialized; each sees the one before committed.
  SELECT * INTO acc FROM ledger_accounts WHERE id = (p->>'accountId')::uuid FOR UPDATE;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('error', 'ACCOUNT_NOT_FOUND');
  END IF;
  v_other := CASE WHEN v_side = acc.org_a_id THEN acc.org_b_id ELSE acc.org_a_id END;

  -- Under the lock, so concurrent requests with one key make exactly one posting.
  IF v_key IS NOT NULL THEN
    SELECT lp.request_hash, lp.response INTO prior
      FROM ledger_postings lp
      WHERE lp.account_id = acc.id AND lp.posted_by_org_id = v_side AND lp.idempotency_key = v_key;
    IF FOUND THEN
      IF prior.request_hash <> v_hash THEN
        RETURN jsonb_build_object('error', 'IDEMPOTENCY_KEY_REUSED');
      END IF;
      RETURN jsonb_build_object('replayed', true, 'response', prior.response);
    END IF;
  END IF;

  IF v_kind = 'INVOICE' THEN
    v_amount := (p->'invoice'->>'amount')::bigint;
    SELECT lp.request_hash, lp.response INTO prior
      FROM invoices i JOIN ledger_postings lp ON lp.id = i.posting_id
      WHERE i.account_id = acc.id AND i.issuer_org_id = v_side AND i.number = p->'invoice'->>'number';
    IF FOUND THEN
      IF prior.request_hash <> v_hash THEN
        RETURN jsonb_build_object('error', 'INVOICE_NUMBER_TAKEN');
      END IF;
      RETURN jsonb_build_object('replayed', true, 'response', prior.response);
    END IF;
    -- The issuer is owed the amount by the other org.
    v_delta_a := CASE WHEN v_side = acc.org_a_id THEN v_amount ELSE -v_amount END;
  ELSIF v_kind = 'PAYMENT' THEN
    v_amount := (p->'payment'->>'amount')::bigint;
    v_payee := CASE WHEN p->'payment'->>'direction' = 'PAID' THEN v_other ELSE v_side END;
    v_invoice_id := (p->'payment'->>'invoiceId')::uuid;
    IF v_invoice_id IS NOT NULL THEN
      SELECT * INTO inv FROM invoices WHERE id = v_invoice_id AND account_id = acc.id;
      IF NOT FOUND THEN
        RETURN jsonb_build_object('error', 'INVOICE_NOT_FOUND');
      END IF;
      IF inv.status = 'REVERSED' THEN
        RETURN jsonb_build_object('error', 'INVOICE_REVERSED');
      END IF;
      -- A payment against an invoice goes from the buyer to the issuer.
      IF p->'payment'->>'direction' IS NOT NULL AND v_payee <> inv.issuer_org_id THEN
        RETURN jsonb_build_object('error', 'DIRECTION_MISMATCH',
          'mustBe', CASE WHEN v_side = inv.issuer_org_id THEN 'RECEIVED' ELSE 'PAID' END);
      END IF;
      v_payee := inv.issuer_org_id;
      IF v_amount > inv.amount - inv.amount_paid THEN
        RETURN jsonb_build_object('error', 'OVERPAYMENT', 'outstanding', inv.amount - inv.amount_paid);
      END IF;
      v_paid := inv.amount_paid + v_amount;
    END IF;
    v_payer := CASE WHEN v_payee = acc.org_a_id THEN acc.org_b_id ELSE acc.org_a_id END;
    -- The payer owes the payee less: the payee's side goes down by the amount.
    v_delta_a := CASE WHEN v_payee = acc.org_a_id THEN -v_amount ELSE v_amount END;
  ELSE
    SELECT * INTO orig FROM ledger_postings WHERE id = (p->>'reversalOf')::uuid AND account_id = acc.id;
    IF NOT FOUND THEN
      RETURN jsonb_build_object('error', 'POSTING_NOT_FOUND');
    END IF;
    IF orig.kind = 'REVERSAL' THEN
      RETURN jsonb_build_object('error', 'NOT_REVERSIBLE', 'reason', 'REVERSAL');
    END IF;
    SELECT r.id INTO v_reversed_by FROM ledger_postings r WHERE r.reversal_of_id = orig.id;
    IF FOUND THEN
      RETURN jsonb_build_object('error', 'ALREADY_REVERSED', 'reversalPostingId', v_reversed_by);
    END IF;
    IF orig.posted_by_org_id <> v_side THEN
      RETURN jsonb_build_object('error', 'NOT_POSTER');
    END IF;
    -- Every invoice or payment posting wrote its document in its own transaction (STRICT: one row).
    IF orig.kind = 'INVOICE' THEN
      SELECT * INTO STRICT inv FROM invoices WHERE posting_id = orig.id;
      IF inv.amount_paid > 0 THEN
        RETURN jsonb_build_object('error', 'NOT_REVERSIBLE', 'reason', 'INVOICE_HAS_PAYMENTS');
      END IF;
      v_event_type := 'ledger.invoice';
    ELSE
      SELECT * INTO STRICT pay FROM payments WHERE posting_id = orig.id;
      IF pay.invoice_id IS NOT NULL THEN
        SELECT * INTO STRICT inv FROM invoices WHERE id = pay.invoice_id;
        v_paid := inv.amount_paid - pay.amount;
      END IF;
      v_event_type := 'ledger.payment';
    END IF;
    -- The opposite of the original's entries.
    SELECT -e.amount INTO STRICT v_delta_a FROM ledger_entries e WHERE e.posting_id = orig.id AND e.org_id = acc.org_a_id;
  END IF;

  v_balance := acc.balance + v_delta_a;
  IF abs(v_balance) > max_money THEN
    RETURN jsonb_build_object('error', 'BALANCE_LIMIT_EXCEEDED');
  END IF;
  v_seq := acc.entry_count + 1;
  -- Ledger times only move forward on an account, whatever the clocks of the nodes.
  v_at := greatest((p->>'now')::timestamptz, acc.last_posted_at);
  v_at_text := to_char(v_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
  v_entries := jsonb_build_array(
    jsonb_build_object('id', p->'entryIds'->>0, 'accountId', acc.id, 'postingId', v_posting_id, 'orgId', acc.org_a_id,
      'seq', v_seq, 'kind', v_kind, 'amount', v_delta_a, 'runningBalance', v_balance, 'currency', acc.currency,
      'createdAt', v_at_text),
    jsonb_build_object('id', p->'entryIds'->>1, 'accountId', acc.id, 'postingId', v_posting_id, 'orgId', acc.org_b_id,
      'seq', v_seq, 'kind', v_kind, 'amount', -v_delta_a, 'runningBalance', -v_balance, 'currency', acc.currency,
      'createdAt', v_at_text));

  IF v_kind = 'INVOICE' THEN
    v_view := jsonb_build_object(
      'id', v_doc_id, 'accountId', acc.id, 'issuerOrgId', v_side, 'number', p->'invoice'->>'number',
      'amount', v_amount, 'amountPaid', 0, 'currency', acc.currency, 'status', 'OPEN',
      'tripId', p->'invoice'->>'tripId', 'dueDate', p->'invoice'->>'dueDate', 'memo', p->>'memo',
      'postingId', v_posting_id, 'createdAt', v_at_text, 'entries', v_entries);
    v_event_type := 'ledger.invoice';
    v_event_data := v_view;
  ELSIF v_kind = 'PAYMENT' THEN
    v_view := jsonb_build_object(
      'id', v_doc_id, 'accountId', acc.id, 'payerOrgId', v_payer, 'payeeOrgId', v_payee, 'amount', v_amount,
      'currency', acc.currency, 'method', p->'payment'->>'method', 'reference', p->'payment'->>'reference',
      'invoiceId', v_invoice_id, 'memo', p->>'memo', 'reversed', false,
      'postingId', v_posting_id, 'createdAt', v_at_text, 'entries', v_entries);
    v_event_type := 'ledger.payment';
    v_event_data := v_view;
  ELSE
    v_view := jsonb_build_object(
      'id', v_posting_id, 'accountId', acc.id, 'reversalOfPostingId', orig.id, 'reversedKind', orig.kind,
      'reason', p->>'memo', 'createdAt', v_at_text, 'entries', v_entries);
    -- The original's view as it was posted, with its new state and the reversal.
    v_event_data := orig.response
      || CASE WHEN orig.kind = 'INVOICE' THEN jsonb_build_object('status', 'REVERSED')
              ELSE jsonb_build_object('reversed', true) END
      || jsonb_build_object('reversal', v_view);
  END IF;

  INSERT INTO ledger_postings (id, account_id, seq, kind, posted_by_org_id, posted_by_user_id, reversal_of_id,
                               memo, idempotency_key, request_hash, response, created_at)
  VALUES (v_posting_id, acc.id, v_seq, v_kind::ledger_posting_kind, v_side, (p->>'userId')::uuid, orig.id,
          p->>'memo', v_key, v_hash, v_view, v_at);

  INSERT INTO ledger_entries (id, account_id, posting_id, org_id, seq, amount, running_balance, created_at)
  VALUES ((p->'entryIds'->>0)::uuid, acc.id, v_posting_id, acc.org_a_id, v_seq, v_delta_a, v_balance, v_at),
         ((p->'entryIds'->>1)::uuid, acc.id, v_posting_id, acc.org_b_id, v_seq, -v_delta_a, -v_balance, v_at);

  IF v_kind = 'INVOICE' THEN
    INSERT INTO invoices (id, account_id, posting_id, issuer_org_id, number, amount, trip_id, due_date, memo, created_at)
    VALUES (v_doc_id, acc.id, v_posting_id, v_side, p->'invoice'->>'number', v_amount,
            (p->'invoice'->>'tripId')::uuid, (p->'invoice'->>'dueDate')::date, p->>'memo', v_at);
  ELSIF v_kind = 'PAYMENT' THEN
    INSERT INTO payments (id, account_id, posting_id, payer_org_id, payee_org_id, amount, method, reference,
                          invoice_id, memo, created_at)
    VALUES (v_doc_id, acc.id, v_posting_id, v_payer, v_payee, v_amount, p->'payment'->>'method',
            p->'payment'->>'reference', v_invoice_id, p->>'memo', v_at);
    IF v_invoice_id IS NOT NULL THEN
      UPDATE invoices
      SET amount_paid = v_paid,
          status = (CASE WHEN v_paid = inv.amount THEN 'PAID' ELSE 'PARTIALLY_PAID' END)::invoice_status
      WHERE id = v_invoice_id;
    END IF;
  ELSIF orig.kind = 'INVOICE' THEN
    UPDATE invoices SET status = 'REVERSED' WHERE id = inv.id;
  ELSE
    UPDATE payments SET reversed_at = v_at WHERE id = pay.id;
    IF pay.invoice_id IS NOT NULL THEN
      UPDATE invoices
      SET amount_paid = v_paid,
          status = (CASE WHEN v_paid = 0 THEN 'OPEN' ELSE 'PARTIALLY_PAID' END)::invoice_status
      WHERE id = pay.invoice_id;
    END IF;
  END IF;

  INSERT INTO outbox_events (id, type, org_id, data, created_at)
  VALUES ((p->'outboxIds'->>0)::uuid, v_event_type, v_side, v_event_data, v_at),
         ((p->'outboxIds'->>1)::uuid, v_event_type, v_other, v_event_data, v_at);

  UPDATE ledger_accounts SET balance = v_balance, entry_count = v_seq, last_posted_at = v_at WHERE id = acc.id;

  RETURN jsonb_build_object('replayed', false, 'response', v_view);
END;
$$;
