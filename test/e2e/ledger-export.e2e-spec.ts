import { ClientRequest, IncomingMessage, request } from 'node:http';
import { Client } from 'pg';
import { Db } from '../../src/infra/db/db.service';
import { newMember, newOrg, TestOrg, TestUser } from '../support/factories';
import { until } from '../support/net';
import { startTestApp, TestApp } from '../support/test-app';

/** Entries loaded on the statement's account: with their memos, far more than the socket buffers hold. */
const ENTRIES = 40_000;

/** Loads `ENTRIES` balanced postings straight into the account (as the statement bench does). */
async function loadEntries(t: TestApp, accountId: string, userId: string): Promise<void> {
  const acc = (await t.sql.query('SELECT org_a_id, org_b_id FROM ledger_accounts WHERE id = $1', [accountId])).rows[0];
  await t.sql.query('BEGIN');
  await t.sql.query(
    `CREATE TEMP TABLE gen ON COMMIT DROP AS
     SELECT i, gen_random_uuid() AS pid, (i % 1000 + 1) * (CASE WHEN i % 5 = 0 THEN -1 ELSE 1 END)::bigint AS amount,
            timestamptz '2026-01-01' + i * interval '1 millisecond' AS at
     FROM generate_series(1, $1::int) i`,
    [ENTRIES],
  );
  await t.sql.query(
    `INSERT INTO ledger_postings (id, account_id, seq, kind, posted_by_org_id, posted_by_user_id, memo, request_hash, response, created_at)
     SELECT pid, $1::uuid, i, CASE WHEN amount > 0 THEN 'INVOICE' ELSE 'PAYMENT' END::ledger_posting_kind, $2::uuid, $3::uuid,
            'lot ' || i || ' ' || repeat('x', 300), 'bulk', '{}', at FROM gen`,
    [accountId, acc.org_a_id, userId],
  );
  await t.sql.query(
    `WITH g AS (SELECT *, sum(amount) OVER (ORDER BY i) AS run FROM gen)
     INSERT INTO ledger_entries (id, account_id, posting_id, org_id, seq, amount, running_balance, created_at)
     SELECT gen_random_uuid(), $1::uuid, pid, $2::uuid, i, amount, run, at FROM g
     UNION ALL
     SELECT gen_random_uuid(), $1::uuid, pid, $3::uuid, i, -amount, -run, at FROM g`,
    [accountId, acc.org_a_id, acc.org_b_id],
  );
  await t.sql.query(
    `UPDATE ledger_accounts SET balance = (SELECT sum(amount) FROM gen), entry_count = $2,
            last_posted_at = (SELECT max(at) FROM gen) WHERE id = $1`,
    [accountId, ENTRIES],
  );
  await t.sql.query('COMMIT');
}

/** A CSV export whose response is never read: paused at once, so the server's writes back up. */
interface StalledExport {
  req: ClientRequest;
  res: IncomingMessage;
  /** Resolves when the server closes the connection. */
  closed: Promise<void>;
}

function stalledExport(t: TestApp, accountId: string, user: TestUser): Promise<StalledExport> {
  return new Promise((resolve, reject) => {
    const req = request(`${t.api.baseUrl}/ledger/accounts/${accountId}/statement?format=csv`, {
      headers: { authorization: `Bearer ${user.accessToken}` },
      agent: false,
    });
    const closed = new Promise<void>((r) => req.on('close', () => r()));
    req.on('error', () => undefined); // the server cutting the stalled response off is the point
    req.on('response', (res) => {
      res.pause();
      res.on('error', () => undefined);
      resolve({ req, res, closed });
    });
    req.on('error', reject);
    req.end();
  });
}

/** The export pool's connections as PostgreSQL sees them, by state. */
async function exportConnections(t: TestApp): Promise<Record<string, number>> {
  const { rows } = await t.sql.query(
    `SELECT state, count(*)::int AS n FROM pg_stat_activity
     WHERE datname = current_database() AND application_name = 'waybill-export' GROUP BY state`,
  );
  return Object.fromEntries(rows.map((r) => [r.state, r.n]));
}

async function newLoadedAccount(t: TestApp): Promise<{ a: TestOrg; b: TestOrg; accountId: string }> {
  const a = await newOrg(t.api);
  const b = await newOrg(t.api);
  const res = await t.api.post(`/orgs/${a.id}/accounts`, { counterpartyOrgId: b.id }, { token: a.owner.accessToken });
  const accountId = res.body.data.id as string;
  await loadEntries(t, accountId, a.owner.id);
  return { a, b, accountId };
}

