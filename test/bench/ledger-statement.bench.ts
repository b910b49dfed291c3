/**
 * A CSV statement of 1,000,000 entries, streamed from a database cursor:
 * time, bytes and the process's peak RSS (the server runs in this process),
 * which must stay flat. The entries are loaded with SQL as valid balanced
 * postings (the append-only and zero-sum triggers stay on).
 * Prints one JSON line; never fails on a number.
 */
import 'reflect-metadata';
import { Client } from 'pg';
import { freshDatabase, runBench, startInProcessApp } from './bench-support';

const ENTRIES = Number(process.env.BENCH_STATEMENT_ENTRIES ?? 1_000_000);
const CHUNK = 250_000;

async function main(): Promise<void> {
  const db = await freshDatabase('stmt');
  const databaseUrl = db.url;
  const { api, close } = await startInProcessApp(databaseUrl);
  const sql = new Client({ connectionString: databaseUrl });
  await sql.connect();
  try {
    const post = async (path: string, body: unknown, token?: string) => {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (token) headers.authorization = `Bearer ${token}`;
      const res = await fetch(api + path, { method: 'POST', headers, body: JSON.stringify(body) });
      return (await res.json()) as { data: { id: string; accessToken: string } };
    };
    const token = (await post('/auth/register', { phone: '+919800000002', name: 'Bench', password: 'password-123' }))
      .data.accessToken;
    const a = (await post('/orgs', { name: 'Seller' }, token)).data.id;
    const other = await newOrgOwnedByAnother(post);
    const accountId = (await post(`/orgs/${a}/accounts`, { counterpartyOrgId: other }, token)).data.id;
    const acc = (await sql.query('SELECT org_a_id, org_b_id FROM ledger_accounts WHERE id = $1', [accountId])).rows[0];

    // Balanced postings in bulk: amount_i on A's side, -amount_i on B's, running balances by window sum.
    const loadStarted = performance.now();
    for (let from = 1; from <= ENTRIES; from += CHUNK) {
      const to = Math.min(ENTRIES, from + CHUNK - 1);
      await sql.query('BEGIN');
      await sql.query(
        `CREATE TEMP TABLE gen ON COMMIT DROP AS
         SELECT i, gen_random_uuid() AS pid, ((i::bigint * 7919) % 100000 + 1) * (CASE WHEN i % 5 = 0 THEN -1 ELSE 1 END) AS amount,
                timestamptz '2026-01-01' + i * interval '1 millisecond' AS at
         FROM generate_series($1::int, $2::int) i`,
        [from, to],
      );
      await sql.query(
        `INSERT INTO ledger_postings (id, account_id, seq, kind, posted_by_org_id, posted_by_user_id, memo, request_hash, response, created_at)
         SELECT pid, $1::uuid, i, CASE WHEN amount > 0 THEN 'INVOICE' ELSE 'PAYMENT' END::ledger_posting_kind, $2::uuid, $2::uuid,
                CASE WHEN i % 10 = 0 THEN 'lot ' || i || ', "fresh"' END, 'bulk', '{}', at FROM gen`,
        [accountId, acc.org_a_id],
      );
      await sql.query(
        `WITH g AS (SELECT *, (SELECT coalesce(balance, 0) FROM ledger_accounts WHERE id = $1::uuid) + sum(amount) OVER (ORDER BY i) AS run FROM gen)
         INSERT INTO ledger_entries (id, account_id, posting_id, org_id, seq, amount, running_balance, created_at)
         SELECT gen_random_uuid(), $1::uuid, pid, $2::uuid, i, amount, run, at FROM g
         UNION ALL
         SELECT gen_random_uuid(), $1::uuid, pid, $3::uuid, i, -amount, -run, at FROM g`,
        [accountId, acc.org_a_id, acc.org_b_id],
      );
      await sql.query(
        `UPDATE ledger_accounts SET balance = balance + (SELECT sum(amount) FROM gen), entry_count = $2,
                last_posted_at = (SELECT max(at) FROM gen) WHERE id = $1`,
        [accountId, to],
      );
      await sql.query('COMMIT');
    }
    await sql.query('ANALYZE ledger_entries; ANALYZE ledger_postings');
    const loadSeconds = (performance.now() - loadStarted) / 1000;

    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    let peakRss = rssBefore;
    let peakHeap = process.memoryUsage().heapUsed;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakHeap = Math.max(peakHeap, m.heapUsed);
    }, 20);
    const started = performance.now();
    const res = await fetch(`${api}/ledger/accounts/${accountId}/statement?format=csv`, {
      headers: { authorization: `Bearer ${token}` },
    });
    let bytes = 0;
    let lines = 0;
    let firstByteMs = 0;
    const reader = res.body!.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!firstByteMs) firstByteMs = performance.now() - started;
      bytes += value.length;
      for (const b of value) if (b === 10) lines++;
    }
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    const mb = (n: number) => Math.round((n / 1048576) * 10) / 10;
    process.stdout.write(
      `${JSON.stringify({
        bench: 'ledger-statement-csv',
        entries: ENTRIES,
        status: res.status,
        rows: lines - 1,
        bytesMB: mb(bytes),
        loadSeconds: Math.round(loadSeconds * 10) / 10,
        seconds: Math.round(seconds * 100) / 100,
        rowsPerSec: Math.round((lines - 1) / seconds),
        firstByteMs: Math.round(firstByteMs),
        rssBeforeMB: mb(rssBefore),
        peakRssMB: mb(peakRss),
        rssGrowthMB: mb(peakRss - rssBefore),
        peakHeapMB: mb(peakHeap),
        openingBalance: Number(res.headers.get('x-opening-balance')),
        closingBalance: Number(res.headers.get('x-closing-balance')),
      })}\n`,
    );
  } finally {
    await sql.end();
    await close();
    await db.drop();
  }
}

async function newOrgOwnedByAnother(
  post: (path: string, body: unknown, token?: string) => Promise<{ data: { id: string; accessToken: string } }>,
) {
  const token = (await post('/auth/register', { phone: '+919800000003', name: 'Buyer', password: 'password-123' })).data
    .accessToken;
  return (await post('/orgs', { name: 'Buyer' }, token)).data.id;
}

runBench('ledger-statement', main);
