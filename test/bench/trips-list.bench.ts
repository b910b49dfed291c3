/**
 * GET /api/v1/trips under concurrent load on a large data set (200k trips, 5M
 * pings in a dedicated database, made once by scripts/gen-trips-data.js and
 * reused), for the main filters: org side + status, driver, cursor pages deep
 * into the list, and an org without side (the OR of both sides). Then the
 * SQL the app ran for each filter, with EXPLAIN (ANALYZE, BUFFERS): the plan
 * shape, rows and buffers, and whether the keyset walk stays on one index
 * with no sort. Full plans go to stderr; one JSON line of figures to stdout.
 * Never fails on a number. TRIPS_BENCH_SECONDS (default 10) per scenario.
 */
import 'reflect-metadata';
import type autocannon from 'autocannon';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { createApp } from '../../src/app';
import { encodeCursor } from '../../src/common/pagination/cursor';
import {
  baseConfig,
  call,
  cannon,
  dbUrl,
  nextPhone,
  ROOT,
  round,
  runBench,
  startAppProcess,
  tapPgStatements,
} from './bench-support';

const SECONDS = Number(process.env.TRIPS_BENCH_SECONDS ?? 10);
const CONNECTIONS = 20;
const LIMIT = 50;
const BENCH_DB = process.env.TRIPS_BENCH_DATABASE ?? 'waybill_bench';

/** The generator's deterministic ids (see bench_uuid in scripts/gen-trips-data.js). */
const benchId = (sql: Client, label: string) =>
  sql.query(`SELECT bench_uuid($1)::text AS id`, [label]).then((r) => r.rows[0].id as string);

interface Scenario {
  name: string;
  /** One path, or several that the connections take in turn (deep cursors). */
  paths: string[];
}

interface PlanSummary {
  executionMs: number;
  planningMs: number;
  nodes: string[];
  indexes: string[];
  sort: boolean;
  rowsFromTrips: number;
  sharedHit: number;
  sharedRead: number;
}

