import { existsSync } from 'node:fs';
import { newOrg, TestOrg } from '../support/factories';
import { NGINX_BIN, NginxFront } from '../support/nginx-front';
import { AppNode, startAnotherNode } from '../support/socket-client';
import { startTestApp, TestApp } from '../support/test-app';

const haveNginx = existsSync(NGINX_BIN);
if (!haveNginx) process.stderr.write(`front-cache.e2e-spec: skipped, ${NGINX_BIN} is missing (apt-get install nginx-light)\n`);
/**
 * The app's per-address budget for the public page here: above the misses all these tests send through the
 * front (nginx is one address to the app), far below the reads of the crowd test.
 */
const PAGE_LIMIT = 20;

(haveNginx ? describe : describe.skip)('the front (deploy/nginx/nginx.conf) keeps the public tag page', () => {
  let t: TestApp;
  let other: AppNode;
  let front: NginxFront;
  let org: TestOrg;
  beforeAll(async () => {
    t = await startTestApp({ trustProxy: 1, qrPublicRateLimitPerMinute: PAGE_LIMIT });
    other = await startAnotherNode(t);
    front = await NginxFront.start([t.url, other.url].map((u) => new URL(u).host));
    org = await newOrg(t.api);
  });
  afterAll(async () => {
    await front?.stop();
    await other?.close();
    await t?.close();
  });

  async function newTag(body: Record<string, unknown> = {}): Promise<{ id: string; code: string }> {
    const res = await t.api.post(
      '/qr/tags',
      { orgId: org.id, entityType: 'TRUCK', entityId: `truck-${Math.random()}`, title: 'Truck 7', ...body },
      { token: org.owner.accessToken },
    );
    expect(res.status).toBe(201);
    return res.body.data;
  }
  const read = (path: string, headers: Record<string, string> = {}) => fetch(`${front.url}${path}`, { headers });
  const json = { accept: 'application/json' };

  it('answers repeat reads from its cache, one entry per answer (JSON, HTML), whatever the query string', async () => {
    const tag = await newTag();
    const first = await read(`/q/${tag.code}`, json);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-cache-status')).toBe('MISS');
    const body = await first.text();
    expect(JSON.parse(body).data).toMatchObject({ code: tag.code, title: 'Truck 7', status: 'ACTIVE' });
    expect(first.headers.get('cache-control')).toBe('public, s-maxage=60, stale-while-revalidate=300');

    const again = await read(`/q/${tag.code}?utm_source=label`, { accept: 'application/json, text/plain' });
    expect(again.headers.get('x-cache-status')).toBe('HIT');
    expect(await again.text()).toBe(body);
    expect(again.headers.get('etag')).toBe(first.headers.get('etag'));
    // The app's security headers are kept with the answer.
    expect(again.headers.get('content-security-policy')).toBe(first.headers.get('content-security-policy'));

    const page = await read(`/q/${tag.code}`, { accept: 'text/html,application/xhtml+xml' });
    expect(page.headers.get('x-cache-status')).toBe('MISS');
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await page.text()).toContain('<h1>Truck 7</h1>');
    const pageAgain = await read(`/q/${tag.code}`, { accept: '*/*' });
    expect(pageAgain.headers.get('x-cache-status')).toBe('HIT');
    expect(pageAgain.headers.get('content-type')).toBe('text/html; charset=utf-8');
  });

  it('a crowd reading one printed code reaches the app once: the per-address budget is not spent', async () => {
    const tag = await newTag();
    const statuses = await Promise.all(
      Array.from({ length: 6 * PAGE_LIMIT }, () => read(`/q/${tag.code}`, json).then((r) => r.status)),
    );
    expect(statuses.every((s) => s === 200)).toBe(true);
    // Straight to the app, one address is past its budget long before that many reads.
    const direct = await Promise.all(
      Array.from({ length: 2 * PAGE_LIMIT }, () =>
        fetch(`${t.url}/q/${tag.code}`, { headers: { ...json, 'x-forwarded-for': '10.9.9.9' } }).then((r) => r.status),
      ),
    );
    expect(direct.filter((s) => s === 429).length).toBeGreaterThan(0);
  });

  it('never keeps a private, disabled or unknown code: each read asks the app and gets its 404', async () => {
    const hidden = await newTag({ isPublic: false });
    const disabled = await newTag();
    expect((await t.api.post(`/qr/tags/${disabled.id}/disable`, undefined, { token: org.owner.accessToken })).status).toBe(
      200,
    );
    for (const code of [hidden.code, disabled.code, 'no-such-code-0000']) {
      for (let i = 0; i < 2; i++) {
        const res = await read(`/q/${code}`, json);
        expect(res.status).toBe(404);
        expect(res.headers.get('cache-control')).toBe('no-store');
        expect(res.headers.get('x-cache-status')).not.toBe('HIT');
        expect((await res.json()).error.code).toBe('NOT_FOUND');
      }
    }
  });

  it('answers 304 from its cache to a matching If-None-Match', async () => {
    const tag = await newTag();
    const first = await read(`/q/${tag.code}`, json);
    await first.text();
    const etag = first.headers.get('etag')!;
    const revalidated = await read(`/q/${tag.code}`, { ...json, 'if-none-match': etag });
    expect(revalidated.status).toBe(304);
    expect(revalidated.headers.get('x-cache-status')).toBe('HIT');
  });

  it('gives each answer a request id of its own, a cached one too', async () => {
    const tag = await newTag();
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const res = await read(`/q/${tag.code}`, json);
      await res.text();
      ids.push(res.headers.get('x-request-id'));
    }
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(3);
  });

  it('keeps nothing else: the API and health answers pass through', async () => {
    for (const path of ['/health/live', '/api/v1/me']) {
      const res = await read(path);
      await res.text();
      expect(res.headers.get('x-cache-status')).toBeNull();
    }
    const me = await read('/api/v1/me', { authorization: `Bearer ${org.owner.accessToken}` });
    expect(me.status).toBe(200);
    expect(me.headers.get('x-cache-status')).toBeNull();
    expect(JSON.stringify(await me.json())).toContain(org.owner.id);
  });
});
