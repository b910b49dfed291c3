import { newPhone, newUser } from '../support/factories';
import { PrivateRedis } from '../support/socket-client';
import { startTestApp, TestApp } from '../support/test-app';

const wrongLogin = (t: TestApp, phone = newPhone(), headers: Record<string, string> = {}, path = '/auth/login') =>
  t.api.post(path, { phone, password: 'not-the-password' }, { headers }).then((r) => r.status);

/** fetch, with the body read to the end (an unread body holds its connection open past the app's close). */
async function fetchAll(url: string, init: RequestInit): Promise<Response> {
  const res = await fetch(url, init);
  await res.arrayBuffer();
  return res;
}

function expectLimited(res: { status: number; body: any; headers: Headers }): void {
  expect(res.status).toBe(429);
  expect(res.body.error.code).toBe('RATE_LIMITED');
  expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
}

describe('login limits with no trusted proxy (the default)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      authRateLimitPerMinute: 3,
      authRateLimitPerPhonePerMinute: 1000,
      corsOrigins: ['https://app.example.com'],
    });
  });
  afterAll(() => t.close());

  it('X-Forwarded-For from a direct client does not change whom it counts against', async () => {
    const statuses: number[] = [];
    for (let i = 1; i <= 3; i++) statuses.push(await wrongLogin(t, newPhone(), { 'x-forwarded-for': `10.0.0.${i}` }));
    expect(statuses).toEqual([401, 401, 401]);
    const res = await t.api.post(
      '/auth/login',
      { phone: newPhone(), password: 'not-the-password' },
      { headers: { 'x-forwarded-for': '10.0.0.99' } },
    );
    expectLimited(res);
    // A percent-encoded path is the same route, and the same budget.
    expectLimited(await t.api.post('/auth/%6Cogin', { phone: newPhone(), password: 'x' }));
  });

  it('sends the security headers, and /docs still loads its scripts under the CSP', async () => {
    const res = await t.root.get('/health/live');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(res.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/);

    const docs = await t.root.get('/docs');
    expect(docs.status).toBe(200);
    expect(docs.headers.get('content-security-policy')).toBe(csp);
    const html = String(docs.body);
    // Every script is a same-origin file (no inline script the CSP would block), and each is served.
    const scripts = [...html.matchAll(/<script([^>]*)>/g)].map((m) => m[1]);
    expect(scripts.length).toBeGreaterThan(0);
    for (const attrs of scripts) {
      const src = new URL(/src=["']([^"']+)["']/.exec(attrs)?.[1] ?? 'inline', `${t.url}/docs`);
      expect(src.origin).toBe(t.url);
      const script = await fetch(src);
      await script.arrayBuffer(); // read to the end, so the connection is free when the app closes
      expect(script.status).toBe(200);
    }
  });

  it('Socket.IO and HTTP answer cross-origin only to the configured origins', async () => {
    const handshake = (origin: string) =>
      fetchAll(`${t.url}/socket.io/?EIO=4&transport=polling`, { headers: { origin } });
    const allowed = await handshake('https://app.example.com');
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    const other = await handshake('https://evil.example.com');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();

    const preflight = (origin: string) =>
      fetchAll(`${t.url}/api/v1/me`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
      });
    expect((await preflight('https://app.example.com')).headers.get('access-control-allow-origin')).toBe(
      'https://app.example.com',
    );
    expect((await preflight('https://evil.example.com')).headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('cross-origin with CORS_ORIGINS unset', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('Socket.IO allows no other origin', async () => {
    const res = await fetchAll(`${t.url}/socket.io/?EIO=4&transport=polling`, {
      headers: { origin: 'https://app.example.com' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('login limits behind one trusted proxy (TRUST_PROXY=1)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ trustProxy: 1, authRateLimitPerMinute: 3, authRateLimitPerPhonePerMinute: 3 });
  });
  afterAll(() => t.close());
  const from = (address: string) => ({ 'x-forwarded-for': address });

  it('counts each forwarded address on its own, and only the address the proxy added', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push(await wrongLogin(t, newPhone(), from('10.1.0.1')));
    expect(statuses).toEqual([401, 401, 401]);
    expect(await wrongLogin(t, newPhone(), from('10.1.0.1'))).toBe(429);
    // Another client behind the proxy has its own budget.
    expect(await wrongLogin(t, newPhone(), from('10.1.0.2'))).toBe(401);
    // An address the client wrote itself, before the one the proxy appended, is not believed.
    expect(await wrongLogin(t, newPhone(), from('10.1.0.77, 10.1.0.1'))).toBe(429);
  });

  it('limits a percent-encoded login path exactly as the login it routes to', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push(await wrongLogin(t, newPhone(), from('10.2.0.1'), '/auth/%6Cogin'));
    expect(statuses).toEqual([401, 401, 401]);
    expectLimited(
      await t.api.post('/auth/%6Cogin', { phone: newPhone(), password: 'x' }, { headers: from('10.2.0.1') }),
    );
    expect(await wrongLogin(t, newPhone(), from('10.2.0.1'))).toBe(429);
  });

  it('limits logins to one phone from many addresses; other phones are untouched', async () => {
    const u = await newUser(t.api);
    const statuses: number[] = [];
    for (let i = 1; i <= 3; i++) statuses.push(await wrongLogin(t, u.phone, from(`10.3.0.${i}`)));
    expect(statuses).toEqual([401, 401, 401]);
    // Even the right password, from a fresh address, waits for the window.
    expectLimited(
      await t.api.post('/auth/login', { phone: u.phone, password: u.password }, { headers: from('10.3.0.4') }),
    );
    expect(await wrongLogin(t, newPhone(), from('10.3.0.5'))).toBe(401);
  });
});

describe('login limits while Redis is down', () => {
  let redis: PrivateRedis;
  let t: TestApp;
  beforeAll(async () => {
    redis = await PrivateRedis.start();
    t = await startTestApp({ redisUrl: redis.url, authRateLimitPerMinute: 3, authRateLimitPerPhonePerMinute: 1000 });
  });
  afterAll(async () => {
    await redis?.start().catch(() => undefined); // closing is quicker with Redis up
    await t?.close();
    await redis?.stop();
  });

  it('keeps limiting, per node, in memory; logins still answer', async () => {
    const u = await newUser(t.api); // counted in Redis
    await redis.stop();
    expect(await wrongLogin(t, u.phone)).toBe(401);
    expect(await wrongLogin(t, newPhone())).toBe(401);
    expect((await t.api.post('/auth/login', { phone: u.phone, password: u.password })).status).toBe(200);
    expectLimited(await t.api.post('/auth/login', { phone: u.phone, password: u.password }));
  });
});
