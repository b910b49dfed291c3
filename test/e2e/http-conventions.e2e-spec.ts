import { gzipSync } from 'node:zlib';
import { newOrg, newPhone, newUser } from '../support/factories';
import { startTestApp, TestApp } from '../support/test-app';

describe('HTTP conventions', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ bodyLimitBytes: 4096 });
  });
  afterAll(() => t.close());

  it('every response carries an X-Request-Id, echoing a sane one from the client', async () => {
    const generated = await t.root.get('/health/live');
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const echoed = await t.root.get('/health/live', { headers: { 'X-Request-Id': 'client-abc-123' } });
    expect(echoed.headers.get('x-request-id')).toBe('client-abc-123');
    const hostile = await t.root.get('/health/live', { headers: { 'X-Request-Id': 'bad id with spaces <script>' } });
    expect(hostile.headers.get('x-request-id')).not.toContain('script');
    // Errors carry it in the body as well.
    const err = await t.api.get('/me', { headers: { 'X-Request-Id': 'trace-42' } });
    expect(err.body.error.requestId).toBe('trace-42');
  });

  it('unknown routes are 404 in the envelope', async () => {
    const res = await t.api.get('/no/such/thing');
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ success: false, error: { code: 'ROUTE_NOT_FOUND' } });
  });

  it('malformed JSON is a 400 MALFORMED_JSON', async () => {
    const res = await t.api.post('/auth/login', undefined, {
      raw: '{"phone": "+91',
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ success: false, error: { code: 'MALFORMED_JSON' } });
  });

  it('a body over the configured limit is a 413 and creates nothing', async () => {
    const phone = newPhone();
    const res = await t.api.post('/auth/register', { phone, name: 'x'.repeat(5000), password: 'longenough' });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('PAYLOAD_TOO_LARGE');
    const n = await t.sql.query('SELECT count(*)::int AS n FROM users WHERE phone = $1', [phone]);
    expect(n.rows[0].n).toBe(0);
  });

  it('an unsupported content type is a 415', async () => {
    const res = await t.api.post('/auth/login', undefined, { raw: 'phone=1', headers: { 'content-type': 'text/csv' } });
    expect(res.status).toBe(415);
    expect(res.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('compresses bodies over 1 KiB when asked, not small ones', async () => {
    const org = await newOrg(t.api);
    for (let i = 0; i < 12; i++) {
      await t.api.post(
        `/orgs/${org.id}/trucks`,
        { number: `RJ14 GB ${1000 + i}`, type: 'CONTAINER' },
        { token: org.owner.accessToken },
      );
    }
    const res = await fetch(`${t.url}/api/v1/orgs/${org.id}/trucks?limit=100`, {
      headers: { authorization: `Bearer ${org.owner.accessToken}`, 'accept-encoding': 'gzip' },
    });
    // fetch decompresses transparently; the header tells what was sent.
    expect(res.headers.get('content-encoding')).toBe('gzip');
    expect(((await res.json()) as any).data).toHaveLength(12);
    const small = await fetch(`${t.url}/health/live`, { headers: { 'accept-encoding': 'gzip' } });
    expect(small.headers.get('content-encoding')).toBeNull();
  });

  it('reads a gzip-encoded request body (a phone may compress a backlog of pings)', async () => {
    const phone = newPhone();
    const res = await fetch(`${t.url}/api/v1/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipSync(JSON.stringify({ phone, name: 'Zipped Driver', password: 'longenough' })),
    });
    expect(res.status).toBe(201);
    const n = await t.sql.query('SELECT count(*)::int AS n FROM users WHERE phone = $1', [phone]);
    expect(n.rows[0].n).toBe(1);
  });

  it('list responses carry meta.nextCursor; single objects do not', async () => {
    const u = await newUser(t.api);
    const org = await newOrg(t.api, u);
    const list = await t.api.get(`/orgs/${org.id}/members`, { token: u.accessToken });
    expect(Object.keys(list.body).sort()).toEqual(['data', 'meta', 'success']);
    const one = await t.api.get(`/orgs/${org.id}`, { token: u.accessToken });
    expect(Object.keys(one.body).sort()).toEqual(['data', 'success']);
  });

  it('serves the OpenAPI document and UI at /docs', async () => {
    const json = await t.root.get('/docs/openapi.json');
    expect(json.status).toBe(200);
    expect(Object.keys(json.body.paths)).toEqual(
      expect.arrayContaining(['/api/v1/auth/login', '/api/v1/orgs/{orgId}/members']),
    );
    const ui = await fetch(`${t.url}/docs`);
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain('swagger');
  });

  it('health: live and ready when every dependency answers', async () => {
    expect((await t.root.get('/health/live')).body).toEqual({ success: true, data: { status: 'ok' } });
    const ready = await t.root.get('/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body.data.checks).toEqual({ primary: 'up', replica: 'up', redis: 'up' });
  });
});

describe('health when dependencies are down', () => {
  let t: TestApp;
  beforeAll(async () => {
    // Nothing listens on port 1: the replica and Redis are unreachable.
    t = await startTestApp({
      databaseReplicaUrl: 'postgresql://postgres@127.0.0.1:1/none',
      redisUrl: 'redis://127.0.0.1:1',
    });
  });
  afterAll(() => t.close());

  it('ready is 503 naming what is down; live stays 200', async () => {
    const ready = await t.root.get('/health/ready');
    expect(ready.status).toBe(503);
    expect(ready.body.success).toBe(false);
    expect(ready.body.error.code).toBe('SERVICE_UNAVAILABLE');
    expect(ready.body.error.message).toMatch(/replica/);
    expect(ready.body.error.message).toMatch(/redis/);
    expect(ready.body.error.message).not.toMatch(/primary/);
    expect((await t.root.get('/health/live')).status).toBe(200);
  });
});

describe('login throttling', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ authRateLimitPerMinute: 3 });
  });
  afterAll(() => t.close());

  it('is 429 with Retry-After past the limit, for login only', async () => {
    const u = await newUser(t.api); // 1 (register counts)
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      statuses.push((await t.api.post('/auth/login', { phone: u.phone, password: 'wrong-password' })).status);
    }
    expect(statuses).toEqual([401, 401, 429]);
    const limited = await t.api.post('/auth/login', { phone: u.phone, password: u.password });
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('RATE_LIMITED');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    // Everything else is untouched.
    expect((await t.api.get('/me', { token: u.accessToken })).status).toBe(200);
    expect((await t.api.post('/auth/refresh', { refreshToken: u.refreshToken })).status).toBe(200);
  });
});
