import { Client } from 'pg';
import { Cache } from '../../src/infra/cache/cache';
import { DEFAULT_TRIP_FIELDS } from '../../src/modules/trips/trip-fields';
import { newMember, newOrg, newUser, TestOrg, TestUser } from '../support/factories';
import { until } from '../support/net';
import { Scrape } from '../support/prometheus';
import { AppNode, PrivateRedis, startAnotherNode } from '../support/socket-client';
import { activeTrip, moveTo, newTrip, newWorld, TripWorld } from '../support/trips-fixtures';
import { Api, startTestApp, TestApp } from '../support/test-app';

jest.setTimeout(120_000);

const auth = (u: TestUser, headers?: Record<string, string>) => ({ token: u.accessToken, headers });

/** A loader that runs one real query (slow enough for concurrent gets to overlap) and counts its runs. */
function countingLoader(sql: Client) {
  const loader = {
    runs: 0,
    load: async (): Promise<{ run: number; at: Date }> => {
      loader.runs += 1;
      const run = loader.runs;
      await sql.query('SELECT pg_sleep(0.2)');
      return { run, at: new Date() };
    },
  };
  return loader;
}

describe('Cache', () => {
  let t: TestApp;
  let b: AppNode;
  /** /api/v1 of the second node. */
  let apiB: Api;
  let cacheA: Cache;
  let cacheB: Cache;

  beforeAll(async () => {
    t = await startTestApp();
    b = await startAnotherNode(t);
    apiB = new Api(`${b.url}/api/v1`);
    cacheA = t.app.get(Cache);
    cacheB = b.app.get(Cache);
  });
  afterAll(async () => {
    await b?.close();
    await t?.close();
  });

  describe('get-or-load', () => {
    it('loads a cold key once for many concurrent gets on one node (single flight)', async () => {
      const loader = countingLoader(t.sql);
      const cache = cacheA.define<{ run: number; at: Date }>({
        name: 'test_single_flight',
        revive: (j) => ({ ...(j as { run: number }), at: new Date((j as { at: string }).at) }),
      });
      const got = await Promise.all(Array.from({ length: 50 }, () => cache.get('k1', loader.load)));
      expect(loader.runs).toBe(1);
      for (const v of got) expect(v).toEqual(got[0]);
      // Dates come back as Dates from every tier (revive), on a hit as on the miss.
      expect(got[0]!.at).toBeInstanceOf(Date);
      const again = await cache.get('k1', loader.load);
      expect(loader.runs).toBe(1);
      expect(again!.at.getTime()).toBe(got[0]!.at.getTime());
    });

    it('loads a cold key once for concurrent gets on two nodes (a short Redis claim)', async () => {
      const loader = countingLoader(t.sql);
      const onA = cacheA.define<unknown>({ name: 'test_two_nodes' });
      const onB = cacheB.define<unknown>({ name: 'test_two_nodes' });
      const got = await Promise.all([
        ...Array.from({ length: 10 }, () => onA.get('k', loader.load)),
        ...Array.from({ length: 10 }, () => onB.get('k', loader.load)),
      ]);
      expect(loader.runs).toBe(1);
      for (const v of got) expect(v).toEqual(got[0]);
    });

    it('keeps no value a loader read before an invalidation (a write committed meanwhile)', async () => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const onA = cacheA.define<string>({ name: 'test_race' });
      const onB = cacheB.define<string>({ name: 'test_race' });
      const stale = onB.get('k', async () => {
        await gate;
        return 'old';
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      await onA.invalidate('k'); // the write committed on A after B's loader read
      release();
      expect(await stale).toBe('old'); // answered to its own caller …
      // … but kept nowhere: the next get on either node loads again.
      expect(await onB.get('k', async () => 'new')).toBe('new');
      expect(await onA.get('k', async () => 'newer')).toBe('new');
    });

    it('answers a loader failure as the loader threw it, and caches nothing of it', async () => {
      const onA = cacheA.define<string>({ name: 'test_failure' });
      await expect(
        onA.get('k', async () => {
          throw new Error('database said no');
        }),
      ).rejects.toThrow('database said no');
      expect(await onA.get('k', async () => 'fine')).toBe('fine');
    });

    it('caches no null: a key that appears later is found at once', async () => {
      const onA = cacheA.define<string>({ name: 'test_null' });
      expect(await onA.get('k', async () => null)).toBeNull();
      expect(await onA.get('k', async () => 'there')).toBe('there');
    });

    it('counts hits, local hits and misses per cache name', async () => {
      const before = Scrape.parse((await t.root.get('/metrics')).body);
      const onA = cacheA.define<number>({ name: 'test_metrics' });
      const onB = cacheB.define<number>({ name: 'test_metrics' });
      await onA.get('k', async () => 1); // miss
      await onA.get('k', async () => 2); // this node's LRU
      await onB.get('k', async () => 3); // Redis
      const after = Scrape.parse((await t.root.get('/metrics')).body);
      const d = (result: string) =>
        after.delta(before, 'waybill_cache_requests_total', { cache: 'test_metrics', result });
      expect([d('miss'), d('local_hit'), d('hit'), d('bypass')]).toEqual([1, 1, 1, 0]);
    });
  });

  describe('invalidation: a write on node A, the next read on node B is fresh', () => {
    let org: TestOrg;
    beforeAll(async () => {
      org = await newOrg(t.api);
    });

    it('org: a rename shows at once on both nodes, on the org and on its public tag page', async () => {
      const tag = (
        await t.api.post('/qr/tags', { orgId: org.id, entityType: 'TRUCK', entityId: 'x', title: 'T' }, auth(org.owner))
      ).body.data as { code: string };
      const page = (api: Api) =>
        fetch(`${api.baseUrl.replace('/api/v1', '')}/q/${tag.code}`, { headers: { accept: 'application/json' } }).then(
          (r) => r.json() as Promise<{ data: { orgName: string } }>,
        );
      // Warm both nodes' tiers.
      for (const api of [t.api, apiB, t.api, apiB]) {
        expect((await api.get(`/orgs/${org.id}`, auth(org.owner))).body.data.name).toBe(org.name);
        expect((await page(api)).data.orgName).toBe(org.name);
      }
      expect((await t.api.patch(`/orgs/${org.id}`, { name: 'Renamed Traders' }, auth(org.owner))).status).toBe(200);
      expect((await apiB.get(`/orgs/${org.id}`, auth(org.owner))).body.data.name).toBe('Renamed Traders');
      expect((await page(apiB)).data.orgName).toBe('Renamed Traders');
      expect((await t.api.get(`/orgs/${org.id}`, auth(org.owner))).body.data.name).toBe('Renamed Traders');
    });

    it('memberships: an added member, a changed role and a removed member count at once on the other node', async () => {
      const user = await newUser(t.api);
      // Not a member yet: 404 on B (and cached there as "no membership").
      expect((await apiB.get(`/orgs/${org.id}`, auth(user))).status).toBe(404);
      expect((await apiB.get(`/orgs/${org.id}`, auth(user))).status).toBe(404);
      const added = await t.api.post(`/orgs/${org.id}/members`, { phone: user.phone, role: 'STAFF' }, auth(org.owner));
      expect(added.status).toBe(201);
      expect((await apiB.get(`/orgs/${org.id}`, auth(user))).status).toBe(200);
      // STAFF may not list access codes (manage only); ADMIN may.
      expect((await apiB.get(`/orgs/${org.id}/access-codes`, auth(user))).status).toBe(403);
      expect((await t.api.patch(`/orgs/${org.id}/members/${user.id}`, { role: 'ADMIN' }, auth(org.owner))).status).toBe(
        200,
      );
      expect((await apiB.get(`/orgs/${org.id}/access-codes`, auth(user))).status).toBe(200);
      expect((await t.api.delete(`/orgs/${org.id}/members/${user.id}`, auth(org.owner))).status).toBe(204);
      expect((await apiB.get(`/orgs/${org.id}`, auth(user))).status).toBe(404);
    });

    it("memberships: a new org is the creator's at once on the other node", async () => {
      const owner = await newUser(t.api);
      const first = await newOrg(t.api, owner);
      expect((await apiB.get(`/orgs/${first.id}`, auth(owner))).status).toBe(200); // warms B's copy of the memberships
      const second = await newOrg(t.api, owner, 'Second Traders');
      expect((await apiB.get(`/orgs/${second.id}`, auth(owner))).status).toBe(200);
    });

    describe('trip detail', () => {
      let w: TripWorld;
      beforeAll(async () => {
        w = await newWorld(t.api);
      });
      const detail = (api: Api, tripId: string, u: TestUser = w.source.owner, headers?: Record<string, string>) =>
        api.get(`/trips/${tripId}`, auth(u, headers));

      it('a status change shows at once on the other node, with a new ETag; If-None-Match is a 304 meanwhile', async () => {
        const trip = await newTrip(t.api, w);
        const first = await detail(apiB, trip.id);
        expect(first.status).toBe(200);
        expect(first.body.data.status).toBe('PLANNED');
        const etag = first.headers.get('etag')!;
        expect(etag).toMatch(/^"[A-Za-z0-9_-]{32}"$/);
        expect(first.headers.get('cache-control')).toBe('private, no-cache');
        // The same answer (and ETag) from either node, and a 304 with no body on If-None-Match.
        expect((await detail(t.api, trip.id)).headers.get('etag')).toBe(etag);
        const same = await detail(apiB, trip.id, w.source.owner, { 'if-none-match': etag });
        expect(same.status).toBe(304);
        expect(same.body).toBeUndefined();
        expect(same.headers.get('etag')).toBe(etag);

        await moveTo(t.api, w, trip.id, 'LOADING');
        const changed = await detail(apiB, trip.id, w.source.owner, { 'if-none-match': etag });
        expect(changed.status).toBe(200);
        expect(changed.body.data.status).toBe('LOADING');
        expect(changed.headers.get('etag')).not.toBe(etag);
        await moveTo(t.api, w, trip.id, 'CANCELLED');
        expect((await detail(apiB, trip.id)).body.data.status).toBe('CANCELLED');
      });

      it('a field selection has an ETag of its own, and relations are read fresh', async () => {
        const trip = await newTrip(t.api, w);
        const all = await detail(apiB, trip.id);
        const some = await apiB.get(`/trips/${trip.id}?fields=id,status`, auth(w.source.owner));
        expect(some.body.data).toEqual({ id: trip.id, status: 'PLANNED' });
        expect(some.headers.get('etag')).not.toBe(all.headers.get('etag'));
        // Every field of the default answer, in another order: that order, and an ETag of its own.
        const reversed = [...DEFAULT_TRIP_FIELDS].reverse();
        const turned = await apiB.get(`/trips/${trip.id}?fields=${reversed.join(',')}`, auth(w.source.owner));
        expect(Object.keys(turned.body.data)).toEqual(reversed);
        expect(turned.body.data).toEqual(all.body.data);
        expect(turned.headers.get('etag')).not.toBe(all.headers.get('etag'));
        const withOrg = `/trips/${trip.id}?fields=id,sourceOrg.name`;
        const named = await apiB.get(withOrg, auth(w.source.owner));
        expect(named.body.data.sourceOrg.name).toBe(w.source.name);
        expect(
          (await apiB.get(withOrg, auth(w.source.owner, { 'if-none-match': named.headers.get('etag')! }))).status,
        ).toBe(304);
        await t.api.patch(`/orgs/${w.source.id}`, { name: 'Sharma Bros' }, auth(w.source.owner));
        const renamed = await apiB.get(withOrg, auth(w.source.owner, { 'if-none-match': named.headers.get('etag')! }));
        expect(renamed.status).toBe(200);
        expect(renamed.body.data.sourceOrg.name).toBe('Sharma Bros');
      });

      it('a track update (the after-flush round) shows the latest location and distance on the other node', async () => {
        const trip = await activeTrip(t.api, w);
        const before = await detail(apiB, trip.id);
        expect(before.body.data.latestLocation).toBeNull();
        const at = new Date().toISOString();
        const ping = await t.api.post(
          '/tracking/ping',
          { tripId: trip.id, locations: [{ latitude: 26.95, longitude: 75.8, timestamp: at }] },
          auth(w.driver),
        );
        expect(ping.body.data).toMatchObject({ accepted: 1 });
        // The round runs behind the ping's answer; once it has committed, B's next read has it (its copy is gone).
        await until(
          'the point counted on the trip row',
          async () =>
            (await t.sql.query(`SELECT latest_recorded_at FROM trips WHERE id = $1`, [trip.id])).rows[0]
              .latest_recorded_at !== null,
          10_000,
        );
        await until(
          'the detail on node B to show it',
          async () => (await detail(apiB, trip.id)).body.data.latestLocation?.recordedAt === at,
          2_000,
        );
        const after = await detail(apiB, trip.id);
        expect(after.headers.get('etag')).not.toBe(before.headers.get('etag'));
        await moveTo(t.api, w, trip.id, 'CANCELLED');
      });

      it("a driver's view ends at once on the other node when they leave the org", async () => {
        const w2 = await newWorld(t.api);
        const trip = await newTrip(t.api, w2);
        expect((await detail(apiB, trip.id, w2.driver)).status).toBe(200);
        expect((await detail(apiB, trip.id, w2.driver)).status).toBe(200);
        expect(
          (await t.api.delete(`/orgs/${w2.source.id}/members/${w2.driver.id}`, auth(w2.source.owner))).status,
        ).toBe(204);
        expect((await detail(apiB, trip.id, w2.driver)).status).toBe(404);
      });

      it('another org is still a 404, from a warm cache too', async () => {
        const trip = await newTrip(t.api, w);
        await detail(apiB, trip.id);
        const outsider = await newOrg(t.api);
        expect((await detail(apiB, trip.id, outsider.owner)).status).toBe(404);
        const driverOfOther = await newMember(t.api, w.destination, 'DRIVER');
        expect((await detail(apiB, trip.id, driverOfOther)).status).toBe(404);
      });
    });

    it('public tag: disabling it takes its page down at once on the other node', async () => {
      const tag = (
        await t.api.post(
          '/qr/tags',
          { orgId: org.id, entityType: 'CARGO', entityId: 'c', title: 'Rice' },
          auth(org.owner),
        )
      ).body.data as { id: string; code: string };
      const page = () => fetch(`${b.url}/q/${tag.code}`, { headers: { accept: 'application/json' } });
      expect((await page()).status).toBe(200);
      expect((await page()).status).toBe(200);
      expect((await t.api.post(`/qr/tags/${tag.id}/disable`, {}, auth(org.owner))).status).toBe(200);
      const gone = await page();
      expect(gone.status).toBe(404);
      expect(gone.headers.get('cache-control')).toBe('no-store');
    });

    it('access code: disabling it refuses its next login at once on the other node', async () => {
      const created = await t.api.post(
        `/orgs/${org.id}/access-codes`,
        { label: 'Gate', role: 'STAFF', maxSessions: 5 },
        auth(org.owner),
      );
      const code = created.body.data as { id: string; code: string };
      expect((await apiB.post('/auth/code-login', { code: code.code, name: 'Ramesh' })).status).toBe(201);
      expect((await apiB.post('/auth/code-login', { code: code.code, name: 'Suresh' })).status).toBe(201);
      expect((await t.api.post(`/orgs/${org.id}/access-codes/${code.id}/disable`, {}, auth(org.owner))).status).toBe(
        200,
      );
      const refused = await apiB.post('/auth/code-login', { code: code.code, name: 'Mahesh' });
      expect(refused.status).toBe(410);
      expect(refused.body.error.code).toBe('CODE_DISABLED');
    });

    it('access code: a full code is refused by its seat count, not by a cached count', async () => {
      const created = await t.api.post(
        `/orgs/${org.id}/access-codes`,
        { label: 'Dock', role: 'STAFF', maxSessions: 1 },
        auth(org.owner),
      );
      const code = created.body.data as { id: string; code: string };
      const first = await apiB.post('/auth/code-login', { code: code.code, name: 'A' });
      expect(first.status).toBe(201);
      expect((await t.api.post('/auth/code-login', { code: code.code, name: 'B' })).body.error.code).toBe(
        'CODE_CAPACITY_REACHED',
      );
      expect((await t.api.post('/auth/code-logout', { refreshToken: first.body.data.refreshToken })).status).toBe(204);
      expect((await apiB.post('/auth/code-login', { code: code.code, name: 'C' })).status).toBe(201);
    });
  });

  describe('ledger statement of a past range', () => {
    it('has a strong ETag and answers If-None-Match with a 304; another range has another', async () => {
      const seller = await newOrg(t.api);
      const buyer = await newOrg(t.api);
      const account = (
        await t.api.post(`/orgs/${seller.id}/accounts`, { counterpartyOrgId: buyer.id }, auth(seller.owner))
      ).body.data.id as string;
      const invoice = (n: string) =>
        t.api.post(
          `/ledger/accounts/${account}/invoices`,
          { number: n, amount: 1000 },
          auth(seller.owner, { 'idempotency-key': n }),
        );
      expect((await invoice('INV-1')).status).toBe(201);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const to1 = new Date().toISOString();
      const statement = (to: string, headers?: Record<string, string>) =>
        t.api.get(
          `/ledger/accounts/${account}/statement?format=json&to=${encodeURIComponent(to)}`,
          auth(seller.owner, headers),
        );
      const first = await statement(to1);
      expect(first.status).toBe(200);
      expect(first.body.data.entries).toHaveLength(1);
      const etag = first.headers.get('etag')!;
      expect(etag).toMatch(/^"[A-Za-z0-9_-]{32}"$/);
      expect(first.headers.get('cache-control')).toBe('private, no-cache');
      const again = await statement(to1, { 'if-none-match': etag });
      expect(again.status).toBe(304);
      expect(again.body).toBeUndefined();

      expect((await invoice('INV-2')).status).toBe(201);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const to2 = new Date().toISOString();
      const later = await statement(to2, { 'if-none-match': etag });
      expect(later.status).toBe(200);
      expect(later.body.data.entries).toHaveLength(2);
      expect(later.headers.get('etag')).not.toBe(etag);
      // The first range is unchanged by a later entry.
      expect((await statement(to1, { 'if-none-match': etag })).status).toBe(304);
      // A range reaching into the future has no ETag.
      const open = await statement(new Date(Date.now() + 86_400_000).toISOString());
      expect(open.status).toBe(200);
      expect(open.headers.get('etag')).toBeNull();
    });
  });
});

describe('Cache with Redis down', () => {
  let redis: PrivateRedis;
  let t: TestApp;

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    t = await startTestApp({ redisUrl: redis.url, redisBreakerResetMs: 1000, redisBreakerTimeoutMs: 300 });
  });
  afterAll(async () => {
    await redis?.start().catch(() => undefined);
    await t?.close();
    await redis?.stop();
  });

  it('reads answer from the database (never a 5xx because of the cache), writes show at once, and it recovers', async () => {
    const w = await newWorld(t.api);
    const trip = await newTrip(t.api, w);
    const tag = (
      await t.api.post(
        '/qr/tags',
        { orgId: w.source.id, entityType: 'TRUCK', entityId: 't', title: 'Truck 7' },
        auth(w.source.owner),
      )
    ).body.data as { code: string };
    const read = () => t.api.get(`/trips/${trip.id}`, auth(w.source.owner));
    const page = () => fetch(`${t.url}/q/${tag.code}`, { headers: { accept: 'application/json' } });
    // Warm every tier.
    for (let i = 0; i < 2; i++) {
      expect((await read()).body.data.status).toBe('PLANNED');
      expect((await page()).status).toBe(200);
    }
    const before = Scrape.parse((await t.root.get('/metrics')).body);

    await redis.stop();
    for (let i = 0; i < 5; i++) {
      expect((await read()).body.data.status).toBe('PLANNED');
      expect((await t.api.get(`/orgs/${w.source.id}`, auth(w.source.owner))).status).toBe(200);
      expect((await page()).status).toBe(200);
    }
    // A write while Redis is down: the next read is fresh (no tier is trusted without the bus).
    const moved = await t.api.post(`/trips/${trip.id}/status`, { status: 'LOADING' }, auth(w.source.owner));
    expect(moved.status).toBe(200);
    expect((await read()).body.data.status).toBe('LOADING');
    expect((await t.api.patch(`/orgs/${w.source.id}`, { name: 'Offline Rename' }, auth(w.source.owner))).status).toBe(
      200,
    );
    expect((await t.api.get(`/orgs/${w.source.id}`, auth(w.source.owner))).body.data.name).toBe('Offline Rename');
    const during = Scrape.parse((await t.root.get('/metrics')).body);
    expect(
      during.delta(before, 'waybill_cache_requests_total', { cache: 'trip_detail', result: 'bypass' }),
    ).toBeGreaterThan(0);

    // Back up: the cache uses Redis again once the breaker closes; what it answers is still what was written.
    await redis.start();
    await until(
      'the Redis breaker to close again',
      async () => {
        await read();
        return (
          Scrape.parse((await t.root.get('/metrics')).body).value('waybill_breaker_state', { breaker: 'redis' }) === 0
        );
      },
      20_000,
    );
    for (let i = 0; i < 3; i++) {
      expect((await read()).body.data.status).toBe('LOADING');
      expect((await t.api.get(`/orgs/${w.source.id}`, auth(w.source.owner))).body.data.name).toBe('Offline Rename');
    }
  });
});
