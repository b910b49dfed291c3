import { randomUUID } from 'node:crypto';
import { parseCsv } from '../../src/modules/ledger/ledger-csv';
import { newOrg, TestOrg, TestUser } from '../support/factories';
import { startTestApp, TestApp } from '../support/test-app';

/**
 * API.md, Ledger: keys and invoice numbers belong to the org that posts; CSV
 * cells of user text that a spreadsheet would run as a formula are written
 * with a leading `'`.
 */
describe('ledger: per-org keys and numbers, CSV formula cells', () => {
  let t: TestApp;
  let a: TestOrg;
  let b: TestOrg;
  let accountId: string;

  const auth = (u: TestUser, key?: string) => ({
    token: u.accessToken,
    headers: key ? { 'idempotency-key': key } : undefined,
  });
  const invoice = (by: TestUser, body: Record<string, unknown>, key?: string) =>
    t.api.post(`/ledger/accounts/${accountId}/invoices`, body, auth(by, key));
  const payment = (by: TestUser, body: Record<string, unknown>, key?: string) =>
    t.api.post(`/ledger/accounts/${accountId}/payments`, body, auth(by, key));

  beforeAll(async () => {
    t = await startTestApp();
    a = await newOrg(t.api, undefined, 'Sharma Traders');
    b = await newOrg(t.api, undefined, 'Gupta Mills');
    const res = await t.api.post(`/orgs/${a.id}/accounts`, { counterpartyOrgId: b.id }, auth(a.owner));
    accountId = res.body.data.id;
  });
  afterAll(() => t.close());

  it('both orgs of an account may each issue invoice "118"; one org may not reuse its own', async () => {
    const fromA = await invoice(a.owner, { number: '118', amount: 5000 });
    const fromB = await invoice(b.owner, { number: '118', amount: 7000 });
    expect([fromA.status, fromB.status]).toEqual([201, 201]);
    expect(fromA.body.data.issuerOrgId).toBe(a.id);
    expect(fromB.body.data.issuerOrgId).toBe(b.id);
    expect(fromB.body.data.id).not.toBe(fromA.body.data.id);

    // The same org again: the same body replays its first invoice, another body is 409.
    const replay = await invoice(a.owner, { number: '118', amount: 5000 });
    expect(replay.status).toBe(201);
    expect(replay.body.data.id).toBe(fromA.body.data.id);
    const taken = await invoice(b.owner, { number: '118', amount: 7001 });
    expect(taken.status).toBe(409);
    expect(taken.body.error.code).toBe('INVOICE_NUMBER_TAKEN');
    const n = await t.sql.query(`SELECT count(*)::int AS n FROM invoices WHERE account_id = $1 AND number = '118'`, [
      accountId,
    ]);
    expect(n.rows[0].n).toBe(2);
  });

  it('both orgs may use one Idempotency-Key with different bodies; one org reusing it is replayed or 409', async () => {
    const key = randomUUID();
    const fromA = await payment(a.owner, { amount: 100, method: 'cash', memo: 'from A' }, key);
    const fromB = await payment(b.owner, { amount: 200, method: 'NEFT', memo: 'from B' }, key);
    expect([fromA.status, fromB.status]).toEqual([201, 201]);
    expect(fromB.headers.get('idempotent-replayed')).toBeNull();
    expect(fromB.body.data.id).not.toBe(fromA.body.data.id);

    const again = await payment(b.owner, { amount: 200, method: 'NEFT', memo: 'from B' }, key);
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.data.id).toBe(fromB.body.data.id);
    const reused = await payment(a.owner, { amount: 101, method: 'cash' }, key);
    expect(reused.status).toBe(409);
    expect(reused.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');

    // Invoices too, and concurrently from both sides (one account lock, two postings).
    const invKey = randomUUID();
    const [ia, ib] = await Promise.all([
      invoice(a.owner, { number: 'K-A', amount: 1 }, invKey),
      invoice(b.owner, { number: 'K-B', amount: 2 }, invKey),
    ]);
    expect([ia.status, ib.status]).toEqual([201, 201]);
    const rows = await t.sql.query(
      'SELECT posted_by_org_id::text AS org FROM ledger_postings WHERE account_id = $1 AND idempotency_key = $2 ORDER BY 1',
      [accountId, invKey],
    );
    expect(rows.rows.map((r) => r.org)).toEqual([a.id, b.id].sort());
  });

  it("a reversal key is the reversing org's: the other org's posting with that key does not replay", async () => {
    const key = randomUUID();
    const invB = await invoice(b.owner, { number: 'REV-B', amount: 50 }, key);
    expect(invB.status).toBe(201);
    const invA = await invoice(a.owner, { number: 'REV-A', amount: 60 });
    const rev = await t.api.post(
      `/ledger/entries/${invA.body.data.entries[0].id}/reverse`,
      { reason: 'typo' },
      auth(a.owner, key),
    );
    expect(rev.status).toBe(201);
    expect(rev.body.data.reversalOfPostingId).toBe(invA.body.data.postingId);
  });

  it('CSV: memo, number and reference cells that start a formula get a leading quote; amounts stay integers', async () => {
    const c = await newOrg(t.api);
    const d = await newOrg(t.api);
    const acc = (await t.api.post(`/orgs/${c.id}/accounts`, { counterpartyOrgId: d.id }, auth(c.owner))).body.data.id;
    const post = (path: string, body: Record<string, unknown>, by: TestUser) =>
      t.api.post(`/ledger/accounts/${acc}/${path}`, body, auth(by));
    expect((await post('invoices', { number: '=1+1', amount: 500, memo: '@SUM(A1:A9)' }, c.owner)).status).toBe(201);
    expect((await post('invoices', { number: 'N-2', amount: 700, memo: '+x' }, c.owner)).status).toBe(201);
    expect(
      (
        await post(
          'payments',
          { amount: 300, method: 'cash', reference: '-x', memo: 'TAB', direction: 'PAID' },
          d.owner,
        )
      ).status,
    ).toBe(201);
    // (Leading tabs and CRs are trimmed from bodies at the edge; csvUserText's unit spec covers them.)
    expect((await post('invoices', { number: 'N-4', amount: 100, memo: '=CR, "q"' }, c.owner)).status).toBe(201);

    const res = await fetch(`${t.api.baseUrl}/ledger/accounts/${acc}/statement?format=csv`, {
      headers: { authorization: `Bearer ${d.owner.accessToken}` },
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    const rows = parseCsv(text).slice(1);
    // document (5), memo (6), amount (7), runningBalance (8); d's side: invoices negative.
    expect(rows.map((r) => [r[5], r[6], r[7], r[8]])).toEqual([
      ["'=1+1", "'@SUM(A1:A9)", '-500', '-500'],
      ['N-2', "'+x", '-700', '-1200'],
      ["'-x", 'TAB', '300', '-900'],
      ['N-4', '\'=CR, "q"', '-100', '-1000'],
    ]);
    // Amounts are written bare: a negative amount is `-500`, not `'-500` or quoted.
    expect(text).toContain(',-500,-500,INR\r\n');
  });
});
