/*
 * QR tags (docs/qr.md): the public page `GET /q/:code` cached (one code, warm;
 * from the app, and through the production front, deploy/nginx/nginx.conf run
 * by Debian's nginx when it is installed, whose cache answers) and uncached (a fresh unknown code each request; or cycling over the 11,000
 * tags made here, each read again only after its summary left Redis), the
 * cached page paced open-loop at QR_BENCH_PACED_RPS (2,000) a second (latency
 * from when each request was due, paced-load.ts), scans a
 * second on one tag (no maxScans: every scan queues on its row) and spread
 * over 1,000 tags, PNG renders cached (one tag, one size) and uncached (tag and
 * `size` changing each request, so the per-node LRU never holds one), and a
 * batch of 10,000 tags end to end: POST to DONE, then labels.pdf (time, bytes),
 * with the app's peak RSS from /proc. Each HTTP rung: req/s, p50/p99, non-2xx,
 * CPU per 1,000 requests of the app, PostgreSQL, Redis and the load generator
 * (this process), bytes per answer, the box's ceiling at that CPU per request
 * (cores × 1 s / the CPU all of them spend on one), and its ratio to a bare
 * Fastify hello measured in the same run (on a shared box only those ratios
 * compare between runs).
 *
 * The app runs as `npm start` runs it (dist/main.js, NODE_ENV=production,
 * WEB_CONCURRENCY as set, default 1), with QR_PUBLIC_RATE_LIMIT_PER_MINUTE
 * raised out of the way (one load generator is one address) and
 * QR_PUBLIC_CACHE_TTL_SECONDS=1 (QR_BENCH_PUBLIC_TTL), so a tag met again
 * after a second is a miss; the warm page re-reads its one summary once a
 * second. BENCH_SECONDS (5) per rung after a 2 s warm-up, QR_BENCH_BATCH
 * (10000) items in the batch, QR_BENCH_CONNECTIONS (50). About 3.5 minutes,
 * 100 s of it the 10,000-label PDF (QR_BENCH_BATCH=2000 for a quicker run).
 * QR_BENCH_PARTS (all) runs only some rungs, comma-separated from batch,
 * public, scan, png (e.g. QR_BENCH_PARTS=scan; the Fastify hello always runs).
 * Prints one JSON line and a table on stderr; never fails on a number.
 */
import autocannon from 'autocannon';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import {
  call,
  cannon,
  cpuMeter,
  freshDatabase,
  nextPhone,
  perThousand,
  processTree,
  ROOT,
  round,
  runBench,
  ServerProcess,
  startAppProcess,
  startServerProcess,
} from './bench-support';
import { pacedLoad } from './paced-load';
import { NGINX_BIN, NginxFront } from '../support/nginx-front';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const WARMUP_SECONDS = 2;
const BATCH = Number(process.env.QR_BENCH_BATCH ?? 10_000);
const CONNECTIONS = Number(process.env.QR_BENCH_CONNECTIONS ?? 50);
const SCAN_TAGS = 1_000;
const EXTRA_TAGS = 1_000;
const PUBLIC_TTL = process.env.QR_BENCH_PUBLIC_TTL ?? '1';
/** Requests a second of the paced public-page rung. */
const PACED_RPS = Number(process.env.QR_BENCH_PACED_RPS ?? 2000);
const PARTS = new Set((process.env.QR_BENCH_PARTS ?? 'batch,public,scan,png').split(',').map((p) => p.trim()));
const part = (name: 'batch' | 'public' | 'scan' | 'png') => PARTS.has(name);

interface Rung {
  reqPerSec: number;
  p50ms: number;
  p99ms: number;
  non2xx: number;
  errors: number;
  /**
   * CPU ms per 1,000 answered requests: app (all its processes), postgres, redis, the load generator (this
   * process) and, for the front's rung, nginx.
   */
  cpuPer1kReq: Record<string, number>;
  /** Bytes of one answer on the wire, headers included. */
  bytesPerAnswer: number;
  /**
   * The most this box could answer a second at that CPU per request, every
   * core busy (cores × 1 s / the CPU all four spend on one request): the load
   * generator runs on the same cores and pays for every byte it reads.
   */
  boxCeilingReqPerSec: number;
  overFastifyHello?: number;
}

/** RSS of a process tree from /proc (MB): now, and each process's own high-water mark summed. */
function rssOf(pids: number[]): { rssMB: number; hwmMB: number } {
  let rss = 0;
  let hwm = 0;
  for (const pid of pids) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      rss += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      hwm += Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
    } catch {
      /* gone */
    }
  }
  return { rssMB: round(rss / 1024, 1), hwmMB: round(hwm / 1024, 1) };
}

