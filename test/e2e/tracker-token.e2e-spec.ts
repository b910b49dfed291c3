import { createHash } from 'node:crypto';
import { newMember, newOrg } from '../support/factories';
import { AppNode, startAnotherNode } from '../support/socket-client';
import { startTestApp, TestApp } from '../support/test-app';
import { activeTrip, moveTo, newDriver, newWorld, TripWorld } from '../support/trips-fixtures';

const UNKNOWN_LIMIT = 3;
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

describe('tracker tokens (the OsmAnd credential)', () => {
  let t: TestApp;
  /** Every log line the app writes, at every level. */
  const logLines: string[] = [];
  beforeAll(async () => {
    t = await startTestApp({ osmandUnknownTokenLimitPerMinute: UNKNOWN_LIMIT, logLevel: 'trace', trustProxy: 1 }, undefined, {
      write: (line: string) => void logLines.push(line),
    });
  });
  afterAll(() => t.close());

  /** Each test sends from its own client address (the app trusts one proxy hop, so X-Forwarded-For names it), so the limiter's counts stay apart. */
  let addressSeq = 0;
  const newAddress = () => `127.0.9.${++addressSeq}`;

  const osmand = (
    params: Record<string, string>,
    address: string,
    opts: { url?: string; method?: string; json?: unknown } = {},
  ) =>
    fetch(`${opts.url ?? t.url}/api/v1/tracking/osmand?${new URLSearchParams(params)}`, {
      method: opts.method ?? 'GET',
      headers: {
        'x-forwarded-for': address,
        ...(opts.json === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: opts.json === undefined ? undefined : JSON.stringify(opts.json),
    });
  const fix = (token: string, s = 0) => ({
    id: token,
    lat: String(26.9 + s * 0.0001),
    lon: '75.8',
    timestamp: String(Math.floor(Date.now() / 1000) - 600 + s),
  });

  async function tripWorld(): Promise<{ w: TripWorld; tripId: string }> {
    const w = await newWorld(t.api);
    const tripId = (await activeTrip(t.api, w)).id as string;
    await t.sql.query(`UPDATE trips SET created_at = now() - interval '2 hours' WHERE id = $1`, [tripId]);
    return { w, tripId };
  }
  const stored = async (tripId: string) =>
    (await t.sql.query(`SELECT count(*)::int AS n FROM trip_pings WHERE trip_id = $1`, [tripId])).rows[0].n as number;

  it('is returned by the driver create only, stored as its SHA-256, and in no read', async () => {
    const { w, tripId } = await tripWorld();
    expect(w.trackerToken).toMatch(/^[A-Za-z0-9_-]{32,}$/);
    expect(Buffer.from(w.trackerToken, 'base64url').length).toBeGreaterThanOrEqual(16);

    const row = (await t.sql.query(`SELECT * FROM driver_profiles WHERE id = $1`, [w.driverId])).rows[0];
    expect(row.tracker_token_hash).toBe(sha256(w.trackerToken));
    expect(JSON.stringify(row)).not.toContain(w.trackerToken);

    const owner = { token: w.source.owner.accessToken };
    const reads = [
      await t.api.get(`/orgs/${w.source.id}/drivers`, owner),
      await t.api.get(`/trips/${tripId}`, owner),
      await t.api.get(`/trips/${tripId}?fields=id,driver`, owner),
      await t.api.get(`/trips?fields=id,driver`, owner),
      await t.api.get(`/trips/${tripId}?fields=driver.deviceId`, owner),
    ];
    for (const r of reads) {
      expect(r.status).toBe(200);
      const text = JSON.stringify(r.body);
      expect(text).not.toContain(w.trackerToken);
      expect(text).not.toContain(sha256(w.trackerToken));
      expect(text).not.toMatch(/trackerToken|tokenHash/i);
    }
    for (const field of ['driver.trackerToken', 'driver.trackerTokenHash', 'trackerToken']) {
      expect((await t.api.get(`/trips/${tripId}?fields=${field}`, owner)).status).toBe(400);
    }
  });

  it('OsmAnd takes the token (stored, 200) and never the deviceId (404)', async () => {
    const { w, tripId } = await tripWorld();
    const address = newAddress();
    expect((await osmand(fix(w.deviceId), address)).status).toBe(404);
    expect((await osmand({ ...fix(w.deviceId), id: '', deviceid: w.deviceId }, address)).status).toBe(404);
    expect(await stored(tripId)).toBe(0);
    const ok = await osmand(fix(w.trackerToken), address);
    expect(ok.status).toBe(200);
    expect(await stored(tripId)).toBe(1);
    // The JSON form's device_id carries the token too.
    const json = await osmand({}, address, {
      method: 'POST',
      json: {
        device_id: w.trackerToken,
        location: {
          timestamp: new Date(Date.now() - 60_000).toISOString(),
          coords: { latitude: 26.91, longitude: 75.8 },
        },
      },
    });
    expect(json.status).toBe(200);
    expect(await stored(tripId)).toBe(2);
  });

  it('rotation: the old token is a 404 at once, on every node; the new one works', async () => {
    const { w, tripId } = await tripWorld();
    const other: AppNode = await startAnotherNode(t, { logLevel: 'silent' });
    try {
      const address = newAddress();
      // Both nodes have looked the token up (and remember its trip) before the rotation.
      expect((await osmand(fix(w.trackerToken, 0), address)).status).toBe(200);
      expect((await osmand(fix(w.trackerToken, 1), address, { url: other.url })).status).toBe(200);
      const rotated = await t.api.post(`/orgs/${w.source.id}/drivers/${w.driverId}/tracker-token`, undefined, {
        token: w.source.owner.accessToken,
      });
      expect(rotated.status).toBe(201);
      const fresh = rotated.body.data.trackerToken as string;
      expect(Object.keys(rotated.body.data)).toEqual(['trackerToken']);
      expect(fresh).not.toBe(w.trackerToken);
      expect((await osmand(fix(w.trackerToken, 2), address, { url: other.url })).status).toBe(404);
      expect((await osmand(fix(w.trackerToken, 3), address)).status).toBe(404);
      expect((await osmand(fix(fresh, 4), address, { url: other.url })).status).toBe(200);
      expect((await osmand(fix(fresh, 5), address)).status).toBe(200);
      expect(await stored(tripId)).toBe(4);
    } finally {
      await other.close();
    }
  });

  it("a remembered token follows its driver's trips at once, on every node", async () => {
    const { w, tripId } = await tripWorld();
    const other: AppNode = await startAnotherNode(t, { logLevel: 'silent' });
    try {
      const address = newAddress();
      const code = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;
      expect((await osmand(fix(w.trackerToken, 0), address)).status).toBe(200);
      expect((await osmand(fix(w.trackerToken, 1), address, { url: other.url })).status).toBe(200);
      // The trip ends (on this node): neither node files fixes into it any more.
      await moveTo(t.api, w, tripId, 'CANCELLED');
      for (const url of [t.url, other.url]) {
        const res = await osmand(fix(w.trackerToken, 2), address, { url });
        expect(res.status).toBe(409);
        expect(await code(res)).toBe('NO_ACTIVE_TRIP');
      }
      // The driver's next trip becomes active: both nodes file the next fixes into it.
      const next = (await activeTrip(t.api, w)).id as string;
      await t.sql.query(`UPDATE trips SET created_at = now() - interval '2 hours' WHERE id = $1`, [next]);
      expect((await osmand(fix(w.trackerToken, 3), address)).status).toBe(200);
      expect((await osmand(fix(w.trackerToken, 4), address, { url: other.url })).status).toBe(200);
      expect(await stored(tripId)).toBe(2);
      expect(await stored(next)).toBe(2);
    } finally {
      await other.close();
    }
  });

  it('OWNER, ADMIN and the driver may rotate; STAFF and other drivers 403; another org or driver 404', async () => {
    const w = await newWorld(t.api);
    const path = (orgId = w.source.id, driverId = w.driverId) => `/orgs/${orgId}/drivers/${driverId}/tracker-token`;
    const rotate = async (token: string, p = path()) => (await t.api.post(p, undefined, { token })).status;
    const admin = await newMember(t.api, w.source, 'ADMIN');
    const staff = await newMember(t.api, w.source, 'STAFF');
    const otherDriver = await newDriver(t.api, w.source);
    expect(await rotate(w.source.owner.accessToken)).toBe(201);
    expect(await rotate(admin.accessToken)).toBe(201);
    expect(await rotate(w.driver.accessToken)).toBe(201);
    expect(await rotate(staff.accessToken)).toBe(403);
    expect(await rotate(otherDriver.user.accessToken)).toBe(403);
    // The trip's other org, an unrelated org, a driver of another org named under this one.
    expect(await rotate(w.destination.owner.accessToken)).toBe(404);
    const stranger = await newOrg(t.api);
    expect(await rotate(stranger.owner.accessToken)).toBe(404);
    const strangersDriver = await newDriver(t.api, stranger);
    expect(await rotate(w.source.owner.accessToken, path(w.source.id, strangersDriver.driverId))).toBe(404);
    expect(await rotate(w.source.owner.accessToken, path(w.source.id, '0190a000-0000-7000-8000-000000000000'))).toBe(
      404,
    );
    // The token issued by the last successful rotation (the driver's own) is the one that works.
    const last = await t.api.post(path(), undefined, { token: w.driver.accessToken });
    const tripId = (await activeTrip(t.api, w)).id as string;
    await t.sql.query(`UPDATE trips SET created_at = now() - interval '2 hours' WHERE id = $1`, [tripId]);
    expect((await osmand(fix(last.body.data.trackerToken), newAddress())).status).toBe(200);
    expect((await osmand(fix(w.trackerToken), newAddress())).status).toBe(404);
  });

  it('unknown tokens: the same 404 whatever was sent, then 429 with Retry-After past the limit, on every node', async () => {
    const { w } = await tripWorld();
    const address = newAddress();
    const tries = [
      () => osmand(fix('no-such-token'), address),
      () => osmand({ lat: '26.9', lon: '75.8' }, address),
      () => osmand({ id: w.deviceId }, address, { method: 'POST' }),
    ];
    expect(tries).toHaveLength(UNKNOWN_LIMIT);
    const errors: unknown[] = [];
    for (const send of tries) {
      const res = await send();
      expect(res.status).toBe(404);
      const body = (await res.json()) as { error: { code: string; message: string } };
      errors.push({ code: body.error.code, message: body.error.message });
    }
    expect(new Set(errors.map((e) => JSON.stringify(e))).size).toBe(1);

    const limited = await osmand(fix('another-guess'), address);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe('RATE_LIMITED');
    // Past the limit the address learns nothing more, even with a real token.
    expect((await osmand(fix(w.trackerToken), address)).status).toBe(429);
    // The count is shared through Redis: another node refuses the next guess too.
    const other = await startAnotherNode(t, { logLevel: 'silent' });
    try {
      expect((await osmand(fix('guess-elsewhere'), address, { url: other.url })).status).toBe(429);
    } finally {
      await other.close();
    }
    // Another address is not affected.
    expect((await osmand(fix('no-such-token'), newAddress())).status).toBe(404);
    expect((await osmand(fix(w.trackerToken), newAddress())).status).toBe(200);
  });

  it('the token never reaches a log line, even when the request fails with a 5xx', async () => {
    const { w } = await tripWorld();
    const address = newAddress();
    const from = logLines.length;
    // First, before this node has looked the token up (it remembers a found driver's trip).
    await t.sql.query(`ALTER TABLE driver_profiles RENAME COLUMN tracker_token_hash TO tracker_token_hash_gone`);
    try {
      const failed = await osmand(fix(w.trackerToken, 10), address);
      expect(failed.status).toBeGreaterThanOrEqual(500);
    } finally {
      await t.sql.query(`ALTER TABLE driver_profiles RENAME COLUMN tracker_token_hash_gone TO tracker_token_hash`);
    }
    expect((await osmand(fix(w.trackerToken, 11), address)).status).toBe(200);
    const lines = logLines.slice(from).join('');
    // The failure was logged, with the path but not the query string.
    expect(lines).toContain('/api/v1/tracking/osmand?[redacted]');
    expect(lines).not.toContain(w.trackerToken);
    expect(lines).not.toContain(encodeURIComponent(w.trackerToken));
  });
});
