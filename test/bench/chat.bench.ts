/*
 * Chat: (1) messages sent over HTTP into 50 trip threads with 500 watchers
 * (10 sockets per `thread:<id>` room, in a separate process): send-to-watcher
 * latency at a paced rate (default 500 messages/s, goal p99 <= 50 ms) and at
 * half the saturated rate, and the saturated messages/s, next to a bare Socket.IO server broadcasting the same
 * payloads to the same sockets at the same rate (the floor); CPU per 1,000 messages of the app, the watchers, the
 * benchmark, PostgreSQL and Redis (`cpuMsPer1000Messages`) for the saturated and paced windows. (2) The thread
 * list `GET /chat/threads` (first page, a middle cursor page, and a user who
 * never read anything; closed-loop connections, then the first page paced) with 1,000 threads and CHAT_BENCH_MESSAGES messages made with
 * `generate_series`, goal p99 <= 20 ms, then the statements one page runs and
 * the page query under EXPLAIN (ANALYZE, BUFFERS) (plans to stderr). The app
 * runs as a child process. One JSON line; never fails on a number.
 */
import 'reflect-metadata';
import { ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { Server } from 'socket.io';
import { createApp } from '../../src/app';
import {
  baseConfig,
  call,
  cannon,
  cpuMeter,
  freshDatabase,
  makeTrips,
  nextPhone,
  perThousand,
  processTree,
  round,
  runBench,
  startAppProcess,
  startSocketIoFloor,
  tapPgStatements,
} from './bench-support';
import { pacedLoad } from './paced-load';

const env = (name: string, dflt: number) => Number(process.env[name] ?? dflt);
const THREADS = env('CHAT_BENCH_THREADS', 50);
const WATCHERS = env('CHAT_BENCH_WATCHERS', 500);
const RATE = env('CHAT_BENCH_RATE', 500);
const SECONDS = env('CHAT_BENCH_SECONDS', 5);
const WARMUP_S = env('CHAT_BENCH_WARMUP_S', 3);
const SEND_CONNECTIONS = env('CHAT_BENCH_SEND_CONNECTIONS', 50);
const LIST_THREADS = env('CHAT_BENCH_LIST_THREADS', 1000);
/** 200k by default (loads in well under a minute here); CHAT_BENCH_MESSAGES=1000000 for the 1M figure. */
const MESSAGES = env('CHAT_BENCH_MESSAGES', 200_000);
const LIST_SECONDS = env('CHAT_BENCH_LIST_SECONDS', 5);
/** The paced thread-list run's rate (first page), below saturation: latency with headroom. */
const LIST_RATE = env('CHAT_BENCH_LIST_RATE', 100);
const LIST_CONNECTIONS = env('CHAT_BENCH_LIST_CONNECTIONS', 10);
/** `send`, `list` or both (default): CHAT_BENCH_PARTS=list for the 1M thread list alone. */
const PARTS = (process.env.CHAT_BENCH_PARTS ?? 'send,list').split(',');
const JWT_SECRET = 'bench-secret-bench-secret-bench';

class Watchers {
  private constructor(private readonly proc: ChildProcess) {}
  static start(): Watchers {
    return new Watchers(
      fork(join(__dirname, 'chat-clients.ts'), [], {
        execArgv: ['-r', 'ts-node/register/transpile-only'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    );
  }
  async ask<T = any>(msg: object): Promise<T> {
    this.proc.send(msg);
    const [reply] = (await once(this.proc, 'message')) as [T & { ok: string; message?: string }];
    if (reply.ok === 'error') throw new Error(reply.message);
    return reply;
  }
  get pid(): number {
    return this.proc.pid!;
  }
  stop(): void {
    this.proc.kill();
  }
}

/** Per-millisecond histogram → p50 / p99 / max. */
function fromHistogram(h: number[]): { n: number; p50Ms: number; p99Ms: number; maxMs: number } {
  const n = h.reduce((a, c) => a + (c ?? 0), 0);
  const at = (q: number) => {
    let acc = 0;
    for (let i = 0; i < h.length; i++) {
      acc += h[i] ?? 0;
      if (acc > q * n) return i;
    }
    return NaN;
  };
  return { n, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: n ? h.length - 1 : NaN };
}

/** The floor's load: `rate` chat.message broadcasts a second, round-robin over the rooms, shaped as the app's. */
async function floorLoad(io: Server, threadIds: string[], rate: number, seconds: number): Promise<void> {
  const start = performance.now();
  const total = Math.round(rate * seconds);
  let sent = 0;
  while (sent < total) {
    const due = Math.floor(((performance.now() - start) / 1000) * rate);
    for (; sent < Math.min(due, total); sent++) {
      const threadId = threadIds[sent % threadIds.length];
      const room = `thread:${threadId}`;
      io.to(room).emit('chat.message', {
        threadId,
        message: {
          id: randomUUID(),
          seq: String(sent),
          threadId,
          senderId: threadId,
          body: `t=${Date.now()} floor message ${sent}`,
          clientMessageId: randomUUID(),
          attachmentIds: [],
          createdAt: new Date().toISOString(),
        },
        room,
        seq: sent,
      });
    }
    await new Promise((r) => setTimeout(r, 2));
  }
}

const sendBody = () => JSON.stringify({ body: `t=${Date.now()} bench message`, clientMessageId: randomUUID() });

/** Scenario 1: sends with watchers, then the floor. */
async function sending(appUrl: string, appPid: number, dbUrl: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const setupStarted = Date.now();
  const { ownerToken, trips } = await makeTrips(appUrl, dbUrl, THREADS);
  const threadIds: string[] = [];
  for (const t of trips) {
    const thread = await call(appUrl, 'POST', '/chat/threads', { tripId: t.tripId }, ownerToken);
    threadIds.push(thread.id as string);
  }
  const rooms = threadIds.map((id) => `thread:${id}`);
  out.setupSeconds = round((Date.now() - setupStarted) / 1000, 1);
  const watchers = Watchers.start();
  const floor = await startSocketIoFloor();
  try {
    const connected = await watchers.ask<{ n: number; ms: number }>({
      cmd: 'connect',
      url: appUrl,
      token: ownerToken,
      rooms,
      total: WATCHERS,
    });
    out.watchers = connected.n;
    out.connectSeconds = round(connected.ms / 1000, 1);
    let k = 0;
    const next = () => ({
      method: 'POST',
      path: `/api/v1/chat/threads/${threadIds[k++ % threadIds.length]}/messages`,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ownerToken}` },
      body: sendBody(),
    });

    // Saturated: SEND_CONNECTIONS closed-loop connections, a thread each in turn.
    const satFrom = Date.now();
    const satWatched = watchers.ask<{ latency: number[]; receipts: number; distinct: number }>({
      cmd: 'watch',
      from: satFrom,
      to: satFrom + SECONDS * 1000 + 500,
    });
    let j = 0;
    const satCpu = cpuMeter({ app: processTree(appPid), watchers: [watchers.pid], bench: [process.pid] });
    const sat = await cannon({
      url: appUrl,
      connections: SEND_CONNECTIONS,
      duration: SECONDS,
      requests: [
        {
          method: 'POST',
          setupRequest: (req) => ({
            ...req,
            path: `/api/v1/chat/threads/${threadIds[j++ % threadIds.length]}/messages`,
            headers: { 'content-type': 'application/json', authorization: `Bearer ${ownerToken}` },
            body: sendBody(),
          }),
        },
      ],
    });
    const satUsed = satCpu();
    const satSeen = await satWatched;
    out.saturated = {
      connections: SEND_CONNECTIONS,
      messagesPerSec: round(sat.requests.average),
      sendResponseP50Ms: sat.latency.p50,
      sendResponseP99Ms: sat.latency.p99,
      non2xx: sat.non2xx,
      errors: sat.errors,
      sendToWatcher: fromHistogram(satSeen.latency),
      deliveriesPerSec: Math.round(satSeen.receipts / SECONDS),
      // CPU ms per 1,000 messages sent (app: the app process; postgres, redis: all their processes).
      cpuMsPer1000Messages: perThousand(satUsed, Math.max(1, sat.requests.total)),
    };
    /** Paced: a warm-up (not measured), then the window, watched. */
    const pacedAt = async (rate: number) => {
      await pacedLoad({ url: appUrl, rate, seconds: WARMUP_S, next });
      const from = Date.now();
      const watched = watchers.ask<{ latency: number[]; receipts: number; distinct: number }>({
        cmd: 'watch',
        from,
        to: from + SECONDS * 1000 + 500,
      });
      const cpu = cpuMeter({ app: processTree(appPid), watchers: [watchers.pid], bench: [process.pid] });
      const paced = await pacedLoad({ url: appUrl, rate, seconds: SECONDS, next });
      const used = cpu();
      const seen = await watched;
      return {
        rate,
        messagesPerSec: paced.achievedPerSec,
        non2xx: paced.non2xx,
        errors: paced.errors,
        sendResponseP50Ms: paced.p50ms,
        sendResponseP99Ms: paced.p99ms,
        sendResponseP99MsBySecond: paced.p99msBySecond,
        sendToWatcher: fromHistogram(seen.latency),
        messagesSeen: seen.distinct,
        deliveriesPerSec: Math.round(seen.receipts / SECONDS),
        coreShare: Object.fromEntries(
          Object.entries(used).map(([key, ms]) => [key.replace(/Ms$/, ''), round(ms / (SECONDS * 1000), 2)]),
        ),
        cpuMsPer1000Messages: perThousand(used, Math.max(1, paced.ok)),
      };
    };
    await new Promise((r) => setTimeout(r, 1000));
    out.paced = await pacedAt(RATE);
    // Half the saturated rate: the latency of a node with headroom, whatever this box's speed.
    await new Promise((r) => setTimeout(r, 1000));
    out.pacedHalfSaturated = await pacedAt(
      Math.max(1, Math.round((out.saturated as { messagesPerSec: number }).messagesPerSec / 2)),
    );
    await watchers.ask({ cmd: 'disconnect' });

    // The floor: the same sockets and rooms on bare Socket.IO (in this process), the same rate.
    await watchers.ask({ cmd: 'connect', url: floor.url, token: ownerToken, rooms, total: WATCHERS });
    await floorLoad(floor.io, threadIds, RATE, 1);
    const floorFrom = Date.now();
    const floorWatched = watchers.ask<{ latency: number[]; receipts: number }>({
      cmd: 'watch',
      from: floorFrom,
      to: floorFrom + SECONDS * 1000 + 500,
    });
    await floorLoad(floor.io, threadIds, RATE, SECONDS);
    const floorSeen = await floorWatched;
    out.floorSocketIo = {
      rate: RATE,
      sendToWatcher: fromHistogram(floorSeen.latency),
      deliveriesPerSec: Math.round(floorSeen.receipts / SECONDS),
    };
    await watchers.ask({ cmd: 'disconnect' });
  } finally {
    watchers.stop();
    await floor.close();
  }
  return out;
}

/** Bulk data for the thread list: LIST_THREADS threads of one org, MESSAGES messages, the reader's markers. */
async function listData(sql: Client, orgId: string, readerId: string): Promise<number> {
  const started = Date.now();
  const other = randomUUID();
  await sql.query(
    `INSERT INTO chat_threads (id, trip_id, title, org_ids, driver_id, created_by_id, activity_at, created_at)
     SELECT gen_random_uuid(), gen_random_uuid(), 'Trip ' || g, ARRAY[$1::uuid, gen_random_uuid()], gen_random_uuid(),
            $2::uuid, now() - interval '30 days', now() - interval '30 days'
     FROM generate_series(1, $3::int) g`,
    [orgId, readerId, LIST_THREADS],
  );
  // Message g goes to thread g % LIST_THREADS (one thread's messages are LIST_THREADS apart in seq), one second
  // apart, ending now; one in four is the reader's own (never unread).
  await sql.query(
    `WITH t AS (SELECT id, (row_number() OVER (ORDER BY id) - 1)::int AS k FROM chat_threads WHERE $1::uuid = ANY(org_ids))
     INSERT INTO chat_messages (id, thread_id, sender_id, client_message_id, body, attachment_ids, created_at)
     SELECT gen_random_uuid(), t.id, CASE WHEN g % 4 = 0 THEN $2::uuid ELSE $3::uuid END, 'bench-' || g,
            'Bench message ' || g || ', about the load and the weighbridge slip', '{}',
            now() - make_interval(secs => $4::int - g)
     FROM generate_series(0, $4::int - 1) g JOIN t ON t.k = g % $5::int
     ORDER BY g`,
    [orgId, readerId, other, MESSAGES, LIST_THREADS],
  );
  await sql.query(
    `UPDATE chat_threads t SET last_message_at = m.at, activity_at = m.at
     FROM (SELECT thread_id, max(created_at) AS at FROM chat_messages GROUP BY thread_id) m
     WHERE m.thread_id = t.id`,
  );
  // The reader's markers: three threads in four read up to (k % 20) messages before the end, the rest never read.
  await sql.query(
    `WITH t AS (SELECT id, (row_number() OVER (ORDER BY id) - 1)::int AS k FROM chat_threads WHERE $1::uuid = ANY(org_ids))
     INSERT INTO chat_read_markers (thread_id, user_id, last_read_seq)
     SELECT t.id, $2::uuid, (SELECT max(seq) FROM chat_messages m WHERE m.thread_id = t.id) - (t.k % 20) * $3::int
     FROM t WHERE t.k % 4 <> 3`,
    [orgId, readerId, LIST_THREADS],
  );
  // What autovacuum leaves behind (chat_messages is vacuumed every 10,000 inserts): statistics and a visibility map
  // that lets the unread counts be index-only scans.
  await sql.query('VACUUM ANALYZE chat_threads, chat_messages, chat_read_markers');
  return round((Date.now() - started) / 1000, 1);
}

/**
 * The statements the app sends while answering each path (the app in this process, Fastify inject, the pg
 * client's queries captured), and the chat page query among them.
 */
async function captureSql(
  url: string,
  token: string,
  paths: Record<string, string>,
): Promise<Record<string, { chatStatements: number; page?: { text: string; values: unknown[] } }>> {
  const app = await createApp({
    ...baseConfig,
    databaseUrl: url,
    databaseReplicaUrl: undefined,
    redisKeyPrefix: `bench:chat:${randomUUID()}:`,
    logLevel: 'silent',
    jwtSecret: JWT_SECRET,
  });
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  const tap = tapPgStatements((text) => /chat_/.test(text));
  const out: Record<string, { chatStatements: number; page?: { text: string; values: unknown[] } }> = {};
  try {
    for (const [name, path] of Object.entries(paths)) {
      tap.reset();
      const res = await app
        .getHttpAdapter()
        .getInstance()
        .inject({ method: 'GET', url: path, headers: { authorization: `Bearer ${token}` } });
      if (res.statusCode !== 200) throw new Error(`${path}: ${res.statusCode} ${res.body}`);
      const seen = tap.seen();
      out[name] = { chatStatements: seen.length, page: seen.find((q) => /FROM chat_threads t/.test(q.text)) };
    }
  } finally {
    tap.restore();
    await app.close();
  }
  return out;
}

/** Scenario 2: the thread list. */
async function threadList(appUrl: string, dbUrl: string): Promise<Record<string, unknown>> {
  const reader = await call(appUrl, 'POST', '/auth/register', {
    phone: nextPhone(),
    name: 'Bench Reader',
    password: 'password-123',
  });
  const org = await call(appUrl, 'POST', '/orgs', { name: 'Bench Chatters' }, reader.accessToken);
  // A second member of the org who has never read a thread: every thread's whole backlog of others' messages is unread.
  const never = await call(appUrl, 'POST', '/auth/register', {
    phone: nextPhone(),
    name: 'Bench Never-reader',
    password: 'password-123',
  });
  const sql = new Client({ connectionString: dbUrl });
  await sql.connect();
  try {
    await sql.query(`INSERT INTO memberships (id, org_id, user_id, role) VALUES ($1, $2, $3, 'ADMIN')`, [
      randomUUID(),
      org.id,
      never.user.id,
    ]);
    const loadSeconds = await listData(sql, org.id as string, reader.user.id as string);
    const counts = (
      await sql.query(
        `SELECT (SELECT count(*) FROM chat_threads)::int AS threads, (SELECT count(*) FROM chat_messages)::int AS messages,
                (SELECT count(*) FROM chat_read_markers)::int AS "readMarkers"`,
      )
    ).rows[0];

    const first = '/api/v1/chat/threads';
    // A cursor about halfway down the list, as the API hands it out (pages of 100).
    let cursor: string | null = null;
    for (let i = 0; i < Math.floor(LIST_THREADS / 200); i++) {
      const res = await fetch(`${appUrl}/api/v1/chat/threads?limit=100${cursor ? `&cursor=${cursor}` : ''}`, {
        headers: { authorization: `Bearer ${reader.accessToken}` },
      });
      const body = (await res.json()) as { meta?: { nextCursor?: string | null }; nextCursor?: string | null };
      cursor = body.meta?.nextCursor ?? body.nextCursor ?? null;
      if (!cursor) break;
    }
    const scenarios: Record<string, { path: string; token: string }> = {
      reader_first_page: { path: first, token: reader.accessToken },
      reader_first_page_limit100: { path: `${first}?limit=100`, token: reader.accessToken },
      ...(cursor ? { reader_middle_page: { path: `${first}?cursor=${cursor}`, token: reader.accessToken } } : {}),
      never_read_first_page: { path: first, token: never.accessToken },
    };
    const load: Record<string, unknown> = {};
    for (const [name, s] of Object.entries(scenarios)) {
      // Not a figure: a page that lists nothing would measure nothing.
      const check = await fetch(`${appUrl}${s.path}`, { headers: { authorization: `Bearer ${s.token}` } });
      const body = (await check.json()) as { data?: { unreadCount: number }[] };
      if (check.status !== 200 || !body.data?.length)
        throw new Error(`${name}: ${check.status} ${JSON.stringify(body).slice(0, 300)}`);
      const r = await cannon({
        url: appUrl,
        connections: LIST_CONNECTIONS,
        duration: LIST_SECONDS,
        requests: [{ method: 'GET', path: s.path, headers: { authorization: `Bearer ${s.token}` } }],
      });
      load[name] = {
        threadsOnPage: body.data.length,
        unreadOnPage: body.data.reduce((a, t) => a + t.unreadCount, 0),
        reqPerSec: round(r.requests.average),
        p50ms: r.latency.p50,
        p99ms: r.latency.p99,
        maxms: r.latency.max,
        non2xx: r.non2xx,
        errors: r.errors,
      };
    }

    const paced = await pacedLoad({
      url: appUrl,
      rate: LIST_RATE,
      seconds: LIST_SECONDS,
      next: () => ({ method: 'GET', path: first, headers: { authorization: `Bearer ${reader.accessToken}` } }),
    });
    load.reader_first_page_paced = {
      rate: LIST_RATE,
      reqPerSec: paced.achievedPerSec,
      p50ms: paced.p50ms,
      p99ms: paced.p99ms,
      maxms: paced.maxms,
      non2xx: paced.non2xx,
      errors: paced.errors,
    };

    const captured = await captureSql(
      dbUrl,
      reader.accessToken,
      Object.fromEntries(
        Object.entries(scenarios)
          .filter(([n]) => n.startsWith('reader'))
          .map(([n, s]) => [n, s.path]),
      ),
    );
    const neverCaptured = await captureSql(dbUrl, never.accessToken, { never_read_first_page: first });
    const plans: Record<string, unknown> = {};
    for (const [name, c] of Object.entries({ ...captured, ...neverCaptured })) {
      if (!c.page) {
        plans[name] = { chatStatements: c.chatStatements };
        continue;
      }
      const json = await sql.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${c.page.text}`, c.page.values);
      const plan = json.rows[0]['QUERY PLAN'][0] as { Plan: Record<string, unknown>; 'Execution Time': number };
      const nodes = new Set<string>();
      const walk = (n: Record<string, unknown>) => {
        nodes.add(`${n['Node Type'] as string}${n['Index Name'] ? `: ${n['Index Name'] as string}` : ''}`);
        for (const p of (n.Plans as Record<string, unknown>[] | undefined) ?? []) walk(p);
      };
      walk(plan.Plan);
      plans[name] = {
        chatStatements: c.chatStatements,
        executionMs: round(plan['Execution Time'], 2),
        sharedHit: plan.Plan['Shared Hit Blocks'],
        sharedRead: plan.Plan['Shared Read Blocks'],
        nodes: [...nodes],
      };
      const text = await sql.query(`EXPLAIN (ANALYZE, BUFFERS) ${c.page.text}`, c.page.values);
      process.stderr.write(
        `\n## ${name}\n${c.page.text}\n${text.rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n')}\n`,
      );
    }
    return { data: { ...counts, loadSeconds }, connections: LIST_CONNECTIONS, secondsEach: LIST_SECONDS, load, plans };
  } finally {
    await sql.end();
  }
}

async function main(): Promise<void> {
  const begun = Date.now();
  const result: Record<string, unknown> = {
    bench: 'chat',
    cpus: 2,
    threads: THREADS,
    watchers: WATCHERS,
    listThreads: LIST_THREADS,
    messages: MESSAGES,
    loadavg1mAtStart: round(loadavg()[0], 2),
  };
  const db = await freshDatabase('chat');
  const app = await startAppProcess(db.url, {
    JWT_SECRET,
    REALTIME_REAUTHORIZE_MS: '3600000',
    DATABASE_POOL_MAX: '10',
  });
  try {
    if (PARTS.includes('send')) result.send = await sending(app.url, app.proc.pid!, db.url);
    if (PARTS.includes('list')) result.list = await threadList(app.url, db.url);
  } finally {
    await app.stop();
    await db.drop();
  }
  result.loadavg1mAtEnd = round(loadavg()[0], 2);
  result.totalSeconds = round((Date.now() - begun) / 1000, 1);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

runBench('chat', main);
