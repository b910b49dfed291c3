import { newMember, newOrg, newUser } from '../support/factories';
import { startTestApp, TestApp } from '../support/test-app';

describe('orgs, members, trucks, drivers', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  describe('orgs', () => {
    it('creating an org makes the caller its OWNER', async () => {
      const owner = await newUser(t.api);
      const res = await t.api.post('/orgs', { name: 'Gupta Logistics', city: 'Indore' }, { token: owner.accessToken });
      expect(res.status).toBe(201);
      expect(res.body.data).toMatchObject({ name: 'Gupta Logistics', city: 'Indore' });
      const me = await t.api.get('/me', { token: owner.accessToken });
      expect(me.body.data.memberships).toEqual([
        { orgId: res.body.data.id, role: 'OWNER', orgName: 'Gupta Logistics' },
      ]);
    });

    it('validates the body', async () => {
      const owner = await newUser(t.api);
      const res = await t.api.post('/orgs', { name: '' }, { token: owner.accessToken });
      expect(res.status).toBe(400);
      expect(res.body.error.details[0].path).toBe('name');
    });

    it('members read the org; outsiders get 404 as if it did not exist', async () => {
      const org = await newOrg(t.api);
      const staff = await newMember(t.api, org, 'STAFF');
      const outsider = await newUser(t.api);
      expect((await t.api.get(`/orgs/${org.id}`, { token: staff.accessToken })).status).toBe(200);
      const res = await t.api.get(`/orgs/${org.id}`, { token: outsider.accessToken });
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('NOT_FOUND');
      const missing = await t.api.get(`/orgs/0192a2b4-0000-7000-8000-000000000000`, { token: outsider.accessToken });
      expect(missing.status).toBe(404);
      expect(missing.body.error).toEqual({ ...res.body.error, requestId: missing.body.error.requestId });
    });

    it('a malformed org id is a 400', async () => {
      const u = await newUser(t.api);
      const res = await t.api.get(`/orgs/not-a-uuid`, { token: u.accessToken });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
    });

    it('OWNER and ADMIN may PATCH; STAFF gets 403; outsiders 404', async () => {
      const org = await newOrg(t.api);
      const admin = await newMember(t.api, org, 'ADMIN');
      const staff = await newMember(t.api, org, 'STAFF');
      const outsider = await newUser(t.api);
      const ok = await t.api.patch(`/orgs/${org.id}`, { city: 'Kota' }, { token: admin.accessToken });
      expect(ok.status).toBe(200);
      expect(ok.body.data.city).toBe('Kota');
      const denied = await t.api.patch(`/orgs/${org.id}`, { name: 'Hijacked' }, { token: staff.accessToken });
      expect(denied.status).toBe(403);
      expect(denied.body.error.code).toBe('FORBIDDEN');
      expect((await t.api.patch(`/orgs/${org.id}`, { name: 'X' }, { token: outsider.accessToken })).status).toBe(404);
      const empty = await t.api.patch(`/orgs/${org.id}`, {}, { token: admin.accessToken });
      expect(empty.status).toBe(400);
      const row = await t.sql.query('SELECT name, city FROM orgs WHERE id = $1', [org.id]);
      expect(row.rows[0]).toEqual({ name: org.name, city: 'Kota' });
    });
  });

  describe('members', () => {
    it('an owner adds members by phone; all members can list them', async () => {
      const org = await newOrg(t.api);
      const accountant = await newUser(t.api, 'Asha');
      const add = await t.api.post(
        `/orgs/${org.id}/members`,
        { phone: accountant.phone, role: 'ACCOUNTANT' },
        { token: org.owner.accessToken },
      );
      expect(add.status).toBe(201);
      expect(add.body.data).toMatchObject({
        orgId: org.id,
        userId: accountant.id,
        role: 'ACCOUNTANT',
        user: { name: 'Asha' },
      });
      const list = await t.api.get(`/orgs/${org.id}/members`, { token: accountant.accessToken });
      expect(list.status).toBe(200);
      expect(list.body.data.map((m: { userId: string }) => m.userId).sort()).toEqual(
        [org.owner.id, accountant.id].sort(),
      );
      expect(list.body.meta).toEqual({ nextCursor: null });
    });

    it('STAFF can read but not manage members', async () => {
      const org = await newOrg(t.api);
      const staff = await newMember(t.api, org, 'STAFF');
      const other = await newUser(t.api);
      expect((await t.api.get(`/orgs/${org.id}/members`, { token: staff.accessToken })).status).toBe(200);
      const res = await t.api.post(
        `/orgs/${org.id}/members`,
        { phone: other.phone, role: 'STAFF' },
        { token: staff.accessToken },
      );
      expect(res.status).toBe(403);
    });

    it('an ADMIN cannot make someone OWNER', async () => {
      const org = await newOrg(t.api);
      const admin = await newMember(t.api, org, 'ADMIN');
      const other = await newUser(t.api);
      const res = await t.api.post(
        `/orgs/${org.id}/members`,
        { phone: other.phone, role: 'OWNER' },
        { token: admin.accessToken },
      );
      expect(res.status).toBe(403);
    });

    it('unknown phone is 422, duplicate member 409, bad role 400', async () => {
      const org = await newOrg(t.api);
      const tok = { token: org.owner.accessToken };
      const unknown = await t.api.post(`/orgs/${org.id}/members`, { phone: '+919999999999', role: 'STAFF' }, tok);
      expect(unknown.status).toBe(422);
      expect(unknown.body.error.code).toBe('USER_NOT_FOUND');
      const dup = await t.api.post(`/orgs/${org.id}/members`, { phone: org.owner.phone, role: 'STAFF' }, tok);
      expect(dup.status).toBe(409);
      expect(dup.body.error.code).toBe('ALREADY_MEMBER');
      const badRole = await t.api.post(`/orgs/${org.id}/members`, { phone: org.owner.phone, role: 'KING' }, tok);
      expect(badRole.status).toBe(400);
    });

    it('roles change and members leave; the last owner stays', async () => {
      const org = await newOrg(t.api);
      const staff = await newMember(t.api, org, 'STAFF');
      const tok = { token: org.owner.accessToken };
      const promoted = await t.api.patch(`/orgs/${org.id}/members/${staff.id}`, { role: 'ADMIN' }, tok);
      expect(promoted.status).toBe(200);
      expect(promoted.body.data.role).toBe('ADMIN');
      const demoteSelf = await t.api.patch(`/orgs/${org.id}/members/${org.owner.id}`, { role: 'STAFF' }, tok);
      expect(demoteSelf.status).toBe(409);
      const leaveLast = await t.api.delete(`/orgs/${org.id}/members/${org.owner.id}`, tok);
      expect(leaveLast.status).toBe(409);
      const removed = await t.api.delete(`/orgs/${org.id}/members/${staff.id}`, tok);
      expect(removed.status).toBe(204);
      expect((await t.api.get(`/orgs/${org.id}`, { token: staff.accessToken })).status).toBe(404);
    });

    it('paginates members with an opaque cursor, newest first, no overlap', async () => {
      const org = await newOrg(t.api);
      for (let i = 0; i < 4; i++) await newMember(t.api, org, 'STAFF');
      const tok = { token: org.owner.accessToken };
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const q: string = cursor ? `?limit=2&cursor=${encodeURIComponent(cursor)}` : '?limit=2';
        const res = await t.api.get(`/orgs/${org.id}/members${q}`, tok);
        expect(res.status).toBe(200);
        expect(res.body.data.length).toBeLessThanOrEqual(2);
        seen.push(...res.body.data.map((m: { id: string }) => m.id));
        cursor = res.body.meta.nextCursor;
        pages += 1;
      } while (cursor && pages < 10);
      expect(seen).toHaveLength(5);
      expect(new Set(seen).size).toBe(5);
      const all = await t.sql.query('SELECT id FROM memberships WHERE org_id = $1 ORDER BY created_at DESC, id DESC', [
        org.id,
      ]);
      expect(seen).toEqual(all.rows.map((r) => r.id));
    });

    it('rejects a tampered cursor and an out-of-range limit', async () => {
      const org = await newOrg(t.api);
      const tok = { token: org.owner.accessToken };
      expect((await t.api.get(`/orgs/${org.id}/members?cursor=garbage`, tok)).status).toBe(400);
      expect((await t.api.get(`/orgs/${org.id}/members?limit=101`, tok)).status).toBe(400);
      expect((await t.api.get(`/orgs/${org.id}/members?limit=0`, tok)).status).toBe(400);
      expect((await t.api.get(`/orgs/${org.id}/members?sort=name`, tok)).status).toBe(400);
    });
  });

  describe('trucks', () => {
    it('managers add trucks; numbers are unique per org after normalising', async () => {
      const org = await newOrg(t.api);
      const tok = { token: org.owner.accessToken };
      const res = await t.api.post(
        `/orgs/${org.id}/trucks`,
        { number: 'rj14 ga  1234', type: 'TRAILER', capacityKg: 25000 },
        tok,
      );
      expect(res.status).toBe(201);
      expect(res.body.data).toMatchObject({
        orgId: org.id,
        number: 'RJ14 GA 1234',
        type: 'TRAILER',
        capacityKg: 25000,
      });
      const dup = await t.api.post(`/orgs/${org.id}/trucks`, { number: 'RJ14 GA 1234' }, tok);
      expect(dup.status).toBe(409);
      // Another org may have the same number.
      const other = await newOrg(t.api);
      const ok = await t.api.post(
        `/orgs/${other.id}/trucks`,
        { number: 'RJ14 GA 1234' },
        { token: other.owner.accessToken },
      );
      expect(ok.status).toBe(201);
      const list = await t.api.get(`/orgs/${org.id}/trucks`, tok);
      expect(list.body.data).toHaveLength(1);
    });

    it('validates capacity and refuses STAFF and outsiders', async () => {
      const org = await newOrg(t.api);
      const staff = await newMember(t.api, org, 'STAFF');
      const outsider = await newUser(t.api);
      const bad = await t.api.post(
        `/orgs/${org.id}/trucks`,
        { number: 'X1', capacityKg: -5 },
        { token: org.owner.accessToken },
      );
      expect(bad.status).toBe(400);
      expect(bad.body.error.details[0].path).toBe('capacityKg');
      expect((await t.api.post(`/orgs/${org.id}/trucks`, { number: 'X1' }, { token: staff.accessToken })).status).toBe(
        403,
      );
      expect(
        (await t.api.post(`/orgs/${org.id}/trucks`, { number: 'X1' }, { token: outsider.accessToken })).status,
      ).toBe(404);
      expect((await t.api.get(`/orgs/${org.id}/trucks`, { token: outsider.accessToken })).status).toBe(404);
      expect((await t.api.get(`/orgs/${org.id}/trucks`, { token: staff.accessToken })).status).toBe(200);
    });

    it('Idempotency-Key: a retry returns the first truck; another body is 409', async () => {
      const org = await newOrg(t.api);
      const headers = { 'Idempotency-Key': 'truck-create-1' };
      const tok = { token: org.owner.accessToken, headers };
      const first = await t.api.post(`/orgs/${org.id}/trucks`, { number: 'MH12 AB 1' }, tok);
      const again = await t.api.post(`/orgs/${org.id}/trucks`, { number: 'MH12 AB 1' }, tok);
      expect(first.status).toBe(201);
      expect(again.status).toBe(201);
      expect(again.body.data).toEqual(first.body.data);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      const different = await t.api.post(`/orgs/${org.id}/trucks`, { number: 'MH12 AB 2' }, tok);
      expect(different.status).toBe(409);
      expect(different.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
      const count = await t.sql.query('SELECT count(*)::int AS n FROM trucks WHERE org_id = $1', [org.id]);
      expect(count.rows[0].n).toBe(1);
    });

    it('Idempotency-Key: concurrent requests with one key create one truck', async () => {
      const org = await newOrg(t.api);
      const tok = { token: org.owner.accessToken, headers: { 'Idempotency-Key': 'concurrent-1' } };
      const results = await Promise.all(
        Array.from({ length: 8 }, () => t.api.post(`/orgs/${org.id}/trucks`, { number: 'DL1 C 777' }, tok)),
      );
      expect(results.map((r) => r.status)).toEqual(Array(8).fill(201));
      expect(new Set(results.map((r) => r.body.data.id)).size).toBe(1);
      const count = await t.sql.query('SELECT count(*)::int AS n FROM trucks WHERE org_id = $1', [org.id]);
      expect(count.rows[0].n).toBe(1);
    });

    it('Idempotency-Key: a failed first request does not pin its error', async () => {
      const org = await newOrg(t.api);
      const staff = await newMember(t.api, org, 'STAFF');
      const headers = { 'Idempotency-Key': 'retry-after-error' };
      const denied = await t.api.post(
        `/orgs/${org.id}/trucks`,
        { number: 'UP1' },
        { token: staff.accessToken, headers },
      );
      expect(denied.status).toBe(403);
      const ok = await t.api.post(
        `/orgs/${org.id}/trucks`,
        { number: 'UP1' },
        { token: org.owner.accessToken, headers },
      );
      expect(ok.status).toBe(201);
    });
  });

  describe('drivers', () => {
    it('registers an existing user as a driver, making them a DRIVER member', async () => {
      const org = await newOrg(t.api);
      const driverUser = await newUser(t.api, 'Raju');
      const res = await t.api.post(
        `/orgs/${org.id}/drivers`,
        { phone: driverUser.phone, licenseNo: 'RJ-0420110012345', deviceId: 'dev-raju-1' },
        { token: org.owner.accessToken },
      );
      expect(res.status).toBe(201);
      expect(res.body.data).toMatchObject({
        orgId: org.id,
        userId: driverUser.id,
        name: 'Raju',
        phone: driverUser.phone,
        licenseNo: 'RJ-0420110012345',
        deviceId: 'dev-raju-1',
      });
      const me = await t.api.get('/me', { token: driverUser.accessToken });
      expect(me.body.data.memberships).toEqual([expect.objectContaining({ orgId: org.id, role: 'DRIVER' })]);
      const list = await t.api.get(`/orgs/${org.id}/drivers`, { token: org.owner.accessToken });
      expect(list.body.data.map((d: { userId: string }) => d.userId)).toEqual([driverUser.id]);
    });

    it('user must exist (422); deviceId unique across orgs (409); twice in one org 409', async () => {
      const org = await newOrg(t.api);
      const tok = { token: org.owner.accessToken };
      const missing = await t.api.post(`/orgs/${org.id}/drivers`, { phone: '+919999999998' }, tok);
      expect(missing.status).toBe(422);
      const d = await newUser(t.api);
      expect((await t.api.post(`/orgs/${org.id}/drivers`, { phone: d.phone, deviceId: 'dev-x' }, tok)).status).toBe(
        201,
      );
      const again = await t.api.post(`/orgs/${org.id}/drivers`, { phone: d.phone }, tok);
      expect(again.status).toBe(409);
      const other = await newOrg(t.api);
      const d2 = await newUser(t.api);
      const taken = await t.api.post(
        `/orgs/${other.id}/drivers`,
        { phone: d2.phone, deviceId: 'dev-x' },
        { token: other.owner.accessToken },
      );
      expect(taken.status).toBe(409);
      expect(taken.body.error.details[0].path).toBe('deviceId');
      // The failed attempt changed nothing: d2 did not become a member of `other`.
      const m = await t.sql.query('SELECT count(*)::int AS n FROM memberships WHERE org_id = $1 AND user_id = $2', [
        other.id,
        d2.id,
      ]);
      expect(m.rows[0].n).toBe(0);
    });

    it('leaving the org ends the driver profile (kept, marked removed, device freed); adding them again resumes it', async () => {
      const org = await newOrg(t.api);
      const tok = { token: org.owner.accessToken };
      const d = await newUser(t.api);
      const deviceId = `dev-${d.id}`;
      const added = await t.api.post(`/orgs/${org.id}/drivers`, { phone: d.phone, deviceId }, tok);
      expect(added.status).toBe(201);
      expect((await t.api.delete(`/orgs/${org.id}/members/${d.id}`, tok)).status).toBe(204);
      const row = await t.sql.query('SELECT removed_at, device_id FROM driver_profiles WHERE id = $1', [
        added.body.data.id,
      ]);
      expect(row.rows[0]).toEqual({ removed_at: expect.any(Date), device_id: null });
      expect((await t.api.get(`/orgs/${org.id}/drivers`, tok)).body.data).toEqual([]);
      // The freed device id can go to another driver; the same user comes back as the same profile.
      const other = await newUser(t.api);
      expect((await t.api.post(`/orgs/${org.id}/drivers`, { phone: other.phone, deviceId }, tok)).status).toBe(201);
      const back = await t.api.post(`/orgs/${org.id}/drivers`, { phone: d.phone, licenseNo: 'RJ-1' }, tok);
      expect(back.status).toBe(201);
      expect(back.body.data).toMatchObject({ id: added.body.data.id, licenseNo: 'RJ-1', deviceId: null });
      const list = await t.api.get(`/orgs/${org.id}/drivers`, tok);
      expect(list.body.data.map((x: { userId: string }) => x.userId).sort()).toEqual([d.id, other.id].sort());
    });

    it('a role change keeps the driver profile', async () => {
      const org = await newOrg(t.api);
      const tok = { token: org.owner.accessToken };
      const d = await newUser(t.api);
      expect((await t.api.post(`/orgs/${org.id}/drivers`, { phone: d.phone }, tok)).status).toBe(201);
      expect((await t.api.patch(`/orgs/${org.id}/members/${d.id}`, { role: 'STAFF' }, tok)).status).toBe(200);
      const list = await t.api.get(`/orgs/${org.id}/drivers`, tok);
      expect(list.body.data.map((x: { userId: string }) => x.userId)).toEqual([d.id]);
    });

    it('STAFF cannot add drivers', async () => {
      const org = await newOrg(t.api);
      const staff = await newMember(t.api, org, 'STAFF');
      const d = await newUser(t.api);
      expect(
        (await t.api.post(`/orgs/${org.id}/drivers`, { phone: d.phone }, { token: staff.accessToken })).status,
      ).toBe(403);
    });
  });
});
