/**
 * Ledger reversal throughput: N reversals of invoices (each posted beforehand,
 * untimed) with 1, 10 and 50 concurrent reversers, on one account (contention
 * on its row lock) and spread over 100 accounts, through the real HTTP stack.
 * Checks the invariants afterwards. Prints one JSON line; never fails on a number.
 */
import { loadavg } from 'node:os';
import { Client } from 'pg';
import { cannon, freshDatabase, round, runBench, startAppProcess } from './bench-support';

const REVERSALS = Number(process.env.BENCH_REVERSALS ?? 600);
const ACCOUNTS = 100;

async function main(): Promise<void> {
  const db = await freshDatabase('reversals');
  const app = await startAppProcess(db.url);
  const api = `${app.url}/api/v1`;
  const sql = new Client({ connectionString: db.url });
  await sql.connect();
  try {
    const post = async (path: string, body: unknown, token?: string) => {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (token) headers.authorization = `Bearer ${token}`;
      const res = await fetch(api + path, { method: 'POST', headers, body: JSON.stringify(body) });
      return (await res.json()) as { data: { id: string; accessToken: string } };
    };
    const reg = await post('/auth/register', { phone: '+919800000002', name: 'Bench', password: 'password-123' });
    const token = reg.data.accessToken;
    const hub = (await post('/orgs', { name: 'Hub' }, token)).data.id;
    const accounts: string[] = [];
    for (let i = 0; i < ACCOUNTS; i++) {
      const other = (await post('/orgs', { name: `Party ${i}` }, token)).data.id;
      accounts.push((await post(`/orgs/${hub}/accounts`, { counterpartyOrgId: other }, token)).data.id);
    }
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` };

    let seq = 0;
    /** Posts `n` invoices over the targets (untimed) and returns the hub's entry of each. */
    const invoices = async (n: number, targets: string[]): Promise<string[]> => {
      const tag = `R${++seq}-`;
      let i = 0;
      await cannon({
        url: app.url,
        connections: 20,
        amount: n,
        requests: [
          {
            method: 'POST',
            setupRequest: (req) => {
              const k = i++;
              return {
                ...req,
                path: `/api/v1/ledger/accounts/${targets[k % targets.length]}/invoices?asOrgId=${hub}`,
                headers,
                body: JSON.stringify({ number: `${tag}${k}`, amount: 1000 + (k % 997) }),
              };
            },
          },
        ],
      });
      const rows = await sql.query<{ id: string }>(
        `SELECT e.id FROM invoices i JOIN ledger_entries e ON e.posting_id = i.posting_id AND e.org_id = i.issuer_org_id
         WHERE i.number LIKE $1 ORDER BY i.created_at`,
        [`${tag}%`],
      );
      return rows.rows.map((r) => r.id);
    };

    // Closed loop: `concurrency` connections, each reversing the next invoice as soon as its answer is in.
    const run = async (concurrency: number, targets: string[]) => {
      const entries = await invoices(REVERSALS, targets);
      let i = 0;
      const started = process.hrtime.bigint();
      const result = await cannon({
        url: app.url,
        connections: concurrency,
        amount: entries.length,
        requests: [
          {
            method: 'POST',
            setupRequest: (req) => ({
              ...req,
              path: `/api/v1/ledger/entries/${entries[i++ % entries.length]}/reverse?asOrgId=${hub}`,
              headers,
              body: JSON.stringify({ reason: 'bench' }),
            }),
          },
        ],
      });
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const ok = result.requests.total - result.non2xx;
      return {
        concurrency,
        accounts: targets.length,
        reversals: ok,
        errors: result.non2xx + result.errors,
        seconds: round(seconds, 2),
        reversalsPerSec: round(ok / seconds),
        p50Ms: result.latency.p50,
        p99Ms: result.latency.p99,
      };
    };

    const loadAtStart = loadavg()[0];
    await run(10, accounts.slice(0, 10)); // warm-up
    const results = [];
    for (const concurrency of [1, 10, 50]) {
      results.push(await run(concurrency, accounts.slice(0, 1)));
      results.push(await run(concurrency, accounts));
    }

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
    const open = await sql.query(`SELECT count(*)::int AS n FROM invoices WHERE status <> 'REVERSED'`);
    process.stdout.write(
      `${JSON.stringify({
        bench: 'ledger-reversals',
        reversalsPerRun: REVERSALS,
        loadavg1mAtStart: round(loadAtStart, 2),
        runs: results,
        invariants: {
          accountsViolating: bad.rows.length,
          unbalancedPostings: unbalanced.rows[0].n,
          invoicesNotReversed: open.rows[0].n,
          exact: bad.rows.length === 0 && unbalanced.rows[0].n === 0 && open.rows[0].n === 0,
        },
      })}\n`,
    );
  } finally {
    await sql.end();
    await app.stop();
    await db.drop();
  }
}

runBench('ledger-reversals', main);