function ensureData(url: string): { generated: boolean; seconds: number } {
  const res = spawnSync(process.execPath, [join(ROOT, 'scripts', 'gen-trips-data.js')], {
    env: { ...process.env, DATABASE_URL: url },
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  if (res.status !== 0) throw new Error('data generation failed');
  return JSON.parse(res.stdout.trim().split('\n').pop()!) as { generated: boolean; seconds: number };
}

function loadPaths(url: string, token: string, paths: string[]): Promise<autocannon.Result> {
  let i = 0;
  return cannon({
    url,
    connections: CONNECTIONS,
    duration: SECONDS,
    requests: [
      {
        method: 'GET',
        setupRequest: (req) => ({
          ...req,
          path: paths[i++ % paths.length],
          headers: { authorization: `Bearer ${token}` },
        }),
      },
    ],
  });
}

/** Walks an EXPLAIN (FORMAT JSON) tree. */
function summarize(plan: {
  Plan: Record<string, unknown>;
  'Execution Time': number;
  'Planning Time': number;
}): PlanSummary {
  const nodes: string[] = [];
  const indexes: string[] = [];
  let sort = false;
  let rowsFromTrips = 0;
  const walk = (n: Record<string, unknown>) => {
    const type = n['Node Type'] as string;
    nodes.push(type);
    if (type.includes('Sort')) sort = true;
    if (n['Index Name']) indexes.push(`${type}: ${n['Index Name'] as string}`);
    if (
      n['Relation Name'] === 'trips' ||
      (typeof n['Index Name'] === 'string' && (n['Index Name'] as string).startsWith('trips_'))
    ) {
      rowsFromTrips += (n['Actual Rows'] as number) * ((n['Actual Loops'] as number) || 1);
    }
    for (const c of (n.Plans as Record<string, unknown>[] | undefined) ?? []) walk(c);
  };
  walk(plan.Plan);
  return {
    executionMs: round(plan['Execution Time'], 3),
    planningMs: round(plan['Planning Time'], 3),
    nodes: [...new Set(nodes)],
    indexes: [...new Set(indexes)],
    sort,
    rowsFromTrips,
    sharedHit: plan.Plan['Shared Hit Blocks'] as number,
    sharedRead: plan.Plan['Shared Read Blocks'] as number,
  };
}

/**
 * The SQL the app runs for each path: the app in this process (no listener,
 * Fastify inject), every `trips` SELECT its pg client sends captured with its values.
 */
async function captureSql(
  url: string,
  token: string,
  paths: Record<string, string>,
): Promise<Record<string, { text: string; values: unknown[] }>> {
  const app = await createApp({
    ...baseConfig,
    databaseUrl: url,
    databaseReplicaUrl: undefined,
    redisKeyPrefix: `bench:tl:${randomUUID()}:`,
    logLevel: 'silent',
    jwtSecret: 'bench-secret-bench-secret-bench',
  });
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  // The page query: Prisma's (FROM "public"."trips" ... LIMIT) or the UNION of index ranges (FROM trips ... LIMIT).
  const tap = tapPgStatements((text) => /FROM "public"\."trips"|FROM trips\b/i.test(text) && /LIMIT/i.test(text));
  const out: Record<string, { text: string; values: unknown[] }> = {};
  try {
    for (const [name, path] of Object.entries(paths)) {
      tap.reset();
      const res = await app
        .getHttpAdapter()
        .getInstance()
        .inject({ method: 'GET', url: path, headers: { authorization: `Bearer ${token}` } });
      if (res.statusCode !== 200) throw new Error(`${path}: ${res.statusCode} ${res.body}`);
      const seen = tap.seen();
      if (seen.length) out[name] = seen[seen.length - 1];
    }
  } finally {
    tap.restore();
    await app.close();
  }
  return out;
}

async function main(): Promise<void> {
  const url = dbUrl(BENCH_DB);
  const started = Date.now();
  const data = ensureData(url);
  const sql = new Client({ connectionString: url });
  await sql.connect();
  const app = await startAppProcess(url);
  try {
    const counts = (
      await sql.query(
        `SELECT (SELECT count(*) FROM trips)::int AS trips, (SELECT count(*) FROM trip_pings)::int AS pings`,
      )
    ).rows[0];
    const org0 = await benchId(sql, 'org-0');
    const driver0 = await benchId(sql, 'driver-0');

    // An owner of the big org (a new user each run; the generated users have no usable password).
    const owner = await call(app.url, 'POST', '/auth/register', {
      phone: nextPhone(),
      name: 'Bench Owner',
      password: 'password-123',
    });
    await sql.query(`INSERT INTO memberships (id, org_id, user_id, role) VALUES ($1, $2, $3, 'OWNER')`, [
      randomUUID(),
      org0,
      owner.user.id,
    ]);
    const token = owner.accessToken as string;

    const sideStatus = `/api/v1/trips?orgId=${org0}&side=source&status=COMPLETED&limit=${LIMIT}`;
    const byDriver = `/api/v1/trips?orgId=${org0}&side=source&driverId=${driver0}&limit=${LIMIT}`;
    const noSide = `/api/v1/trips?orgId=${org0}&limit=${LIMIT}`;
    const completed = Number(
      (
        await sql.query(`SELECT count(*)::int AS n FROM trips WHERE source_org_id = $1 AND status = 'COMPLETED'`, [
          org0,
        ])
      ).rows[0].n,
    );
    // Cursors at depths 1k .. ~90% of the org's COMPLETED trips, exactly as the API would hand them out.
    const depths = [1000, 5000, 10_000, 20_000, Math.floor(completed * 0.9)].filter((d) => d < completed);
    const deepCursors: string[] = [];
    for (const depth of depths) {
      const row = (
        await sql.query(
          `SELECT created_at, id::text AS id FROM trips WHERE source_org_id = $1 AND status = 'COMPLETED'
           ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 1`,
          [org0, depth - 1],
        )
      ).rows[0];
      deepCursors.push(encodeCursor({ createdAt: row.created_at as Date, id: row.id as string }));
    }
    const deepPaths = deepCursors.map((c) => `${sideStatus}&cursor=${c}`);

    const scenarios: Scenario[] = [
      { name: 'org_side_status_first_page', paths: [sideStatus] },
      { name: 'org_side_status_deep_cursors', paths: deepPaths },
      { name: 'org_side_driver_first_page', paths: [byDriver] },
      { name: 'org_no_side_first_page', paths: [noSide] },
    ];
    const load: Record<string, unknown> = {};
    for (const s of scenarios) {
      // Not a figure: a scenario that does not list anything would measure nothing.
      const check = await fetch(`${app.url}${s.paths[0]}`, { headers: { authorization: `Bearer ${token}` } });
      const body = (await check.json()) as { data?: unknown[] };
      if (check.status !== 200 || !body.data?.length)
        throw new Error(`${s.name}: ${check.status} ${JSON.stringify(body).slice(0, 300)}`);
      const r = await loadPaths(app.url, token, s.paths);
      load[s.name] = {
        reqPerSec: round(r.requests.average),
        p50ms: r.latency.p50,
        p99ms: r.latency.p99,
        maxms: r.latency.max,
        non2xx: r.non2xx,
        errors: r.errors,
      };
    }

    // The same queries, as the app builds them, under EXPLAIN (ANALYZE, BUFFERS).
    const explainPaths: Record<string, string> = {
      org_side_status_first_page: sideStatus,
      org_side_status_deepest_cursor: deepPaths[deepPaths.length - 1],
      org_side_driver_first_page: byDriver,
      org_no_side_first_page: noSide,
      org_side_status_ids_only_deepest: `${deepPaths[deepPaths.length - 1]}&fields=id,status`,
    };
    const captured = await captureSql(url, token, explainPaths);
    const plans: Record<string, PlanSummary> = {};
    for (const [name, q] of Object.entries(captured)) {
      const json = await sql.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${q.text}`, q.values);
      plans[name] = summarize(json.rows[0]['QUERY PLAN'][0]);
      const text = await sql.query(`EXPLAIN (ANALYZE, BUFFERS) ${q.text}`, q.values);
      process.stderr.write(
        `\n## ${name}\n${q.text}\n-- values: ${JSON.stringify(q.values)}\n${text.rows.map((r) => r['QUERY PLAN']).join('\n')}\n`,
      );
    }

    const result = {
      bench: 'trips-list',
      data: {
        ...counts,
        generatedNow: data.generated,
        generationSeconds: data.seconds,
        bigOrgCompletedTrips: completed,
      },
      connections: CONNECTIONS,
      secondsEach: SECONDS,
      limit: LIMIT,
      deepCursorDepths: depths,
      loadavg1m: round(loadavg()[0], 2),
      load,
      plans,
      totalSeconds: round((Date.now() - started) / 1000, 1),
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await app.stop();
    await sql.end();
  }
}

runBench('trips-list', main);
