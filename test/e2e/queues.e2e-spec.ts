import { getQueueToken } from '@nestjs/bull';
import type { Queue } from 'bull';
import { QUEUES } from '../../src/infra/queue/queue.module';
import { newOrg } from '../support/factories';
import { dropTestDatabase, startTestApp, TestApp } from '../support/test-app';

const ADMIN_TOKEN = 'admin-token-0123456789abcdef';

const queueOf = (t: TestApp, name: string) => t.app.get<Queue>(getQueueToken(name), { strict: false });

describe('queues: defaults, dead jobs, Bull Board', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ adminToken: ADMIN_TOKEN, queueFailedJobsKept: 50, queueCompletedJobsKept: 10 });
  });
  afterAll(() => t.close());

  const board = (path: string, authorization?: string) =>
    fetch(`${t.url}/admin/queues${path}`, { headers: authorization ? { authorization } : {} }).then(async (r) => ({
      status: r.status,
      headers: r.headers,
      text: await r.text(),
    }));

  it('gives each queue its default job options: priority, attempts, exponential backoff, kept jobs', async () => {
    const qr = queueOf(t, QUEUES.qr);
    const job = await qr.add('probe', {}, { delay: 3_600_000 });
    try {
      expect(job.opts).toMatchObject({
        priority: 1,
        attempts: 5,
        backoff: { type: 'exponential', delay: 1000 },
        removeOnComplete: 10,
        removeOnFail: 50,
      });
    } finally {
      await job.remove();
    }
    const stats = await queueOf(t, QUEUES.stats).add('probe', {}, { delay: 3_600_000 });
    expect(stats.opts).toMatchObject({ priority: 3, attempts: 2, backoff: { type: 'exponential', delay: 5000 } });
    await stats.remove();
  });

  it('keeps a dead job (failed on its last attempt) for inspection', async () => {
    const qr = queueOf(t, QUEUES.qr);
    // No handler takes this job name: Bull fails it ("Missing process handler").
    const job = await qr.add('no-such-job', { why: 'dead job test' }, { attempts: 1 });
    const failed = await job.finished().then(
      () => null,
      (err: Error) => err,
    );
    expect(failed).toBeInstanceOf(Error);
    const dead = await qr.getFailed();
    expect(dead.map((j) => j.id)).toContain(job.id);
    expect((await qr.getJob(job.id))?.failedReason).toBeTruthy();
  });

  it('serves Bull Board at /admin/queues to the admin token only, listing every queue', async () => {
    const none = await board('');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Basic /);
    expect(JSON.parse(none.text)).toMatchObject({ success: false, error: { code: 'UNAUTHENTICATED' } });
    const wrong = await board('', 'Bearer admin-token-0123456789abcdeX');
    expect(wrong.status).toBe(401);
    expect(JSON.parse(wrong.text).error.code).toBe('INVALID_TOKEN');
    expect((await board('', `Basic ${Buffer.from('ops:nope').toString('base64')}`)).status).toBe(401);

    const page = await board('', `Bearer ${ADMIN_TOKEN}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const basic = await board('', `Basic ${Buffer.from(`ops:${ADMIN_TOKEN}`).toString('base64')}`);
    expect(basic.status).toBe(200);

    const api = await board('/api/queues', `Bearer ${ADMIN_TOKEN}`);
    expect(api.status).toBe(200);
    const names = (JSON.parse(api.text).queues as { name: string }[]).map((q) => q.name).sort();
    expect(names).toEqual(Object.values(QUEUES).sort());
    // The board's own files are behind the token too.
    expect((await board('/api/queues')).status).toBe(401);
  });

  it('exposes the queue depths per queue and state on /metrics', async () => {
    const text = String((await t.root.get('/metrics')).body);
    for (const name of Object.values(QUEUES))
      expect(text).toContain(`waybill_queue_jobs{queue="${name}",state="failed"}`);
  });
});

describe('Bull Board without ADMIN_TOKEN', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('is not mounted: 404', async () => {
    const res = await fetch(`${t.url}/admin/queues`, {
      headers: { authorization: 'Bearer anything-at-all-0123456789' },
    });
    await res.arrayBuffer();
    expect(res.status).toBe(404);
  });
});

describe('queues at shutdown', () => {
  it('a job running when the app closes finishes before the close returns', async () => {
    // Small chunks: the batch takes many statements, so it is still running when the close starts.
    const t = await startTestApp({ qrBatchChunk: 20 });
    let closed = false;
    try {
      const org = await newOrg(t.api);
      const total = 4000;
      const items = Array.from({ length: total }, (_, i) => ({
        entityType: 'CARGO',
        entityId: `crate-${i}`,
        title: `Crate ${i}`,
      }));
      const res = await t.api.post('/qr/batches', { orgId: org.id, items }, { token: org.owner.accessToken });
      expect(res.status).toBe(202);
      const batchId = res.body.data.batchId as string;
      const qr = queueOf(t, QUEUES.qr);
      while ((await qr.getActiveCount()) === 0) {
        const made = await t.sql.query(`SELECT count(*)::int AS n FROM qr_tags WHERE batch_id = $1`, [batchId]);
        if (made.rows[0].n === total) throw new Error('the batch ended before the close could start: make it longer');
        await new Promise((r) => setTimeout(r, 10));
      }
      const before = await t.sql.query(`SELECT count(*)::int AS n FROM qr_tags WHERE batch_id = $1`, [batchId]);
      expect(before.rows[0].n).toBeLessThan(total);
      await t.app.close();
      closed = true;
      const made = await t.sql.query(`SELECT count(*)::int AS n FROM qr_tags WHERE batch_id = $1`, [batchId]);
      expect(made.rows[0].n).toBe(total);
    } finally {
      if (closed) {
        await t.sql.end();
        await dropTestDatabase(t.config.databaseUrl);
      } else await t.close();
    }
  });
});
