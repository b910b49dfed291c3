import { createHmac } from 'node:crypto';
import Redis from 'ioredis';
import { SessionRevocations } from '../../src/common/auth/session-revocations';
import { PasswordHasher } from '../../src/modules/auth/password-hasher';
import { newOrg, newPhone, newUser } from '../support/factories';
import { until } from '../support/net';
import { startAnotherNode } from '../support/socket-client';
import { startTestApp, TestApp } from '../support/test-app';

describe('auth', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  describe('register', () => {
    it('creates a user and returns tokens, never the password', async () => {
      const phone = newPhone();
      const res = await t.api.post('/auth/register', { phone, name: 'Ravi', password: 'longenough' });
      expect(res.status).toBe(201);
      expect(res.body.success).toBe(true);
      expect(res.body.data.user).toEqual({
        id: expect.any(String),
        phone,
        name: 'Ravi',
        createdAt: expect.any(String),
      });
      expect(res.body.data.accessToken).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
      expect(typeof res.body.data.refreshToken).toBe('string');
      expect(JSON.stringify(res.body)).not.toContain('longenough');
      const row = await t.sql.query('SELECT password_hash FROM users WHERE phone = $1', [phone]);
      expect(row.rows[0].password_hash).toMatch(/^scrypt\$/);
      expect(row.rows[0].password_hash).not.toContain('longenough');
    });

    it('rejects bad input with 400 naming the fields, and stores nothing', async () => {
      const res = await t.api.post('/auth/register', { phone: '98123', name: '', password: 'short' });
      expect(res.status).toBe(400);
      expect(res.body.success).toBe(false);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      const paths = res.body.error.details.map((d: { path: string }) => d.path).sort();
      expect(paths).toEqual(['name', 'password', 'phone']);
      const count = await t.sql.query(`SELECT count(*)::int AS n FROM users WHERE phone = '98123'`);
      expect(count.rows[0].n).toBe(0);
    });

    it('rejects unknown keys', async () => {
      const res = await t.api.post('/auth/register', {
        phone: newPhone(),
        name: 'X',
        password: 'longenough',
        role: 'OWNER',
      });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
    });

    it('refuses a phone that is already registered with 409', async () => {
      const u = await newUser(t.api);
      const res = await t.api.post('/auth/register', { phone: u.phone, name: 'Other', password: 'longenough' });
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe('PHONE_TAKEN');
    });
  });

  describe('login', () => {
    it('logs in with the right password', async () => {
      const u = await newUser(t.api);
      const res = await t.api.post('/auth/login', { phone: u.phone, password: u.password });
      expect(res.status).toBe(200);
      expect(res.body.data.user.id).toBe(u.id);
      expect(res.body.data.accessToken).toBeTruthy();
    });

    it('gives the same answer for a wrong password and an unknown phone', async () => {
      const u = await newUser(t.api);
      const wrong = await t.api.post('/auth/login', { phone: u.phone, password: 'not-the-password' });
      const unknown = await t.api.post('/auth/login', { phone: newPhone(), password: 'not-the-password' });
      expect(wrong.status).toBe(401);
      expect(unknown.status).toBe(401);
      expect(wrong.body.error.code).toBe('INVALID_CREDENTIALS');
      expect(unknown.body.error.code).toBe(wrong.body.error.code);
      expect(unknown.body.error.message).toBe(wrong.body.error.message);
    });

    it('upgrades a hash made with older scrypt parameters at the next login, and only then', async () => {
      const { N, r, p } = t.config.passwordScrypt;
      const u = await newUser(t.api);
      const fresh = await t.sql.query('SELECT password_hash FROM users WHERE id = $1', [u.id]);
      expect(fresh.rows[0].password_hash.startsWith(`scrypt$${N}$${r}$${p}$`)).toBe(true);

      const old = await new PasswordHasher({ N: N / 4, r, p }).hash(u.password);
      await t.sql.query('UPDATE users SET password_hash = $2 WHERE id = $1', [u.id, old]);
      const stored = async () =>
        (await t.sql.query('SELECT password_hash FROM users WHERE id = $1', [u.id])).rows[0].password_hash as string;

      // A wrong password proves nothing: the old hash stays.
      expect((await t.api.post('/auth/login', { phone: u.phone, password: 'not-the-password' })).status).toBe(401);
      expect(await stored()).toBe(old);

      expect((await t.api.post('/auth/login', { phone: u.phone, password: u.password })).status).toBe(200);
      const upgraded = await stored();
      expect(upgraded.startsWith(`scrypt$${N}$${r}$${p}$`)).toBe(true);
      expect(upgraded).not.toBe(old);
      // It verifies, and is left alone from now on.
      expect((await t.api.post('/auth/login', { phone: u.phone, password: u.password })).status).toBe(200);
      expect(await stored()).toBe(upgraded);
    });
  });

  describe('access tokens', () => {
    it('GET /me needs a token', async () => {
      const res = await t.api.get('/me');
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('UNAUTHENTICATED');
    });

    it('refuses a garbage or forged token', async () => {
      const bad = await t.api.get('/me', { token: 'not.a.jwt' });
      expect(bad.status).toBe(401);
      expect(bad.body.error.code).toBe('INVALID_TOKEN');
      const u = await newUser(t.api);
      const [h, p] = u.accessToken.split('.');
      const forgedSig = createHmac('sha256', 'some-other-secret-entirely').update(`${h}.${p}`).digest('base64url');
      const forged = await t.api.get('/me', { token: `${h}.${p}.${forgedSig}` });
      expect(forged.status).toBe(401);
      expect(forged.body.error.code).toBe('INVALID_TOKEN');
    });

    it('refuses an expired token with TOKEN_EXPIRED', async () => {
      const u = await newUser(t.api);
      const [, p] = u.accessToken.split('.');
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
      const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
      const past = Math.floor(Date.now() / 1000) - 3600;
      const payload = Buffer.from(JSON.stringify({ ...claims, iat: past - 900, exp: past })).toString('base64url');
      const sig = createHmac('sha256', t.config.jwtSecret).update(`${header}.${payload}`).digest('base64url');
      const res = await t.api.get('/me', { token: `${header}.${payload}.${sig}` });
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('TOKEN_EXPIRED');
    });

    it('a token accepted before (and remembered as verified) is refused once it expires', async () => {
      const u = await newUser(t.api);
      const [, p] = u.accessToken.split('.');
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
      const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
      const now = Math.floor(Date.now() / 1000);
      const payload = Buffer.from(JSON.stringify({ ...claims, iat: now, exp: now + 2 })).toString('base64url');
      const sig = createHmac('sha256', t.config.jwtSecret).update(`${header}.${payload}`).digest('base64url');
      const token = `${header}.${payload}.${sig}`;
      expect((await t.api.get('/me', { token })).status).toBe(200);
      expect((await t.api.get('/me', { token })).status).toBe(200);
      await new Promise((r) => setTimeout(r, (now + 2) * 1000 - Date.now() + 50));
      const res = await t.api.get('/me', { token });
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('TOKEN_EXPIRED');
    });

    it('GET /me returns the user and memberships', async () => {
      const u = await newUser(t.api, 'Meena');
      const org = await newOrg(t.api, u, 'Meena Transport');
      const res = await t.api.get('/me', { token: u.accessToken });
      expect(res.status).toBe(200);
      // The whole body, exactly: the route's response schema writes it (a field it did not name would be lost).
      expect(res.body).toEqual({
        success: true,
        data: {
          user: { id: u.id, phone: u.phone, name: 'Meena', createdAt: expect.any(String) },
          memberships: [{ orgId: org.id, role: 'OWNER', orgName: 'Meena Transport' }],
        },
      });
      expect(Date.parse(res.body.data.user.createdAt)).toBeGreaterThan(Date.now() - 60_000);
      expect(res.body.data.memberships).toEqual([{ orgId: org.id, role: 'OWNER', orgName: 'Meena Transport' }]);
    });

    it('GET /me lists memberships oldest first, with the stored creation time', async () => {
      const u = await newUser(t.api, 'Ravi');
      const first = await newOrg(t.api, u, 'Ravi Roadways');
      const second = await newOrg(t.api, u, 'Ravi Cargo');
      const res = await t.api.get('/me', { token: u.accessToken });
      expect(res.status).toBe(200);
      expect(res.body.data.memberships).toEqual([
        { orgId: first.id, role: 'OWNER', orgName: 'Ravi Roadways' },
        { orgId: second.id, role: 'OWNER', orgName: 'Ravi Cargo' },
      ]);
      const [row] = (await t.sql.query('SELECT created_at FROM users WHERE id = $1', [u.id])).rows;
      expect(res.body.data.user.createdAt).toBe((row.created_at as Date).toISOString());
    });

    it('GET /me of a user that no longer exists is 404', async () => {
      const u = await newUser(t.api, 'Gone');
      await t.sql.query('DELETE FROM users WHERE id = $1', [u.id]);
      const res = await t.api.get('/me', { token: u.accessToken });
      expect(res.status).toBe(404);
    });
  });

  describe('refresh tokens', () => {
    it('rotate on use: the new pair works, the old refresh token does not', async () => {
      const u = await newUser(t.api);
      const first = await t.api.post('/auth/refresh', { refreshToken: u.refreshToken });
      expect(first.status).toBe(200);
      const { accessToken, refreshToken } = first.body.data;
      expect(refreshToken).not.toBe(u.refreshToken);
      expect((await t.api.get('/me', { token: accessToken })).status).toBe(200);
      const second = await t.api.post('/auth/refresh', { refreshToken });
      expect(second.status).toBe(200);
    });

    it('a reused refresh token revokes the whole family', async () => {
      const u = await newUser(t.api);
      const rotated = await t.api.post('/auth/refresh', { refreshToken: u.refreshToken });
      const latest = rotated.body.data.refreshToken;
      const latestAccess = rotated.body.data.accessToken;

      const replay = await t.api.post('/auth/refresh', { refreshToken: u.refreshToken });
      expect(replay.status).toBe(401);
      expect(replay.body.error.code).toBe('REFRESH_TOKEN_REUSED');

      // The legitimate latest token is dead too, and so are the family's access tokens.
      const afterRevoke = await t.api.post('/auth/refresh', { refreshToken: latest });
      expect(afterRevoke.status).toBe(401);
      expect((await t.api.get('/me', { token: latestAccess })).status).toBe(401);
      const fam = await t.sql.query(
        `SELECT count(*)::int AS n FROM refresh_token_families WHERE user_id = $1 AND revoked_at IS NOT NULL`,
        [u.id],
      );
      expect(fam.rows[0].n).toBe(1);

      // Another login of the same user is unaffected.
      const again = await t.api.post('/auth/login', { phone: u.phone, password: u.password });
      expect((await t.api.get('/me', { token: again.body.data.accessToken })).status).toBe(200);
    });

    it('two concurrent refreshes with one token: at most one succeeds', async () => {
      const u = await newUser(t.api);
      const results = await Promise.all(
        [1, 2, 3].map(() => t.api.post('/auth/refresh', { refreshToken: u.refreshToken })),
      );
      expect(results.filter((r) => r.status === 200).length).toBeLessThanOrEqual(1);
      expect(results.filter((r) => r.status === 401).length).toBeGreaterThanOrEqual(2);
    });

    it('an unknown refresh token is 401', async () => {
      const res = await t.api.post('/auth/refresh', { refreshToken: 'nope' });
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('INVALID_TOKEN');
    });

    it('an expired refresh token is 401 TOKEN_EXPIRED', async () => {
      const u = await newUser(t.api);
      await t.sql.query(
        `UPDATE refresh_tokens SET expires_at = now() - interval '1 minute'
         WHERE family_id IN (SELECT id FROM refresh_token_families WHERE user_id = $1)`,
        [u.id],
      );
      const res = await t.api.post('/auth/refresh', { refreshToken: u.refreshToken });
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('TOKEN_EXPIRED');
    });
  });

  describe('logout', () => {
    it('ends the session: 204, then the refresh and access tokens stop working', async () => {
      const u = await newUser(t.api);
      const res = await t.api.post('/auth/logout', { refreshToken: u.refreshToken });
      expect(res.status).toBe(204);
      expect(res.body).toBeUndefined();
      expect((await t.api.post('/auth/refresh', { refreshToken: u.refreshToken })).status).toBe(401);
      expect((await t.api.get('/me', { token: u.accessToken })).status).toBe(401);
      // Idempotent.
      expect((await t.api.post('/auth/logout', { refreshToken: u.refreshToken })).status).toBe(204);
    });
  });

  describe('revoked sessions on every node', () => {
    const sessionOf = (accessToken: string): string =>
      JSON.parse(Buffer.from(accessToken.split('.')[1], 'base64url').toString()).sid;

    it('a logout on one node is refused by another node, which answers from its own copy', async () => {
      const other = await startAnotherNode(t);
      try {
        const otherApi = new (t.api.constructor as new (base: string) => typeof t.api)(`${other.url}/api/v1`);
        const otherRevocations = other.app.get(SessionRevocations);
        await until('the second node to load the list', async () => otherRevocations.usingLocalCopy);
        const u = await newUser(t.api);
        expect((await otherApi.get('/me', { token: u.accessToken })).status).toBe(200);

        expect((await t.api.post('/auth/logout', { refreshToken: u.refreshToken })).status).toBe(204);
        // The node that revoked refuses at once; the other as soon as the published change arrives.
        expect((await t.api.get('/me', { token: u.accessToken })).status).toBe(401);
        await until(
          'the other node to refuse',
          async () => (await otherApi.get('/me', { token: u.accessToken })).status === 401,
        );
        expect(otherRevocations.usingLocalCopy).toBe(true);
        // Other sessions of the same user are not touched.
        const again = await t.api.post('/auth/login', { phone: u.phone, password: u.password });
        expect((await otherApi.get('/me', { token: again.body.data.accessToken })).status).toBe(200);
      } finally {
        await other.close();
      }
    });

    it('a change missed while the subscription was down is loaded when it comes back', async () => {
      const revocations = t.app.get(SessionRevocations);
      await until('the list to load', async () => revocations.usingLocalCopy);
      const u = await newUser(t.api);
      expect((await t.api.get('/me', { token: u.accessToken })).status).toBe(200);

      const redis = new Redis(t.config.redisUrl);
      try {
        // Stored as another node's revoke does, but never published: this node's copy cannot know of it.
        const sid = sessionOf(u.accessToken);
        await redis
          .multi()
          .set(`${t.config.redisKeyPrefix}revoked-session:${sid}`, '1', 'EX', 60)
          .zadd(`${t.config.redisKeyPrefix}revoked-sessions`, Date.now() + 60_000, sid)
          .exec();
        // Drop this node's subscriber connection (and only it); it reconnects and reloads the list.
        const clients = (await redis.client('LIST')) as string;
        const id = clients
          .split('\n')
          .find((line) => line.includes(` name=${t.config.redisKeyPrefix}bus `))
          ?.match(/^id=(\d+)/)?.[1];
        expect(id).toBeDefined();
        await redis.client('KILL', 'ID', id!);
        await until(
          'the token to be refused',
          async () => (await t.api.get('/me', { token: u.accessToken })).status === 401,
        );
        await until('the copy to be in use again', async () => revocations.usingLocalCopy);
        expect((await t.api.get('/me', { token: u.accessToken })).status).toBe(401);
      } finally {
        redis.disconnect();
      }
    });
  });
});