describe('CSV exports: idle timeout and pool timeouts', () => {
  let t: TestApp;
  let a: TestOrg;
  let accountId: string;

  beforeAll(async () => {
    t = await startTestApp({ exportIdleTimeoutMs: 1000, databaseStatementTimeoutMs: 12_345 });
    ({ a, accountId } = await newLoadedAccount(t));
  }, 60_000);
  afterAll(() => t.close());

  it('every pool carries the configured statement_timeout; exports have a pool of their own', async () => {
    const db = t.app.get(Db);
    const [primary] = await db.sql<{ statement_timeout: string }>('SHOW statement_timeout');
    expect(primary.statement_timeout).toBe('12345ms');
    const [replica] = await db.replica!.$queryRaw<{ statement_timeout: string }[]>`SHOW statement_timeout`;
    expect(replica.statement_timeout).toBe('12345ms');
    const [exp] = await db.exportClient.$queryRaw<{ statement_timeout: string; application_name: string }[]>`
      SELECT current_setting('statement_timeout') AS statement_timeout, current_setting('application_name') AS application_name`;
    expect(exp).toEqual({ statement_timeout: '12345ms', application_name: 'waybill-export' });
    expect(db.poolUse().map((p) => p.db)).toEqual(['primary', 'replica', 'export']);
  });

  it('a client that stops reading is cut off after the idle timeout, and the connection goes back to the pool', async () => {
    const stalled = await stalledExport(t, accountId, a.owner);
    expect(stalled.res.statusCode).toBe(200);
    // The export waits on the client with its transaction open.
    await until(
      'the stalled export holding a transaction',
      async () => {
        return (await exportConnections(t))['idle in transaction'] === 1;
      },
      10_000,
    );
    // Then it is aborted: the transaction is gone, the connection idle in the export pool.
    await until(
      'the export connection to be released',
      async () => {
        const states = await exportConnections(t);
        const use = t.app.get(Db).exportPoolUse();
        return !states['idle in transaction'] && !states.active && use.total > 0 && use.idle === use.total;
      },
      10_000,
    );
    // And the response was cut off: reading what was sent ends without the chunked body's end.
    stalled.res.resume();
    await stalled.closed;
    expect(stalled.res.complete).toBe(false);

    // The statement can be exported again in full by a client that reads.
    const res = await fetch(`${t.api.baseUrl}/ledger/accounts/${accountId}/statement?format=csv`, {
      headers: { authorization: `Bearer ${a.owner.accessToken}` },
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text.split('\r\n').length).toBe(ENTRIES + 2); // header, rows, and the empty string after the last CRLF
  }, 60_000);
});

describe('CSV exports: at most EXPORT_MAX_PER_USER at once per user', () => {
  let t: TestApp;
  let a: TestOrg;
  let accountId: string;

  beforeAll(async () => {
    // The default idle timeout (30 s): stalled exports hold their slots for the whole test.
    t = await startTestApp({ exportMaxPerUser: 2 });
    ({ a, accountId } = await newLoadedAccount(t));
  }, 60_000);
  afterAll(() => t.close());

  it('the third concurrent export of one user is 429 with Retry-After; another user is not limited; ending one frees its slot', async () => {
    const first = await stalledExport(t, accountId, a.owner);
    const second = await stalledExport(t, accountId, a.owner);
    expect([first.res.statusCode, second.res.statusCode]).toEqual([200, 200]);

    const third = await t.api.get(`/ledger/accounts/${accountId}/statement?format=csv`, { token: a.owner.accessToken });
    expect(third.status).toBe(429);
    expect(third.body.error.code).toBe('RATE_LIMITED');
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    // Another ledger user of the same org has slots of their own; JSON statements are not counted.
    const colleague = await newMember(t.api, a, 'ACCOUNTANT');
    const theirs = await stalledExport(t, accountId, colleague);
    expect(theirs.res.statusCode).toBe(200);
    const json = await t.api.get(`/ledger/accounts/${accountId}/statement?to=2026-01-01T00:00:01Z`, {
      token: a.owner.accessToken,
    });
    expect(json.status).toBe(200);

    // A client that goes away ends its export and frees its slot.
    first.req.destroy();
    await first.closed;
    await until(
      'a freed export slot',
      async () => {
        const res = await t.api.get(`/ledger/accounts/${accountId}/statement?format=csv&to=2026-01-01T00:00:01Z`, {
          token: a.owner.accessToken,
        });
        return res.status === 200;
      },
      10_000,
    );
    second.req.destroy();
    theirs.req.destroy();
    await Promise.all([second.closed, theirs.closed]);
  }, 60_000);
});

describe('CSV exports: a statement the database does not answer in time', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ databaseStatementTimeoutMs: 1000 });
  });
  afterAll(() => t.close());

  it('is a 503 in the envelope, and the node keeps serving', async () => {
    const a = await newOrg(t.api);
    const b = await newOrg(t.api);
    const res = await t.api.post(`/orgs/${a.id}/accounts`, { counterpartyOrgId: b.id }, { token: a.owner.accessToken });
    const accountId = res.body.data.id as string;
    // A lock the statement's first read waits on past statement_timeout.
    const blocker = new Client({ connectionString: t.config.databaseUrl });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE ledger_entries IN ACCESS EXCLUSIVE MODE');
      for (const format of ['csv', 'json']) {
        const statement = await t.api.get(`/ledger/accounts/${accountId}/statement?format=${format}`, {
          token: a.owner.accessToken,
        });
        expect(statement.status).toBe(503);
        expect(statement.body).toMatchObject({ success: false, error: { code: 'DEPENDENCY_UNAVAILABLE' } });
      }
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }
    expect((await t.root.get('/health/live')).status).toBe(200);
    const csv = await t.api.get(`/ledger/accounts/${accountId}/statement?format=csv`, { token: a.owner.accessToken });
    expect(csv.status).toBe(200);
  }, 30_000);
});