const code = () => randomBytes(12).toString('base64url');

async function main(): Promise<void> {
  const db = await freshDatabase('qr');
  const bare = await startServerProcess(
    ['-r', 'ts-node/register/transpile-only', join(__dirname, 'hello-servers.ts'), 'fastify'],
    { TS_NODE_PROJECT: join(ROOT, 'tsconfig.json') },
    '/hello',
  );
  const app = await startAppProcess(db.url, {
    QR_PUBLIC_RATE_LIMIT_PER_MINUTE: '10000000',
    QR_PUBLIC_CACHE_TTL_SECONDS: PUBLIC_TTL,
    ...(process.env.WEB_CONCURRENCY ? { WEB_CONCURRENCY: process.env.WEB_CONCURRENCY } : {}),
  });
  const sql = new Client({ connectionString: db.url });
  await sql.connect();
  const out: Record<string, unknown> = {
    bench: 'qr',
    loadavg1m: round(loadavg()[0], 2),
    seconds: SECONDS,
    connections: CONNECTIONS,
  };
  const rungs: Record<string, Rung> = {};
  try {
    const owner = await call(app.url, 'POST', '/auth/register', {
      phone: nextPhone(),
      name: 'Bench Owner',
      password: 'password-123',
    });
    const token: string = owner.accessToken;
    const org = await call(app.url, 'POST', '/orgs', { name: 'Bench Traders' }, token);
    const auth = { authorization: `Bearer ${token}` };

    // ---- the batch, end to end (first: the app's peak RSS is then the batch's own) ----
    if (part('batch')) {
      const treeOf = () => processTree(app.proc.pid!);
      const rssBefore = rssOf(treeOf());
      let rssPeak = rssBefore.rssMB;
      const sampler = setInterval(() => {
        rssPeak = Math.max(rssPeak, rssOf(treeOf()).rssMB);
      }, 100);
      const items = Array.from({ length: BATCH }, (_, i) => ({
        entityType: 'CARGO',
        entityId: `bench-${i}`,
        title: `Bench cargo ${i}`,
      }));
      const t0 = performance.now();
      const { batchId } = await call(app.url, 'POST', '/qr/batches', { orgId: org.id, items }, token);
      const acceptedMs = performance.now() - t0;
      let state: { status: string; done: number; total: number } = { status: 'PENDING', done: 0, total: BATCH };
      while (state.status !== 'DONE' && state.status !== 'FAILED' && performance.now() - t0 < 600_000) {
        await new Promise((r) => setTimeout(r, 50));
        state = await call(app.url, 'GET', `/qr/batches/${batchId}`, undefined, token);
      }
      const doneMs = performance.now() - t0;
      const rssAtDone = rssPeak;
      const t1 = performance.now();
      const pdf = await fetch(`${app.url}/api/v1/qr/batches/${batchId}/labels.pdf`, { headers: auth });
      const firstByteMs = performance.now() - t1;
      let pdfBytes = 0;
      for await (const chunk of pdf.body as unknown as AsyncIterable<Uint8Array>) pdfBytes += chunk.length;
      const pdfMs = performance.now() - t1;
      clearInterval(sampler);
      out.batch = {
        items: BATCH,
        status: state.status,
        done: state.done,
        acceptedMs: round(acceptedMs),
        untilDoneMs: round(doneMs),
        tagsPerSec: round((state.done / doneMs) * 1000),
        pdfStatus: pdf.status,
        pdfFirstByteMs: round(firstByteMs),
        pdfMs: round(pdfMs),
        pdfMB: round(pdfBytes / 1e6, 2),
        pdfLabelsPerSec: round((BATCH / pdfMs) * 1000),
        rssBeforeMB: rssBefore.rssMB,
        rssPeakUntilDoneMB: rssAtDone,
        rssPeakSampledMB: rssPeak,
        vmHwmMB: rssOf(treeOf()).hwmMB,
      };
    }

    // ---- tags: the batch's, and 1,000 more made one at a time ----
    for (let i = 0; i < EXTRA_TAGS; i += 20)
      await Promise.all(
        Array.from({ length: Math.min(20, EXTRA_TAGS - i) }, (_, j) =>
          call(
            app.url,
            'POST',
            '/qr/tags',
            { orgId: org.id, entityType: 'TRUCK', entityId: `truck-${i + j}`, title: `Truck ${i + j}` },
            token,
          ),
        ),
      );
    const tags = (await sql.query<{ id: string; code: string }>('SELECT id, code FROM qr_tags ORDER BY id')).rows;
    const scanTags = tags.slice(0, SCAN_TAGS);
    out.tags = tags.length;

    const measure = async (
      name: string,
      server: ServerProcess,
      opts: {
        path?: string;
        requests?: autocannon.Request[];
        headers?: Record<string, string>;
        /** Every answer is the expected one (unknown codes: the 404), so CPU is per request. */
        anyStatus?: boolean;
        /** Requests go to this front (nginx) instead, whose CPU is counted too. */
        front?: NginxFront;
      },
    ) => {
      const run = (duration: number) =>
        cannon({
          url: (opts.front?.url ?? server.url) + (opts.path ?? ''),
          connections: CONNECTIONS,
          duration,
          headers: opts.headers,
          requests: opts.requests,
        });
      const w = await run(WARMUP_SECONDS);
      const cpu = cpuMeter({
        app: processTree(server.proc.pid!),
        loadgen: [process.pid],
        ...(opts.front ? { front: processTree(opts.front.pid) } : {}),
      });
      const r = await run(SECONDS);
      const { stealMs: _steal, ...used } = cpu();
      const ok = opts.anyStatus ? r.requests.total : r.requests.total - r.non2xx;
      const perRequest = perThousand(used, Math.max(1, ok));
      const boxUs = Object.values(perRequest).reduce((a, b) => a + b, 0);
      rungs[name] = {
        reqPerSec: round(r.requests.average),
        p50ms: r.latency.p50,
        p99ms: r.latency.p99,
        non2xx: r.non2xx,
        errors: r.errors,
        cpuPer1kReq: perRequest,
        bytesPerAnswer: Math.round(r.throughput.total / Math.max(1, r.requests.total)),
        boxCeilingReqPerSec: Math.round((cpus().length * 1e6) / Math.max(1, boxUs)),
      };
      return { ...r, all2xx: (w['2xx'] ?? 0) + (r['2xx'] ?? 0) };
    };
    const each = (
      method: string,
      next: () => { path: string; body?: string },
      headers: Record<string, string> = {},
    ) => [
      {
        method,
        setupRequest: (req: autocannon.Request) => {
          const n = next();
          return {
            ...req,
            path: n.path,
            body: n.body,
            headers: { ...headers, ...(n.body ? { 'content-type': 'application/json' } : {}) },
          };
        },
      } as autocannon.Request,
    ];

    await measure('fastify_hello', bare, { path: '/hello' });

    // ---- the public page ----
    let rr = 0;
    if (part('public')) {
      const warm = tags[tags.length - 1].code;
      await measure('public_cached', app, { path: `/q/${warm}`, headers: { accept: 'application/json' } });
      await measure('public_cached_html', app, { path: `/q/${warm}` });
      // Through the production front (deploy/nginx/nginx.conf), whose cache answers the repeat reads.
      if (existsSync(NGINX_BIN)) {
        const front = await NginxFront.start([new URL(app.url).host]);
        try {
          await measure('public_cached_front', app, { path: `/q/${warm}`, headers: { accept: 'application/json' }, front });
        } finally {
          await front.stop();
        }
      } else process.stderr.write(`public_cached_front: skipped, ${NGINX_BIN} is missing\n`);
      await measure('public_uncached_unknown', app, {
        requests: each('GET', () => ({ path: `/q/${code()}` }), { accept: 'application/json' }),
        anyStatus: true,
      });
      await measure('public_uncached_tags', app, {
        requests: each('GET', () => ({ path: `/q/${tags[rr++ % tags.length].code}` }), { accept: 'application/json' }),
      });
      // The latency a scanning phone sees at a steady rate (open loop, see paced-load.ts), after a warm-up at it.
      const paced = (seconds: number) =>
        pacedLoad({
          url: app.url,
          rate: PACED_RPS,
          seconds,
          next: () => ({ method: 'GET', path: `/q/${warm}`, headers: { accept: 'application/json' } }),
          check: (_status, body) => body.includes(warm),
        });
      await paced(WARMUP_SECONDS);
      const cpu = cpuMeter({ app: processTree(app.proc.pid!), loadgen: [process.pid] });
      const steady = await paced(SECONDS * 2);
      const { stealMs: _steal, ...used } = cpu();
      out.public_cached_paced = {
        rate: PACED_RPS,
        achievedPerSec: round(steady.achievedPerSec),
        p50ms: steady.p50ms,
        p99ms: steady.p99ms,
        p999ms: steady.p999ms,
        maxms: steady.maxms,
        maxSendLagMs: steady.maxSendLagMs,
        non2xx: steady.non2xx,
        errors: steady.errors,
        cpuPer1kReq: perThousand(used, Math.max(1, steady.ok)),
      };
    }

    // ---- scans (VIEW by the owner, a member) ----
    if (part('scan')) {
      const scanCount = async () => Number((await sql.query('SELECT count(*)::int AS n FROM qr_scans')).rows[0].n);
      const one = scanTags[0].code;
      let before = await scanCount();
      const oneTag = await measure('scan_one_tag', app, {
        requests: each(
          'POST',
          () => ({ path: '/api/v1/qr/scan', body: JSON.stringify({ code: one, action: 'VIEW' }) }),
          auth,
        ),
      });
      const stored = (await scanCount()) - before;
      rr = 0;
      before = await scanCount();
      const manyTags = await measure('scan_1000_tags', app, {
        requests: each(
          'POST',
          () => ({
            path: '/api/v1/qr/scan',
            body: JSON.stringify({ code: scanTags[rr++ % SCAN_TAGS].code, action: 'VIEW' }),
          }),
          auth,
        ),
      });
      const stored2 = (await scanCount()) - before;
      // Scans answered 2xx (warm-up and measured window) against the scan rows written: the rows may exceed
      // the answers by up to the connections in flight when each window closed (autocannon drops those).
      out.scan_rows = {
        one_tag: { answered2xx: oneTag.all2xx, stored },
        tags_1000: { answered2xx: manyTags.all2xx, stored: stored2 },
      };
    }

    // ---- PNG images ----
    if (part('png')) {
      const imgTag = scanTags[1].id;
      await measure('png_cached', app, { path: `/api/v1/qr/tags/${imgTag}/image?size=300`, headers: auth });
      let k = 0;
      await measure('png_uncached', app, {
        requests: each(
          'GET',
          () => {
            const i = k++;
            // 1,000 tags × 200 sizes: a (tag, size) pair comes back only after 200,000 requests.
            const size = 200 + (Math.floor(i / SCAN_TAGS) % 200);
            return { path: `/api/v1/qr/tags/${scanTags[i % SCAN_TAGS].id}/image?size=${size}` };
          },
          auth,
        ),
      });
    }

    const base = rungs.fastify_hello.reqPerSec;
    for (const [name, r] of Object.entries(rungs))
      if (name !== 'fastify_hello') r.overFastifyHello = round(r.reqPerSec / base, 3);
    out.rungs = rungs;
    for (const name of ['public_cached', 'public_cached_front'])
      if (rungs[name])
        out[`goal_${name}`] = { rpsAtLeast15k: rungs[name].reqPerSec >= 15_000, p99AtMost5ms: rungs[name].p99ms <= 5 };
    out.vmHwmMBAtEnd = rssOf(processTree(app.proc.pid!)).hwmMB;
    process.stdout.write(`${JSON.stringify(out)}\n`);
    const row = (name: string, r: Rung) =>
      `${name.padEnd(24)} ${String(r.reqPerSec).padStart(7)} req/s  ×hello ${String(r.overFastifyHello ?? 1).padStart(5)}  ` +
      `p50 ${String(r.p50ms).padStart(4)} p99 ${String(r.p99ms).padStart(4)} ms  cpu/1k app ${r.cpuPer1kReq.appMs} pg ${r.cpuPer1kReq.postgresMs} redis ${r.cpuPer1kReq.redisMs} loadgen ${r.cpuPer1kReq.loadgenMs}` +
      (r.cpuPer1kReq.frontMs !== undefined ? ` front ${r.cpuPer1kReq.frontMs}` : '') +
      `  ${r.bytesPerAnswer} B/answer  box ceiling ${r.boxCeilingReqPerSec} req/s` +
      (r.non2xx ? `  non2xx ${r.non2xx}` : '') +
      (r.errors ? `  errors ${r.errors}` : '');
    process.stderr.write(
      [
        ...Object.entries(rungs).map(([n, r]) => row(n, r)),
        `public_cached_paced ${JSON.stringify(out.public_cached_paced)}`,
        `batch ${JSON.stringify(out.batch)}`,
        `scan rows ${JSON.stringify(out.scan_rows)}`,
      ].join('\n') + '\n',
    );
  } finally {
    await sql.end();
    await Promise.all([app.stop(), bare.stop()]);
    await db.drop();
  }
}

runBench('qr', main);
