-- Idempotency keys and invoice numbers belong to the org that posts
-- (API.md, Ledger): the two orgs of an account never collide on each other's
-- keys or numbers. Before, both were unique per account, so org B's retry key
-- or invoice "118" could be refused (409) because org A had used it.
--
-- An org still cannot reuse its own key or number on the account: the same
-- request replays the first response, another is 409 as before. Numbers are
-- scoped per account and issuing org (not per org across all its accounts):
-- the account lock that `ledger_post` takes is what makes the check exact
-- under concurrency, and it covers one account.

DROP INDEX "ledger_postings_account_id_idempotency_key_key";
CREATE UNIQUE INDEX "ledger_postings_account_id_posted_by_org_id_idempotency_key_key"
  ON "ledger_postings"("account_id", "posted_by_org_id", "idempotency_key");

DROP INDEX "invoices_account_id_number_key";
CREATE UNIQUE INDEX "invoices_account_id_issuer_org_id_number_key"
  ON "invoices"("account_id", "issuer_org_id", "number");

-- `ledger_post` as in 20261123130000_added_ledger_post_function, with the key
-- and number lookups scoped to the acting org (`v_side`).
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
  prior record;
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
BEGIN
  IF v_kind NOT IN ('INVOICE', 'PAYMENT') THEN
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
  ELSE
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
  ELSE
    v_view := jsonb_build_object(
      'id', v_doc_id, 'accountId', acc.id, 'payerOrgId', v_payer, 'payeeOrgId', v_payee, 'amount', v_amount,
      'currency', acc.currency, 'method', p->'payment'->>'method', 'reference', p->'payment'->>'reference',
      'invoiceId', v_invoice_id, 'memo', p->>'memo', 'reversed', false,
      'postingId', v_posting_id, 'createdAt', v_at_text, 'entries', v_entries);
  END IF;

  INSERT INTO ledger_postings (id, account_id, seq, kind, posted_by_org_id, posted_by_user_id, reversal_of_id,
                               memo, idempotency_key, request_hash, response, created_at)
  VALUES (v_posting_id, acc.id, v_seq, v_kind::ledger_posting_kind, v_side, (p->>'userId')::uuid, NULL,
          p->>'memo', v_key, v_hash, v_view, v_at);

  INSERT INTO ledger_entries (id, account_id, posting_id, org_id, seq, amount, running_balance, created_at)
  VALUES ((p->'entryIds'->>0)::uuid, acc.id, v_posting_id, acc.org_a_id, v_seq, v_delta_a, v_balance, v_at),
         ((p->'entryIds'->>1)::uuid, acc.id, v_posting_id, acc.org_b_id, v_seq, -v_delta_a, -v_balance, v_at);

  IF v_kind = 'INVOICE' THEN
    INSERT INTO invoices (id, account_id, posting_id, issuer_org_id, number, amount, trip_id, due_date, memo, created_at)
    VALUES (v_doc_id, acc.id, v_posting_id, v_side, p->'invoice'->>'number', v_amount,
            (p->'invoice'->>'tripId')::uuid, (p->'invoice'->>'dueDate')::date, p->>'memo', v_at);
  ELSE
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
  END IF;

  INSERT INTO outbox_events (id, type, org_id, data, created_at)
  VALUES ((p->'outboxIds'->>0)::uuid, CASE WHEN v_kind = 'INVOICE' THEN 'ledger.invoice' ELSE 'ledger.payment' END,
          v_side, v_view, v_at),
         ((p->'outboxIds'->>1)::uuid, CASE WHEN v_kind = 'INVOICE' THEN 'ledger.invoice' ELSE 'ledger.payment' END,
          v_other, v_view, v_at);

  UPDATE ledger_accounts SET balance = v_balance, entry_count = v_seq, last_posted_at = v_at WHERE id = acc.id;

  RETURN jsonb_build_object('replayed', false, 'response', v_view);
END;
$$;
