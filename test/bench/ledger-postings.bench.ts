/**
 * Ledger posting throughput: 1, 10 and 50 concurrent posters on one account
 * (contention on its row lock) and spread over 100 accounts, through the real
 * HTTP stack (auth, validation, the posting transaction). Checks the
 * invariants afterwards. Prints one JSON line; never fails on a number.
 */
import { loadavg } from 'node:os';
import { Client } from 'pg';
import { cannon, freshDatabase, round, runBench, startAppProcess } from './bench-support';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ACCOUNTS = 100;

async function main(): Promise<void> {
  const db = await freshDatabase('ledger');
  const databaseUrl = db.url;
  // The app in a process of its own (as in production); the load from autocannon in this one.
  const app = await startAppProcess(databaseUrl);
  const api = `${app.url}/api/v1`;
  const sql = new Client({ connectionString: databaseUrl });
  await sql.connect();
  try {
    const post = async (path: string, body: unknown, token?: string, key?: string) => {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (token) headers.authorization = `Bearer ${token}`;
      if (key) headers['idempotency-key'] = key;
      const res = await fetch(api + path, { method: 'POST', headers, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as { data: { id: string; accessToken: string } } };
    };
    const reg = await post('/auth/register', { phone: '+919800000001', name: 'Bench', password: 'password-123' });
    const token = reg.body.data.accessToken;
    const hub = (await post('/orgs', { name: 'Hub' }, token)).body.data.id;
    const accounts: string[] = [];
    for (let i = 0; i < ACCOUNTS; i++) {
      const other = (await post('/orgs', { name: `Party ${i}` }, token)).body.data.id;
      accounts.push((await post(`/orgs/${hub}/accounts`, { counterpartyOrgId: other }, token)).body.data.id);
    }

    let seq = 0;
    // Closed loop: `concurrency` connections, each posting again as soon as its answer is in.
    // Invoices (3 of 4) and payments on account, round-robin over the targets.
    const run = async (concurrency: number, targets: string[]) => {
      let i = 0;
      const result = await cannon({
        url: app.url,
        connections: concurrency,
        duration: SECONDS,
        requests: [
          {
            method: 'POST',
            setupRequest: (req) => {
              const accountId = targets[i++ % targets.length];
              const n = ++seq;
              const payment = n % 4 === 0;
              return {
                ...req,
                path: `/api/v1/ledger/accounts/${accountId}/${payment ? 'payments' : 'invoices'}?asOrgId=${hub}`,
                headers: {
                  'content-type': 'application/json',
                  authorization: `Bearer ${token}`,
                  'idempotency-key': `k-${n}`,
                },
                body: JSON.stringify(
                  payment ? { amount: 100 + (n % 50), method: 'UPI' } : { number: `B-${n}`, amount: 1000 + (n % 997) },
                ),
              };
            },
          },
        ],
      });
      const ok = result.requests.total - result.non2xx;
      return {
        concurrency,
        accounts: targets.length,
        postings: ok,
        errors: result.non2xx + result.errors,
        postingsPerSec: round(ok / SECONDS),
        p50Ms: result.latency.p50,
        p99Ms: result.latency.p99,
      };
    };

    const loadAtStart = loadavg()[0];
    // Warm up connections and code paths.
    await run(10, accounts.slice(0, 10));
    const results = [];
    for (const concurrency of [1, 10, 50]) {
      results.push(await run(concurrency, accounts.slice(0, 1)));
      results.push(await run(concurrency, accounts));
    }

    // Invariants over every account: balance = sum of A's entries, chains unbroken, counts exact.
    // One pass with a window per side (a per-entry lateral sum was quadratic in an account's length).
    const bad = await sql.query(`
      WITH chain AS (
        SELECT e.account_id, e.org_id, e.seq, e.amount, e.running_balance,
               sum(e.amount) OVER (PARTITION BY e.account_id, e.org_id ORDER BY e.seq) AS cum
        FROM ledger_entries e),
      sides AS (
        SELECT account_id, org_id, count(*) AS n, sum(amount) AS total, max(seq) AS max_seq,
               bool_and(running_balance = cum) AS chain
        FROM chain GROUP BY account_id, org_id)
      SELECT a.id FROM sides s JOIN ledger_accounts a ON a.id = s.account_id
      WHERE s.n <> a.entry_count OR s.max_seq <> a.entry_count OR NOT s.chain
         OR s.total <> CASE WHEN s.org_id = a.org_a_id THEN a.balance ELSE -a.balance END`);
    const unbalanced = await sql.query(
      `SELECT count(*)::int AS n FROM (SELECT posting_id FROM ledger_entries GROUP BY posting_id HAVING sum(amount) <> 0) x`,
    );
    const totals = await sql.query(`SELECT count(*)::int AS postings FROM ledger_postings`);
    process.stdout.write(
      `${JSON.stringify({
        bench: 'ledger-postings',
        secondsPerRun: SECONDS,
        loadavg1mAtStart: round(loadAtStart, 2),
        runs: results,
        invariants: {
          postings: totals.rows[0].postings,
          accountsViolating: bad.rows.length,
          unbalancedPostings: unbalanced.rows[0].n,
          exact: bad.rows.length === 0 && unbalanced.rows[0].n === 0,
        },
      })}\n`,
    );
  } finally {
    await sql.end();
    await app.stop();
    await db.drop();
  }
}

runBench('ledger-postings', main);
