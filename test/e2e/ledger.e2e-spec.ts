import { randomUUID } from 'node:crypto';
import { uuidv7 } from 'uuidv7';
import { parseCsv } from '../../src/modules/ledger/ledger-csv';
import { PostingBatcher } from '../../src/modules/ledger/posting-batcher';
import { newMember, newOrg, newUser, TestOrg, TestUser } from '../support/factories';
import { startTestApp, TestApp } from '../support/test-app';

describe('ledger', () => {
  let t: TestApp;
  let seller: TestOrg;
  let buyer: TestOrg;
  let outsider: TestOrg;
  let sellerAcct: TestUser;
  let buyerAcct: TestUser;
  let sellerStaff: TestUser;
  let outsiderAcct: TestUser;

  const auth = (u: TestUser, key?: string) => ({
    token: u.accessToken,
    headers: key ? { 'idempotency-key': key } : undefined,
  });

  async function newAccount(a: TestOrg, b: TestOrg, currency?: string): Promise<string> {
    const res = await t.api.post(
      `/orgs/${a.id}/accounts`,
      { counterpartyOrgId: b.id, ...(currency ? { currency } : {}) },
      auth(a.owner),
    );
    if (res.status !== 201) throw new Error(`account: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.data.id;
  }

  async function invoice(accountId: string, by: TestUser, body: Record<string, unknown>, key?: string) {
    return t.api.post(`/ledger/accounts/${accountId}/invoices`, body, auth(by, key));
  }

  async function payment(accountId: string, by: TestUser, body: Record<string, unknown>, key?: string) {
    return t.api.post(`/ledger/accounts/${accountId}/payments`, body, auth(by, key));
  }

  /** The invariants, straight from the database. */
  async function checkInvariants(accountId: string) {
    const acc = (await t.sql.query('SELECT * FROM ledger_accounts WHERE id = $1', [accountId])).rows[0];
    for (const orgId of [acc.org_a_id, acc.org_b_id]) {
      const { rows } = await t.sql.query(
        'SELECT seq, amount::text, running_balance::text FROM ledger_entries WHERE account_id = $1 AND org_id = $2 ORDER BY seq',
        [accountId, orgId],
      );
      expect(rows.length).toBe(acc.entry_count);
      let running = 0n;
      rows.forEach((r, i) => {
        expect(r.seq).toBe(i + 1);
        running += BigInt(r.amount);
        expect(BigInt(r.running_balance)).toBe(running);
      });
      const expected = orgId === acc.org_a_id ? BigInt(acc.balance) : -BigInt(acc.balance);
      expect(running).toBe(expected);
    }
    const unbalanced = await t.sql.query(
      'SELECT posting_id FROM ledger_entries WHERE account_id = $1 GROUP BY posting_id HAVING sum(amount) <> 0 OR count(*) <> 2',
      [accountId],
    );
    expect(unbalanced.rows).toEqual([]);
    return acc;
  }

  beforeAll(async () => {
    t = await startTestApp();
    seller = await newOrg(t.api, undefined, 'Sharma Traders');
    buyer = await newOrg(t.api, undefined, 'Gupta Mills');
    outsider = await newOrg(t.api, undefined, 'Other Co');
    [sellerAcct, buyerAcct, sellerStaff, outsiderAcct] = await Promise.all([
      newMember(t.api, seller, 'ACCOUNTANT'),
      newMember(t.api, buyer, 'ACCOUNTANT'),
      newMember(t.api, seller, 'STAFF'),
      newMember(t.api, outsider, 'ACCOUNTANT'),
    ]);
  });
  afterAll(() => t.close());

  describe('accounts', () => {
    it('one account per org pair and currency, seen from both sides', async () => {
      const res = await t.api.post(`/orgs/${seller.id}/accounts`, { counterpartyOrgId: buyer.id }, auth(sellerAcct));
      expect(res.status).toBe(201);
      expect(res.body.data).toMatchObject({
        orgId: seller.id,
        counterpartyOrgId: buyer.id,
        currency: 'INR',
        balance: 0,
        entryCount: 0,
      });
      const id = res.body.data.id;

      const again = await t.api.post(`/orgs/${buyer.id}/accounts`, { counterpartyOrgId: seller.id }, auth(buyerAcct));
      expect(again.status).toBe(409);
      expect(again.body.error.code).toBe('ALREADY_EXISTS');
      expect(again.body.error.details[0].accountId).toBe(id);

      const usd = await t.api.post(
        `/orgs/${buyer.id}/accounts`,
        { counterpartyOrgId: seller.id, currency: 'USD' },
        auth(buyerAcct),
      );
      expect(usd.status).toBe(201);
      expect(usd.body.data.id).not.toBe(id);

      const fromBuyer = await t.api.get(`/orgs/${buyer.id}/accounts`, auth(buyerAcct));
      expect(fromBuyer.status).toBe(200);
      expect(fromBuyer.body.data.map((a: { id: string }) => a.id).sort()).toEqual([id, usd.body.data.id].sort());
      expect(fromBuyer.body.data.find((a: { id: string }) => a.id === id).counterpartyOrgId).toBe(seller.id);
      expect(fromBuyer.body.meta).toEqual({ nextCursor: null });

      const page1 = await t.api.get(`/orgs/${buyer.id}/accounts?limit=1`, auth(buyerAcct));
      expect(page1.body.data).toHaveLength(1);
      const page2 = await t.api.get(
        `/orgs/${buyer.id}/accounts?limit=1&cursor=${page1.body.meta.nextCursor}`,
        auth(buyerAcct),
      );
      expect(page2.body.data).toHaveLength(1);
      expect(page2.body.data[0].id).not.toBe(page1.body.data[0].id);
    });

    it('validates the body', async () => {
      const o = await newOrg(t.api);
      const bad = async (body: unknown) => (await t.api.post(`/orgs/${o.id}/accounts`, body, auth(o.owner))).status;
      expect(await bad({ counterpartyOrgId: buyer.id, currency: 'XYZ' })).toBe(400);
      expect(await bad({ counterpartyOrgId: buyer.id, currency: 'inr' })).toBe(400);
      expect(await bad({ counterpartyOrgId: o.id })).toBe(400);
      expect(await bad({ counterpartyOrgId: 'nope' })).toBe(400);
      expect(await bad({ counterpartyOrgId: buyer.id, extra: 1 })).toBe(400);
      const missing = await t.api.post(`/orgs/${o.id}/accounts`, { counterpartyOrgId: randomUUID() }, auth(o.owner));
      expect(missing.status).toBe(422);
      expect(missing.body.error.code).toBe('COUNTERPARTY_NOT_FOUND');
    });

    it('ledger roles only: staff 403, non-members 404', async () => {
      expect((await t.api.get(`/orgs/${seller.id}/accounts`, auth(sellerStaff))).status).toBe(403);
      expect(
        (await t.api.post(`/orgs/${seller.id}/accounts`, { counterpartyOrgId: outsider.id }, auth(sellerStaff))).status,
      ).toBe(403);
      expect((await t.api.get(`/orgs/${seller.id}/accounts`, auth(outsiderAcct))).status).toBe(404);
      expect((await t.api.get(`/orgs/${seller.id}/accounts`)).status).toBe(401);
    });
  });

  describe('postings', () => {
    let accountId: string;
    beforeAll(async () => {
      const a = await newOrg(t.api, sellerAcct, 'Seller Two');
      const b = await newOrg(t.api, buyerAcct, 'Buyer Two');
      seller2 = a;
      buyer2 = b;
      accountId = await newAccount(a, b);
    });
    let seller2: TestOrg;
    let buyer2: TestOrg;

    it('an invoice raises what the buyer owes: two entries summing to zero', async () => {
      const res = await invoice(accountId, seller2.owner, {
        number: 'INV-1',
        amount: 150_000,
        dueDate: '2026-12-31',
        memo: 'Wheat, 10 t',
      });
      expect(res.status).toBe(201);
      const inv = res.body.data;
      expect(inv).toMatchObject({
        number: 'INV-1',
        amount: 150_000,
        amountPaid: 0,
        status: 'OPEN',
        currency: 'INR',
        issuerOrgId: seller2.id,
        dueDate: '2026-12-31',
        tripId: null,
      });
      expect(inv.entries).toHaveLength(2);
      expect(inv.entries.reduce((s: number, e: { amount: number }) => s + e.amount, 0)).toBe(0);
      const mine = inv.entries.find((e: { orgId: string }) => e.orgId === seller2.id);
      expect(mine).toMatchObject({ amount: 150_000, runningBalance: 150_000 });

      const sellerView = await t.api.get(`/ledger/accounts/${accountId}`, auth(seller2.owner));
      const buyerView = await t.api.get(`/ledger/accounts/${accountId}`, auth(buyer2.owner));
      expect(sellerView.body.data).toMatchObject({ balance: 150_000, entryCount: 1, counterpartyOrgId: buyer2.id });
      expect(buyerView.body.data).toMatchObject({ balance: -150_000, entryCount: 1, counterpartyOrgId: seller2.id });
    });

    it('amounts are positive JSON integers up to 2^53-1', async () => {
      for (const amount of [1.5, '100', 0, -5, 2 ** 53, null]) {
        const res = await invoice(accountId, seller2.owner, { number: `BAD-${String(amount)}`, amount });
        expect(res.status).toBe(400);
        expect(res.body.error.code).toBe('VALIDATION_FAILED');
      }
      // From the buyer's side (the seller is owed 150,000 already), so the balance stays in range.
      const ok = await invoice(accountId, buyer2.owner, { number: 'MAX', amount: 2 ** 53 - 1 });
      expect(ok.status).toBe(201);
      // The balance would pass 2^53-1: refused, nothing written.
      const over = await invoice(accountId, buyer2.owner, { number: 'OVER', amount: 2 ** 53 - 1 });
      expect(over.status).toBe(422);
      expect(over.body.error.code).toBe('BALANCE_LIMIT_EXCEEDED');
      const rev = await t.api.post(
        `/ledger/entries/${ok.body.data.entries[0].id}/reverse`,
        { reason: 'test' },
        auth(buyer2.owner),
      );
      expect(rev.status).toBe(201);
      await checkInvariants(accountId);
    });

    it('currency must match the account', async () => {
      const res = await invoice(accountId, seller2.owner, { number: 'USD-1', amount: 100, currency: 'USD' });
      expect(res.status).toBe(422);
      expect(res.body.error.code).toBe('CURRENCY_MISMATCH');
      const bad = await invoice(accountId, seller2.owner, { number: 'XX-1', amount: 100, currency: 'XXQ' });
      expect(bad.status).toBe(400);
      expect((await invoice(accountId, seller2.owner, { number: 'INR-1', amount: 100, currency: 'INR' })).status).toBe(
        201,
      );
    });

    it('invoice numbers are unique per account: the same body again is the first invoice, another body 409', async () => {
      const body = { number: 'INV-UNIQ', amount: 700 };
      const first = await invoice(accountId, seller2.owner, body);
      const same = await invoice(accountId, seller2.owner, body);
      expect(same.status).toBe(201);
      expect(same.body.data.id).toBe(first.body.data.id);
      const other = await invoice(accountId, seller2.owner, { ...body, amount: 701 });
      expect(other.status).toBe(409);
      expect(other.body.error.code).toBe('INVOICE_NUMBER_TAKEN');
      const n = await t.sql.query(
        `SELECT count(*)::int AS n FROM invoices WHERE account_id = $1 AND number = 'INV-UNIQ'`,
        [accountId],
      );
      expect(n.rows[0].n).toBe(1);
    });

    it('payments settle invoices: status follows, overpaying is 422', async () => {
      const inv = (await invoice(accountId, seller2.owner, { number: 'INV-PAY', amount: 1000 })).body.data;
      const part = await payment(accountId, buyer2.owner, {
        amount: 400,
        method: 'UPI',
        reference: 'UTR 1',
        invoiceId: inv.id,
      });
      expect(part.status).toBe(201);
      expect(part.body.data).toMatchObject({
        payerOrgId: buyer2.id,
        payeeOrgId: seller2.id,
        invoiceId: inv.id,
        amount: 400,
      });
      let row = (await t.sql.query('SELECT status, amount_paid::int FROM invoices WHERE id = $1', [inv.id])).rows[0];
      expect(row).toEqual({ status: 'PARTIALLY_PAID', amount_paid: 400 });

      const over = await payment(accountId, seller2.owner, { amount: 601, method: 'cash', invoiceId: inv.id });
      expect(over.status).toBe(422);
      expect(over.body.error.code).toBe('OVERPAYMENT');
      expect(over.body.error.details[0].outstanding).toBe(600);

      const wrongWay = await payment(accountId, seller2.owner, {
        amount: 1,
        method: 'cash',
        invoiceId: inv.id,
        direction: 'PAID',
      });
      expect(wrongWay.status).toBe(422);

      const rest = await payment(accountId, seller2.owner, { amount: 600, method: 'cash', invoiceId: inv.id });
      expect(rest.status).toBe(201);
      expect(rest.body.data.payeeOrgId).toBe(seller2.id);
      row = (await t.sql.query('SELECT status, amount_paid::int FROM invoices WHERE id = $1', [inv.id])).rows[0];
      expect(row).toEqual({ status: 'PAID', amount_paid: 1000 });

      expect(
        (await payment(accountId, seller2.owner, { amount: 1, method: 'cash', invoiceId: randomUUID() })).status,
      ).toBe(404);
      await checkInvariants(accountId);
    });

    it('the response is the stored posting: same body, times and running balances as the rows', async () => {
      const inv = await invoice(accountId, seller2.owner, {
        number: 'INV-ROWS',
        amount: 321,
        dueDate: '2026-12-31',
        memo: 'rows',
      });
      expect(inv.status).toBe(201);
      const body = inv.body.data;
      expect(body).toMatchObject({
        number: 'INV-ROWS',
        amount: 321,
        amountPaid: 0,
        status: 'OPEN',
        dueDate: '2026-12-31',
        memo: 'rows',
        tripId: null,
      });
      const posting = (await t.sql.query('SELECT response, seq FROM ledger_postings WHERE id = $1', [body.postingId]))
        .rows[0];
      expect(posting.response).toEqual(body);
      const rows = await t.sql.query(
        `SELECT id, org_id AS "orgId", seq, amount::float8 AS amount, running_balance::float8 AS "runningBalance", created_at AS "createdAt"
         FROM ledger_entries WHERE posting_id = $1`,
        [body.postingId],
      );
      expect(body.entries).toHaveLength(2);
      for (const e of body.entries) {
        const row = rows.rows.find((r: { id: string }) => r.id === e.id);
        expect({ ...row, createdAt: row.createdAt.toISOString() }).toEqual({
          id: e.id,
          orgId: e.orgId,
          seq: posting.seq,
          amount: e.amount,
          runningBalance: e.runningBalance,
          createdAt: body.createdAt,
        });
      }
      await checkInvariants(accountId);
    });

    it('payments on account move the balance by direction', async () => {
      const before = (await t.api.get(`/ledger/accounts/${accountId}`, auth(seller2.owner))).body.data.balance;
      const received = await payment(accountId, seller2.owner, { amount: 50, method: 'cash' });
      expect(received.body.data).toMatchObject({ payeeOrgId: seller2.id, payerOrgId: buyer2.id, invoiceId: null });
      const paid = await payment(accountId, seller2.owner, { amount: 20, method: 'cash', direction: 'PAID' });
      expect(paid.body.data).toMatchObject({ payeeOrgId: buyer2.id, payerOrgId: seller2.id });
      const after = (await t.api.get(`/ledger/accounts/${accountId}`, auth(seller2.owner))).body.data.balance;
      expect(after).toBe(before - 50 + 20);
    });

    it('reversal: opposite entries linked to the original, once, by the poster', async () => {
      const inv = (await invoice(accountId, seller2.owner, { number: 'INV-REV', amount: 900 })).body.data;
      const pay = (await payment(accountId, buyer2.owner, { amount: 300, method: 'UPI', invoiceId: inv.id })).body.data;
      const invEntry = inv.entries[0].id;

      const blocked = await t.api.post(`/ledger/entries/${invEntry}/reverse`, { reason: 'wrong' }, auth(seller2.owner));
      expect(blocked.status).toBe(409);
      expect(blocked.body.error.code).toBe('NOT_REVERSIBLE');

      const notPoster = await t.api.post(
        `/ledger/entries/${pay.entries[0].id}/reverse`,
        { reason: 'x' },
        auth(seller2.owner),
      );
      expect(notPoster.status).toBe(403);
      expect(
        (await t.api.post(`/ledger/entries/${pay.entries[0].id}/reverse`, { reason: 'x' }, auth(outsiderAcct))).status,
      ).toBe(404);
      expect(
        (await t.api.post(`/ledger/entries/${randomUUID()}/reverse`, { reason: 'x' }, auth(seller2.owner))).status,
      ).toBe(404);
      expect((await t.api.post(`/ledger/entries/${pay.entries[0].id}/reverse`, {}, auth(buyer2.owner))).status).toBe(
        400,
      );

      const revPay = await t.api.post(
        `/ledger/entries/${pay.entries[1].id}/reverse`,
        { reason: 'bounced' },
        auth(buyer2.owner),
      );
      expect(revPay.status).toBe(201);
      expect(revPay.body.data.reversalOfPostingId).toBe(pay.postingId);
      expect(revPay.body.data.entries.map((e: { amount: number }) => e.amount).sort()).toEqual([-300, 300]);
      expect((await t.sql.query('SELECT status FROM invoices WHERE id = $1', [inv.id])).rows[0].status).toBe('OPEN');

      const twice = await t.api.post(
        `/ledger/entries/${pay.entries[0].id}/reverse`,
        { reason: 'again' },
        auth(buyer2.owner),
      );
      expect(twice.status).toBe(409);
      expect(twice.body.error.code).toBe('ALREADY_REVERSED');
      const ofReversal = await t.api.post(
        `/ledger/entries/${revPay.body.data.entries[0].id}/reverse`,
        { reason: 'undo' },
        auth(buyer2.owner),
      );
      expect(ofReversal.status).toBe(409);
      expect(ofReversal.body.error.code).toBe('NOT_REVERSIBLE');

      const revInv = await t.api.post(
        `/ledger/entries/${invEntry}/reverse`,
        { reason: 'cancelled order' },
        auth(seller2.owner),
      );
      expect(revInv.status).toBe(201);
      expect((await t.sql.query('SELECT status FROM invoices WHERE id = $1', [inv.id])).rows[0].status).toBe(
        'REVERSED',
      );
      const payReversed = await payment(accountId, buyer2.owner, { amount: 1, method: 'UPI', invoiceId: inv.id });
      expect(payReversed.status).toBe(409);
      expect(payReversed.body.error.code).toBe('INVOICE_REVERSED');

      // The originals stay.
      const originals = await t.sql.query(
        'SELECT count(*)::int AS n FROM ledger_entries WHERE posting_id = ANY($1::uuid[])',
        [[inv.postingId, pay.postingId]],
      );
      expect(originals.rows[0].n).toBe(4);
      await checkInvariants(accountId);
    });

    it('an invoice trip must be a trip between the two orgs', async () => {
      const tripRow = async (src: string, dst: string) => {
        const truck = await t.sql.query(
          `INSERT INTO trucks (id, org_id, number) VALUES (gen_random_uuid(), $1, $2) RETURNING id`,
          [src, `T${Math.random()}`],
        );
        const u = await newUser(t.api);
        const driver = await t.sql.query(
          `INSERT INTO driver_profiles (id, org_id, user_id) VALUES (gen_random_uuid(), $1, $2) RETURNING id`,
          [src, u.id],
        );
        const trip = await t.sql.query(
          `INSERT INTO trips (id, source_org_id, destination_org_id, truck_id, driver_id, start_name, start_lat, start_lng,
                              end_name, end_lat, end_lng, updated_at)
           VALUES (gen_random_uuid(), $1, $2, $3, $4, 'A', 26.9, 75.8, 'B', 28.6, 77.2, now()) RETURNING id`,
          [src, dst, truck.rows[0].id, driver.rows[0].id],
        );
        return trip.rows[0].id as string;
      };
      const between = await tripRow(buyer2.id, seller2.id);
      const elsewhere = await tripRow(seller2.id, outsider.id);
      const ok = await invoice(accountId, seller2.owner, { number: 'TRIP-1', amount: 10, tripId: between });
      expect(ok.status).toBe(201);
      expect(ok.body.data.tripId).toBe(between);
      const res = await invoice(accountId, seller2.owner, { number: 'TRIP-elsewhere', amount: 10, tripId: elsewhere });
      expect(res.status).toBe(422);
      expect(res.body.error.code).toBe('TRIP_NOT_BETWEEN_ORGS');
      // A trip the caller cannot see (none, or of other orgs) is a 404, as the contract says of any id in a body.
      const hidden = await tripRow(buyer2.id, outsider.id);
      for (const tripId of [hidden, randomUUID()]) {
        const miss = await invoice(accountId, seller2.owner, { number: `TRIP-${tripId}`, amount: 10, tripId });
        expect(miss.status).toBe(404);
        expect(miss.body.error.code).toBe('NOT_FOUND');
      }
    });

    it('access: ledger roles of either org; other members 403, others 404', async () => {
      const staff = await newMember(t.api, buyer2, 'STAFF');
      const driver = await newMember(t.api, seller2, 'DRIVER');
      for (const u of [staff, driver]) {
        expect((await t.api.get(`/ledger/accounts/${accountId}`, auth(u))).status).toBe(403);
        expect((await invoice(accountId, u, { number: 'NO', amount: 1 })).status).toBe(403);
      }
      for (const path of ['', '/entries', '/statement', '/statement?format=csv']) {
        const res = await t.api.get(`/ledger/accounts/${accountId}${path}`, auth(outsiderAcct));
        expect(res.status).toBe(404);
        expect(res.body.error.code).toBe('NOT_FOUND');
      }
      expect((await invoice(accountId, outsiderAcct, { number: 'NO', amount: 1 })).status).toBe(404);
      expect((await payment(accountId, outsiderAcct, { amount: 1, method: 'cash' })).status).toBe(404);
      expect((await t.api.get(`/ledger/accounts/${randomUUID()}`, auth(seller2.owner))).status).toBe(404);
    });

    it('a member of both orgs names the side with asOrgId', async () => {
      const both = await newMember(t.api, seller2, 'ACCOUNTANT');
      await t.api.post(`/orgs/${buyer2.id}/members`, { phone: both.phone, role: 'ADMIN' }, auth(buyer2.owner));
      const ambiguous = await t.api.get(`/ledger/accounts/${accountId}`, auth(both));
      expect(ambiguous.status).toBe(400);
      const asSeller = await t.api.get(`/ledger/accounts/${accountId}?asOrgId=${seller2.id}`, auth(both));
      const asBuyer = await t.api.get(`/ledger/accounts/${accountId}?asOrgId=${buyer2.id}`, auth(both));
      expect(asSeller.body.data.balance).toBe(-asBuyer.body.data.balance);
      expect((await t.api.get(`/ledger/accounts/${accountId}?asOrgId=${outsider.id}`, auth(both))).status).toBe(400);
    });
  });

  describe('idempotency', () => {
    let accountId: string;
    beforeAll(async () => {
      accountId = await newAccount(seller, outsider);
    });

    it('same key and body: the first response again, one posting', async () => {
      const key = randomUUID();
      const body = { amount: 250, method: 'NEFT', reference: 'UTR-9' };
      const first = await payment(accountId, seller.owner, body, key);
      const again = await payment(accountId, seller.owner, body, key);
      expect(first.status).toBe(201);
      expect(again.status).toBe(201);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.body.data).toEqual(first.body.data);
      const n = await t.sql.query(
        'SELECT count(*)::int AS n FROM ledger_postings WHERE account_id = $1 AND idempotency_key = $2',
        [accountId, key],
      );
      expect(n.rows[0].n).toBe(1);
    });

    it('same key, another body: 409', async () => {
      const key = randomUUID();
      expect((await payment(accountId, seller.owner, { amount: 1, method: 'cash' }, key)).status).toBe(201);
      const other = await payment(accountId, seller.owner, { amount: 2, method: 'cash' }, key);
      expect(other.status).toBe(409);
      expect(other.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
      const otherKind = await invoice(accountId, seller.owner, { number: 'K-1', amount: 1 }, key);
      expect(otherKind.status).toBe(409);
      expect((await payment(accountId, seller.owner, { amount: 1, method: 'cash' }, 'x'.repeat(256))).status).toBe(400);
    });

    it('concurrent requests with one key make one posting', async () => {
      const key = randomUUID();
      const before = (await t.sql.query('SELECT entry_count FROM ledger_accounts WHERE id = $1', [accountId])).rows[0]
        .entry_count;
      const results = await Promise.all(
        Array.from({ length: 12 }, () => invoice(accountId, seller.owner, { number: 'CONC-1', amount: 333 }, key)),
      );
      expect(results.map((r) => r.status)).toEqual(Array(12).fill(201));
      expect(new Set(results.map((r) => r.body.data.id)).size).toBe(1);
      const acc = await checkInvariants(accountId);
      expect(acc.entry_count).toBe(before + 1);
    });

    it('a reversal is idempotent too', async () => {
      const inv = (await invoice(accountId, seller.owner, { number: 'REV-IDEM', amount: 10 })).body.data;
      const key = randomUUID();
      const path = `/ledger/entries/${inv.entries[0].id}/reverse`;
      const [a, b] = await Promise.all([
        t.api.post(path, { reason: 'dup' }, auth(seller.owner, key)),
        t.api.post(path, { reason: 'dup' }, auth(seller.owner, key)),
      ]);
      expect([a.status, b.status]).toEqual([201, 201]);
      expect(a.body.data.id).toBe(b.body.data.id);
    });
  });

  describe('concurrency', () => {
    it('50 concurrent postings on one account: exact balance, unbroken chain, exact count', async () => {
      const a = await newOrg(t.api);
      const b = await newOrg(t.api);
      const accountId = await newAccount(a, b);
      const inv = (await invoice(accountId, a.owner, { number: 'BIG', amount: 1_000_000 })).body.data;
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => {
          if (i % 3 === 0) return invoice(accountId, a.owner, { number: `C-${i}`, amount: 1000 + i }, `k-${i}`);
          if (i % 3 === 1)
            return payment(accountId, b.owner, { amount: 100 + i, method: 'UPI', invoiceId: inv.id }, `k-${i}`);
          return payment(accountId, b.owner, { amount: 7 + i, method: 'cash', direction: 'PAID' }, `k-${i}`);
        }),
      );
      expect(results.map((r) => r.status)).toEqual(Array(50).fill(201));
      const acc = await checkInvariants(accountId);
      expect(acc.entry_count).toBe(51);
      let expected = 1_000_000;
      for (let i = 0; i < 50; i++) {
        if (i % 3 === 0) expected += 1000 + i;
        else if (i % 3 === 1) expected -= 100 + i;
        else expected -= 7 + i;
      }
      const view = await t.api.get(`/ledger/accounts/${accountId}`, auth(a.owner));
      expect(view.body.data).toMatchObject({ balance: expected, entryCount: 51 });
      const paid = await t.sql.query('SELECT amount_paid::int AS paid FROM invoices WHERE id = $1', [inv.id]);
      const sumPaid = Array.from({ length: 50 }, (_, i) => i)
        .filter((i) => i % 3 === 1)
        .reduce((s, i) => s + 100 + i, 0);
      expect(paid.rows[0].paid).toBe(sumPaid);
    });
    it('postings that arrive together share statements (group commit), each exact, a repeated key posting once', async () => {
      const parties = await Promise.all([newOrg(t.api), newOrg(t.api), newOrg(t.api), newOrg(t.api)]);
      const accounts = await Promise.all([1, 2, 3].map((i) => newAccount(parties[0], parties[i])));
      const batcher = t.app.get(PostingBatcher);
      const before = { ...batcher.stats };
      const results = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          invoice(accounts[i % 3], parties[0].owner, { number: `G-${i}`, amount: 10 + i }, `g-${i}`),
        ).concat([invoice(accounts[0], parties[0].owner, { number: 'G-0', amount: 10 }, 'g-0')]),
      );
      expect(results.map((r) => r.status)).toEqual(Array(61).fill(201));
      const postings = batcher.stats.items - before.items;
      const statements = batcher.stats.groups - before.groups;
      expect(postings).toBe(61);
      expect(statements).toBeLessThan(postings);
      expect(batcher.stats.largestGroup).toBeGreaterThan(1);
      // The repeated key: one posting, the same answer twice, the second marked as a replay.
      const pair = [results[0], results[60]];
      expect(pair[1].body.data).toEqual(pair[0].body.data);
      expect(pair.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(1);
      for (const [k, accountId] of accounts.entries()) {
        const acc = await checkInvariants(accountId);
        expect(acc.entry_count).toBe(20);
        const expected = Array.from({ length: 60 }, (_, i) => i)
          .filter((i) => i % 3 === k)
          .reduce((sum, i) => sum + 10 + i, 0);
        expect(Math.abs(Number(acc.balance))).toBe(expected);
      }
    });

    it('reversals share the posting batcher with invoices; one posting is reversed once however many try', async () => {
      const a = await newOrg(t.api);
      const b = await newOrg(t.api);
      const accountId = await newAccount(a, b);
      const originals: { entries: { id: string }[] }[] = [];
      for (let i = 0; i < 20; i++) {
        originals.push((await invoice(accountId, a.owner, { number: `RB-${i}`, amount: 100 + i })).body.data);
      }
      const batcher = t.app.get(PostingBatcher);
      const before = { ...batcher.stats };
      const reverse = (entryId: string) =>
        t.api.post(`/ledger/entries/${entryId}/reverse`, { reason: 'batch' }, auth(a.owner, randomUUID()));
      const [reversals, rivals, fresh] = await Promise.all([
        Promise.all(originals.map((inv) => reverse(inv.entries[0].id))),
        // Five more reversals of the first invoice, from either of its entries, each with a key of its own.
        Promise.all(Array.from({ length: 5 }, (_, i) => reverse(originals[0].entries[i % 2].id))),
        Promise.all(
          Array.from({ length: 20 }, (_, i) => invoice(accountId, a.owner, { number: `RN-${i}`, amount: 7 })),
        ),
      ]);
      expect(batcher.stats.items - before.items).toBe(45);
      expect(fresh.map((r) => r.status)).toEqual(Array(20).fill(201));
      const firstTries = [reversals[0], ...rivals];
      expect(reversals.slice(1).map((r) => r.status)).toEqual(Array(19).fill(201));
      expect(firstTries.filter((r) => r.status === 201)).toHaveLength(1);
      const won = firstTries.find((r) => r.status === 201)!;
      for (const lost of firstTries.filter((r) => r.status !== 201)) {
        expect(lost.status).toBe(409);
        expect(lost.body.error.code).toBe('ALREADY_REVERSED');
        expect(lost.body.error.details[0].reversalPostingId).toBe(won.body.data.id);
      }
      const statuses = await t.sql.query(
        `SELECT status::text, count(*)::int AS n FROM invoices WHERE account_id = $1 GROUP BY 1 ORDER BY 1`,
        [accountId],
      );
      expect(statuses.rows).toEqual([
        { status: 'OPEN', n: 20 },
        { status: 'REVERSED', n: 20 },
      ]);
      const acc = await checkInvariants(accountId);
      expect(acc.entry_count).toBe(60);
      expect(Number(acc.balance) * (acc.org_a_id === a.id ? 1 : -1)).toBe(20 * 7);
    });

    it('a batch PostgreSQL refuses is posted again in halves: only the faulty posting fails', async () => {
      const a = await newOrg(t.api);
      const b = await newOrg(t.api);
      const accountId = await newAccount(a, b);
      const batcher = t.app.get(PostingBatcher);
      const request = (n: number, amount: number) => ({
        kind: 'INVOICE' as const,
        accountId,
        side: a.id,
        userId: a.owner.id,
        now: new Date(),
        postingId: uuidv7(),
        documentId: uuidv7(),
        entryIds: [uuidv7(), uuidv7()] as [string, string],
        outboxIds: [uuidv7(), uuidv7()] as [string, string],
        idempotencyKey: null,
        requestHash: `h-${n}`,
        memo: null,
        invoice: { number: `F-${n}`, amount, tripId: null, dueDate: null },
      });
      const before = { ...batcher.stats };
      // Posted in one tick: two take the free slots, the other eight wait and go as one batch,
      // where the last one carries an amount PostgreSQL cannot read (the API's validation never lets one through).
      const settled = await Promise.allSettled(
        Array.from({ length: 10 }, (_, n) =>
          batcher.post(request(n, n === 9 ? ('12.5x' as unknown as number) : 100 + n)),
        ),
      );
      expect(settled.slice(0, 9).map((s) => s.status)).toEqual(Array(9).fill('fulfilled'));
      expect(settled[9].status).toBe('rejected');
      // The refused batch of 8 is halved down to the faulty posting: 8, then its half of 4, then its pair.
      expect(batcher.stats.retriedApart - before.retriedApart).toBe(8 + 4 + 2);
      const stored = await t.sql.query(`SELECT i.number FROM invoices i WHERE i.account_id = $1 ORDER BY i.amount`, [
        accountId,
      ]);
      expect(stored.rows.map((r) => r.number)).toEqual(Array.from({ length: 9 }, (_, n) => `F-${n}`));
      const acc = await checkInvariants(accountId);
      expect(acc.entry_count).toBe(9);
    });
  });

  describe('append-only, enforced by the database', () => {
    let entryId: string;
    let postingId: string;
    let accountId: string;
    beforeAll(async () => {
      const a = await newOrg(t.api);
      const b = await newOrg(t.api);
      accountId = await newAccount(a, b);
      const inv = (await invoice(accountId, a.owner, { number: 'AO-1', amount: 500 })).body.data;
      entryId = inv.entries[0].id;
      postingId = inv.postingId;
    });

    it('rejects UPDATE and DELETE of entries', async () => {
      await expect(
        t.sql.query('UPDATE ledger_entries SET amount = amount + 1 WHERE id = $1', [entryId]),
      ).rejects.toThrow(/append-only/);
      await expect(t.sql.query('DELETE FROM ledger_entries WHERE id = $1', [entryId])).rejects.toThrow(/append-only/);
      await expect(t.sql.query('DELETE FROM ledger_postings WHERE id = $1', [postingId])).rejects.toThrow(
        /append-only/,
      );
      const row = await t.sql.query('SELECT amount::int FROM ledger_entries WHERE id = $1', [entryId]);
      expect(Math.abs(row.rows[0].amount)).toBe(500);
    });

    it('rejects a transaction whose entries for a posting do not sum to zero', async () => {
      const acc = (await t.sql.query('SELECT * FROM ledger_accounts WHERE id = $1', [accountId])).rows[0];
      const insert = async (amounts: number[]) => {
        await t.sql.query('BEGIN');
        try {
          const pid = randomUUID();
          await t.sql.query(
            `INSERT INTO ledger_postings (id, account_id, seq, kind, posted_by_org_id, posted_by_user_id, request_hash, response, created_at)
             VALUES ($1, $2, 99, 'PAYMENT', $3, $3, 'h', '{}', now())`,
            [pid, accountId, acc.org_a_id],
          );
          const orgs = [acc.org_a_id, acc.org_b_id];
          for (const [i, amount] of amounts.entries()) {
            await t.sql.query(
              `INSERT INTO ledger_entries (id, account_id, posting_id, org_id, seq, amount, running_balance, created_at)
               VALUES (gen_random_uuid(), $1, $2, $3, 99, $4, 0, now())`,
              [accountId, pid, orgs[i], amount],
            );
          }
          await t.sql.query('COMMIT');
        } catch (err) {
          await t.sql.query('ROLLBACK');
          throw err;
        }
      };
      await expect(insert([100, -99])).rejects.toThrow(/not balanced/);
      await expect(insert([100])).rejects.toThrow(/not balanced/);
      const n = await t.sql.query('SELECT count(*)::int AS n FROM ledger_entries WHERE seq = 99');
      expect(n.rows[0].n).toBe(0);
    });
  });

  describe('entries, statements, CSV', () => {
    let accountId: string;
    let a: TestOrg;
    let b: TestOrg;
    const stamps: string[] = [];
    beforeAll(async () => {
      a = await newOrg(t.api);
      b = await newOrg(t.api);
      accountId = await newAccount(a, b);
      for (let i = 1; i <= 25; i++) {
        const res =
          i % 4 === 0
            ? await payment(accountId, b.owner, {
                amount: 40 * i,
                method: 'cash',
                memo: `part "${i}", thanks\nnext line`,
              })
            : await invoice(accountId, a.owner, {
                number: `S-${i}`,
                amount: 100 * i,
                memo: i === 1 ? 'comma, "quote"' : undefined,
              });
        stamps.push(res.body.data.createdAt);
      }
    });

    it('lists entries oldest first with running balances, in keyset pages', async () => {
      const seen: { seq: number; amount: number; runningBalance: number }[] = [];
      let cursor: string | null = null;
      do {
        const q: string = cursor ? `&cursor=${cursor}` : '';
        const res = await t.api.get(`/ledger/accounts/${accountId}/entries?limit=7${q}`, auth(b.owner));
        expect(res.status).toBe(200);
        seen.push(...res.body.data);
        cursor = res.body.meta.nextCursor;
      } while (cursor);
      expect(seen.map((e) => e.seq)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
      let running = 0;
      for (const e of seen) {
        running += e.amount;
        expect(e.runningBalance).toBe(running);
      }
      // The buyer's side: invoices are negative.
      expect(seen[0]).toMatchObject({ amount: -100, kind: 'INVOICE', document: 'S-1', orgId: b.id });
      const bad = await t.api.get(`/ledger/accounts/${accountId}/entries?cursor=garbage`, auth(b.owner));
      expect(bad.status).toBe(400);
    });

    it('filters entries by time', async () => {
      const from = stamps[10];
      const res = await t.api.get(`/ledger/accounts/${accountId}/entries?limit=100&from=${from}`, auth(a.owner));
      expect(res.body.data.every((e: { createdAt: string }) => e.createdAt >= from)).toBe(true);
      expect(res.body.data[0].seq).toBeLessThanOrEqual(11);
      expect(res.body.data.at(-1).seq).toBe(25);
    });

    it('a statement of a range: closing - opening = sum of its entries', async () => {
      const from = stamps[5];
      const to = stamps[20];
      const res = await t.api.get(`/ledger/accounts/${accountId}/statement?from=${from}&to=${to}`, auth(a.owner));
      expect(res.status).toBe(200);
      const s = res.body.data;
      const sum = s.entries.reduce((acc: number, e: { amount: number }) => acc + e.amount, 0);
      expect(s.closingBalance - s.openingBalance).toBe(sum);
      expect(s.entryCount).toBe(s.entries.length);
      expect(s.entries.every((e: { createdAt: string }) => e.createdAt >= from && e.createdAt < to)).toBe(true);
      // Opening = everything before the range.
      const all = await t.api.get(`/ledger/accounts/${accountId}/entries?limit=100`, auth(a.owner));
      const before = all.body.data.filter((e: { createdAt: string }) => e.createdAt < from);
      expect(s.openingBalance).toBe(before.reduce((acc: number, e: { amount: number }) => acc + e.amount, 0));

      const whole = await t.api.get(`/ledger/accounts/${accountId}/statement`, auth(a.owner));
      expect(whole.body.data).toMatchObject({ openingBalance: 0, entryCount: 25 });
      const acct = await t.api.get(`/ledger/accounts/${accountId}`, auth(a.owner));
      expect(whole.body.data.closingBalance).toBe(acct.body.data.balance);
      const bad = await t.api.get(`/ledger/accounts/${accountId}/statement?from=${to}&to=${from}`, auth(a.owner));
      expect(bad.status).toBe(400);
    });

    it('CSV is streamed with a header row, RFC 4180 quoting, and parses back to the same figures', async () => {
      const res = await fetch(`${t.api.baseUrl}/ledger/accounts/${accountId}/statement?format=csv`, {
        headers: { authorization: `Bearer ${b.owner.accessToken}` },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
      const text = await res.text();
      const rows = parseCsv(text);
      expect(rows[0]).toEqual([
        'seq',
        'entryId',
        'postingId',
        'createdAt',
        'kind',
        'document',
        'memo',
        'amount',
        'runningBalance',
        'currency',
      ]);
      const data = rows.slice(1);
      expect(data).toHaveLength(25);
      const json = await t.api.get(`/ledger/accounts/${accountId}/statement`, auth(b.owner));
      const s = json.body.data;
      expect(Number(res.headers.get('x-opening-balance'))).toBe(s.openingBalance);
      expect(Number(res.headers.get('x-closing-balance'))).toBe(s.closingBalance);
      data.forEach((r, i) => {
        expect(Number(r[0])).toBe(s.entries[i].seq);
        expect(r[1]).toBe(s.entries[i].id);
        expect(Number(r[7])).toBe(s.entries[i].amount);
        expect(Number(r[8])).toBe(s.entries[i].runningBalance);
        expect(r[6]).toBe(s.entries[i].memo ?? '');
      });
      expect(data.reduce((acc, r) => acc + Number(r[7]), 0)).toBe(s.closingBalance - s.openingBalance);
      expect(text).toContain('"comma, ""quote"""');
    });
  });

  describe('outbox', () => {
    it('writes ledger.invoice and ledger.payment events for both orgs in the posting transaction', async () => {
      const a = await newOrg(t.api);
      const b = await newOrg(t.api);
      const accountId = await newAccount(a, b);
      const inv = (await invoice(accountId, a.owner, { number: 'EV-1', amount: 10 })).body.data;
      const pay = (await payment(accountId, b.owner, { amount: 10, method: 'cash', invoiceId: inv.id })).body.data;
      const { rows } = await t.sql.query(
        `SELECT type, org_id, data FROM outbox_events WHERE data->>'id' = ANY($1) ORDER BY type, org_id`,
        [[inv.id, pay.id]],
      );
      expect(rows.map((r) => [r.type, r.org_id])).toEqual(
        [
          ['ledger.invoice', a.id],
          ['ledger.invoice', b.id],
          ['ledger.payment', a.id],
          ['ledger.payment', b.id],
        ].sort((x, y) => (x[0] + x[1] < y[0] + y[1] ? -1 : 1)),
      );
      expect(rows[0].data).toMatchObject({ id: inv.id, number: 'EV-1', amount: 10 });
    });

    it("reversals write the original's event again, with its new state and the reversal, for both orgs", async () => {
      const a = await newOrg(t.api);
      const b = await newOrg(t.api);
      const accountId = await newAccount(a, b);
      const inv = (await invoice(accountId, a.owner, { number: 'EV-R', amount: 40 })).body.data;
      const pay = (await payment(accountId, b.owner, { amount: 15, method: 'cash', invoiceId: inv.id })).body.data;
      const revPay = await t.api.post(
        `/ledger/entries/${pay.entries[0].id}/reverse`,
        { reason: 'bounced' },
        auth(b.owner),
      );
      expect(revPay.status).toBe(201);
      const revInv = await t.api.post(
        `/ledger/entries/${inv.entries[1].id}/reverse`,
        { reason: 'void' },
        auth(a.owner),
      );
      expect(revInv.status).toBe(201);
      const { rows } = await t.sql.query(
        `SELECT type, org_id, data FROM outbox_events WHERE data->'reversal'->>'id' = ANY($1) ORDER BY type, org_id`,
        [[revPay.body.data.id, revInv.body.data.id]],
      );
      expect(rows.map((r) => [r.type, r.org_id])).toEqual(
        [
          ['ledger.invoice', a.id],
          ['ledger.invoice', b.id],
          ['ledger.payment', a.id],
          ['ledger.payment', b.id],
        ].sort((x, y) => (x[0] + x[1] < y[0] + y[1] ? -1 : 1)),
      );
      const invEvent = rows.find((r) => r.type === 'ledger.invoice')!.data;
      expect(invEvent).toEqual({ ...inv, status: 'REVERSED', reversal: revInv.body.data });
      const payEvent = rows.find((r) => r.type === 'ledger.payment')!.data;
      expect(payEvent).toEqual({ ...pay, reversed: true, reversal: revPay.body.data });
      expect(revInv.body.data).toMatchObject({
        accountId,
        reversalOfPostingId: inv.postingId,
        reversedKind: 'INVOICE',
        reason: 'void',
      });
      const paid = await t.sql.query('SELECT reversed_at FROM payments WHERE id = $1', [pay.id]);
      expect(paid.rows[0].reversed_at).toEqual(new Date(revPay.body.data.createdAt));
    });

    it('a posting that rolls back leaves no event, no entry, no balance change', async () => {
      const a = await newOrg(t.api);
      const b = await newOrg(t.api);
      const accountId = await newAccount(a, b);
      // Fails the transaction at COMMIT, after every row of the posting was written.
      await t.sql.query(`
        CREATE FUNCTION test_fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.data->>'number' = 'ROLLBACK-ME' THEN RAISE EXCEPTION 'forced rollback'; END IF;
          RETURN NULL;
        END $$;
        CREATE CONSTRAINT TRIGGER test_fail_at_commit AFTER INSERT ON outbox_events
          DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_fail_at_commit();`);
      try {
        const res = await invoice(accountId, a.owner, { number: 'ROLLBACK-ME', amount: 10 });
        expect(res.status).toBe(500);
        expect(JSON.stringify(res.body)).not.toMatch(/forced rollback|INSERT/);
      } finally {
        await t.sql.query('DROP TRIGGER test_fail_at_commit ON outbox_events; DROP FUNCTION test_fail_at_commit();');
      }
      const events = await t.sql.query(
        `SELECT count(*)::int AS n FROM outbox_events WHERE data->>'number' = 'ROLLBACK-ME'`,
      );
      expect(events.rows[0].n).toBe(0);
      const acc = await checkInvariants(accountId);
      expect(acc.entry_count).toBe(0);
      expect(Number(acc.balance)).toBe(0);
      expect((await invoice(accountId, a.owner, { number: 'ROLLBACK-ME', amount: 10 })).status).toBe(201);
    });
  });
});
