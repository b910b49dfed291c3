import { AccessCodesService } from '../../src/modules/access-codes/access-codes.service';
import { newMember, newOrg, TestOrg } from '../support/factories';
import { AppNode, startAnotherNode } from '../support/socket-client';
import { startTestApp, TestApp } from '../support/test-app';

describe('access codes (crew logins)', () => {
  let t: TestApp;
  let org: TestOrg;
  beforeAll(async () => {
    t = await startTestApp({
      // 1,000 logins at once from one address, waiting their turn for a connection.
      authRateLimitPerMinute: 1_000_000,
      databaseConnectTimeoutMs: 120_000,
      // The sweep runs only when a test calls it.
      accessCodeIdleSweepMs: 86_400_000,
      accessCodeIdleBatch: 2,
    });
    org = await newOrg(t.api);
  });
  afterAll(() => t.close());

  const owner = () => ({ token: org.owner.accessToken });
  const newCode = async (body: Record<string, unknown> = {}) => {
    const res = await t.api.post(
      `/orgs/${org.id}/access-codes`,
      { label: 'Gate crew', role: 'STAFF', maxSessions: 5, ...body },
      owner(),
    );
    expect(res.status).toBe(201);
    return res.body.data as { id: string; code: string; activeSessions: number; status: string };
  };
  const login = (code: string, name = 'Ramesh') =>
    t.api.post('/auth/code-login', { code, name, deviceId: 'gate-phone-1' });
  const seats = async (codeId: string) =>
    (await t.sql.query(`SELECT active_sessions FROM access_codes WHERE id = $1`, [codeId])).rows[0]
      .active_sessions as number;

  it('creates a code shown once, stored as its SHA-256, managed by OWNER/ADMIN only', async () => {
    const code = await newCode({ expiresAt: new Date(Date.now() + 86_400_000).toISOString() });
    expect(code.code).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(code).toMatchObject({
      orgId: org.id,
      label: 'Gate crew',
      role: 'STAFF',
      maxSessions: 5,
      activeSessions: 0,
      status: 'ACTIVE',
      disabledAt: null,
    });
    const row = (await t.sql.query(`SELECT * FROM access_codes WHERE id = $1`, [code.id])).rows[0];
    expect(JSON.stringify(row)).not.toContain(code.code);

    const list = await t.api.get(`/orgs/${org.id}/access-codes`, owner());
    expect(list.status).toBe(200);
    expect(JSON.stringify(list.body)).not.toContain(code.code);

    const admin = await newMember(t.api, org, 'ADMIN');
    expect((await t.api.get(`/orgs/${org.id}/access-codes`, { token: admin.accessToken })).status).toBe(200);
    for (const role of ['STAFF', 'ACCOUNTANT', 'DRIVER']) {
      const m = await newMember(t.api, org, role);
      expect((await t.api.get(`/orgs/${org.id}/access-codes`, { token: m.accessToken })).status).toBe(403);
      const post = await t.api.post(
        `/orgs/${org.id}/access-codes`,
        { label: 'x', role: 'STAFF', maxSessions: 1 },
        { token: m.accessToken },
      );
      expect(post.status).toBe(403);
    }
    for (const bad of [
      { role: 'ADMIN' },
      { maxSessions: 0 },
      { maxSessions: 10_001 },
      { expiresAt: new Date(Date.now() - 1000).toISOString() },
    ]) {
      expect(
        (
          await t.api.post(
            `/orgs/${org.id}/access-codes`,
            { label: 'x', role: 'STAFF', maxSessions: 1, ...bad },
            owner(),
          )
        ).status,
      ).toBe(400);
    }
  });

  it('gives exactly maxSessions seats to 1,000 concurrent logins', async () => {
    const code = await newCode({ maxSessions: 400 });
    const statuses = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        fetch(`${t.url}/api/v1/auth/code-login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ code: code.code, name: `Loader ${i}` }),
        }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error?: { code: string } } })),
      ),
    );
    const created = statuses.filter((s) => s.status === 201).length;
    const full = statuses.filter((s) => s.status === 409 && s.body.error?.code === 'CODE_CAPACITY_REACHED').length;
    expect({ created, full }).toEqual({ created: 400, full: 600 });
    expect(await seats(code.id)).toBe(400);
    const open = await t.sql.query(
      `SELECT count(*)::int AS n FROM access_code_sessions WHERE code_id = $1 AND ended_at IS NULL`,
      [code.id],
    );
    expect(open.rows[0].n).toBe(400);

    const list = await t.api.get(`/orgs/${org.id}/access-codes?limit=100`, owner());
    expect(list.body.data.find((c: { id: string }) => c.id === code.id).activeSessions).toBe(400);
  });

  it('is a member of the code’s org with the code’s role, and nothing more', async () => {
    const code = await newCode();
    const res = await login(code.code);
    expect(res.status).toBe(201);
    const { session, accessToken, refreshToken } = res.body.data;
    expect(session).toMatchObject({
      codeId: code.id,
      orgId: org.id,
      role: 'STAFF',
      name: 'Ramesh',
      deviceId: 'gate-phone-1',
    });
    expect(refreshToken).toEqual(expect.any(String));

    const me = await t.api.get('/me', { token: accessToken });
    expect(me.status).toBe(200);
    expect(me.body.data.memberships).toEqual([expect.objectContaining({ orgId: org.id, role: 'STAFF' })]);
    expect(me.body.data.user).toMatchObject({ name: 'Ramesh', phone: null });

    // What a STAFF member may do, and what they may not.
    expect((await t.api.get(`/trips?orgId=${org.id}`, { token: accessToken })).status).toBe(200);
    expect((await t.api.get(`/orgs/${org.id}/members`, { token: accessToken })).status).toBe(200);
    const outsider = await newOrg(t.api);
    expect((await t.api.get(`/orgs/${outsider.id}`, { token: accessToken })).status).toBe(404);
    const add = await t.api.post(
      `/orgs/${org.id}/members`,
      { phone: '+919800000001', role: 'STAFF' },
      { token: accessToken },
    );
    expect(add.status).toBe(403);
    expect((await t.api.get(`/orgs/${org.id}/access-codes`, { token: accessToken })).status).toBe(403);

    // A code session is not a person on the member list.
    const members = await t.api.get(`/orgs/${org.id}/members?limit=100`, owner());
    expect(members.body.data.map((m: { userId: string }) => m.userId)).not.toContain(session.userId);
  });

  it('refresh rotates a code session’s token like any other', async () => {
    const code = await newCode();
    const { refreshToken } = (await login(code.code)).body.data;
    const r1 = await t.api.post('/auth/refresh', { refreshToken });
    expect(r1.status).toBe(200);
    expect(r1.body.data.refreshToken).not.toBe(refreshToken);
    expect((await t.api.get('/me', { token: r1.body.data.accessToken })).status).toBe(200);
    // The old token again: reuse ends the session, and frees its seat.
    const reused = await t.api.post('/auth/refresh', { refreshToken });
    expect(reused.status).toBe(401);
    expect((await t.api.post('/auth/refresh', { refreshToken: r1.body.data.refreshToken })).status).toBe(401);
    expect(await seats(code.id)).toBe(0);
  });

  it('code-logout frees exactly one seat, and a second one frees nothing more', async () => {
    const code = await newCode({ maxSessions: 3 });
    const a = (await login(code.code, 'A')).body.data;
    await login(code.code, 'B');
    expect(await seats(code.id)).toBe(2);
    expect((await t.api.post('/auth/code-logout', { refreshToken: a.refreshToken })).status).toBe(204);
    expect(await seats(code.id)).toBe(1);
    expect((await t.api.post('/auth/code-logout', { refreshToken: a.refreshToken })).status).toBe(204);
    expect(await seats(code.id)).toBe(1);
    expect((await t.api.get('/me', { token: a.accessToken })).status).toBe(401);
    expect((await t.api.post('/auth/refresh', { refreshToken: a.refreshToken })).status).toBe(401);
    expect((await t.api.post('/auth/code-logout', { refreshToken: 'unknown-token' })).status).toBe(204);
  });

  it('refuses a wrong code (401), an expired one (410) and a full one (409)', async () => {
    const wrong = await login('AAAAAAAAAAAAAAAAAAAAAA');
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('INVALID_CODE');
    expect((await login('not a code!')).body.error.code).toBe('INVALID_CODE');

    const expiring = await newCode({ expiresAt: new Date(Date.now() + 60_000).toISOString() });
    await t.sql.query(`UPDATE access_codes SET expires_at = now() - interval '1 second' WHERE id = $1`, [expiring.id]);
    const expired = await login(expiring.code);
    expect(expired.status).toBe(410);
    expect(expired.body.error.code).toBe('CODE_EXPIRED');
    const listed = await t.api.get(`/orgs/${org.id}/access-codes?limit=100`, owner());
    expect(listed.body.data.find((c: { id: string }) => c.id === expiring.id).status).toBe('EXPIRED');

    const one = await newCode({ maxSessions: 1 });
    expect((await login(one.code)).status).toBe(201);
    const full = await login(one.code);
    expect(full.status).toBe(409);
    expect(full.body.error.code).toBe('CODE_CAPACITY_REACHED');
  });

  describe('disabling a code', () => {
    let other: AppNode;
    beforeAll(async () => {
      other = await startAnotherNode(t);
    });
    afterAll(() => other.close());

    it('ends its sessions at once on every node, refuses new logins, and is idempotent', async () => {
      const code = await newCode();
      const s1 = (await login(code.code, 'A')).body.data;
      const s2 = (await login(code.code, 'B')).body.data;
      const onOther = (token: string) =>
        fetch(`${other.url}/api/v1/me`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
      expect(await onOther(s1.accessToken)).toBe(200);

      const res = await t.api.post(`/orgs/${org.id}/access-codes/${code.id}/disable`, undefined, owner());
      expect(res.status).toBe(200);
      expect(res.body.data).toMatchObject({
        id: code.id,
        status: 'DISABLED',
        activeSessions: 0,
        disabledAt: expect.any(String),
      });
      expect((await t.api.get('/me', { token: s1.accessToken })).status).toBe(401);
      expect((await t.api.get('/me', { token: s2.accessToken })).status).toBe(401);
      // The other node heard the revocation before the disable was answered (the bus message precedes the reply).
      for (let i = 0; i < 50 && (await onOther(s1.accessToken)) !== 401; i++)
        await new Promise((r) => setTimeout(r, 20));
      expect(await onOther(s1.accessToken)).toBe(401);
      expect((await t.api.post('/auth/refresh', { refreshToken: s2.refreshToken })).status).toBe(401);

      const again = await t.api.post(`/orgs/${org.id}/access-codes/${code.id}/disable`, undefined, owner());
      expect(again.status).toBe(200);
      expect(again.body.data.disabledAt).toBe(res.body.data.disabledAt);
      expect(await seats(code.id)).toBe(0);

      const refused = await login(code.code);
      expect(refused.status).toBe(410);
      expect(refused.body.error.code).toBe('CODE_DISABLED');

      const outsider = await newOrg(t.api);
      expect(
        (
          await t.api.post(`/orgs/${outsider.id}/access-codes/${code.id}/disable`, undefined, {
            token: outsider.owner.accessToken,
          })
        ).status,
      ).toBe(404);
    });
  });

  it('the idle sweep ends idle sessions in batches and frees their seats', async () => {
    const code = await newCode({ maxSessions: 10 });
    const sessions = [];
    for (let i = 0; i < 6; i++) sessions.push((await login(code.code, `S${i}`)).body.data);
    const idle = sessions.slice(0, 5);
    await t.sql.query(
      `UPDATE access_code_sessions SET last_seen_at = now() - interval '2 hours' WHERE id = ANY($1::uuid[])`,
      [idle.map((s) => s.session.id)],
    );
    const result = await t.app.get(AccessCodesService).endIdleSessions();
    expect(result).toEqual({ ended: 5, batches: 3 });
    expect(await seats(code.id)).toBe(1);
    for (const s of idle) expect((await t.api.get('/me', { token: s.accessToken })).status).toBe(401);
    expect((await t.api.get('/me', { token: sessions[5].accessToken })).status).toBe(200);
    // A session ended by the sweep frees nothing more at logout.
    expect((await t.api.post('/auth/code-logout', { refreshToken: idle[0].refreshToken })).status).toBe(204);
    expect(await seats(code.id)).toBe(1);
    expect(await t.app.get(AccessCodesService).endIdleSessions()).toEqual({ ended: 0, batches: 0 });
  });
});

describe('code-login rate limit', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ authRateLimitPerMinute: 3, accessCodeIdleSweepMs: 86_400_000 });
  });
  afterAll(() => t.close());

  it('is limited per address like logins', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++)
      statuses.push((await t.api.post('/auth/code-login', { code: 'AAAAAAAAAAAAAAAAAAAAAA', name: 'X' })).status);
    expect(statuses).toEqual([401, 401, 401]);
    const limited = await t.api.post('/auth/code-login', { code: 'AAAAAAAAAAAAAAAAAAAAAA', name: 'X' });
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('RATE_LIMITED');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});
