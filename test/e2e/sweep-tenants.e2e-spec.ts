/**
 * Tenant sweep, generated from the route table (`test/support/route-table.ts`):
 * org A owns one of every resource (`buildOrgWorld`, test/support/org-world.ts),
 * and the OWNER of an unrelated org B calls every route with A's ids. A route
 * with path parameters gets A's resource for each parameter (looked up by
 * name in the world's `ids`) and a body valid for its own schema: the answer
 * must be 404 (the contract: another org's resource is a 404, never a 403 that
 * reveals it), unless `PATH_EXCEPTIONS` says otherwise with its reason.
 * A route without path parameters must be declared, either in `BODY_ID_CASES`
 * (its body or query names A's resources: each case's expected status) or in
 * `NOT_ORG_SCOPED` (it names no resource; its GET answers to B are checked
 * for A's ids). Every 2xx answer to B must carry none of A's ids, and no table
 * may change.
 *
 * Extending it (e.g. the webhooks routes, `/orgs/:orgId/webhooks/:webhookId`):
 * - create the resource in `buildOrgWorld` and add `webhookId: <its id>` to its
 *   `ids`: the routes are then swept with no change here. Until then this test
 *   fails naming the parameter that has no mapping;
 * - a new route without path parameters fails until it is listed below;
 * - a body field naming a resource of A goes into `bodyIds` (org-world.ts).
 */
import { randomUUID } from 'node:crypto';
import { newOrg, TestOrg } from '../support/factories';
import { buildOrgWorld, OrgWorld, snapshotTables, startSweptApp, validBodyFor } from '../support/org-world';
import { fillPath, RouteInfo } from '../support/route-table';
import { connectWatcher } from '../support/socket-client';
import { TestApp } from '../support/test-app';
import { leaves, sample } from '../support/zod-samples';

jest.setTimeout(120_000);

/** Path-parameter routes whose answer to an outsider is not a 404, with the contract's reason. */
const PATH_EXCEPTIONS: Record<string, { status: number[]; why: string }> = {
  'GET /q/:code': { status: [200], why: 'the public tag page: anyone may read a public tag (API.md, QR tags)' },
};

/** Routes that name no resource of another org: public auth routes, the caller's own lists, creation of new things. */
const NOT_ORG_SCOPED: Record<string, string> = {
  'POST /api/v1/auth/register': 'public',
  'POST /api/v1/auth/login': 'public',
  'POST /api/v1/auth/refresh': 'public, takes only a refresh token',
  'POST /api/v1/auth/logout': 'public, takes only a refresh token',
  'POST /api/v1/auth/code-login': 'public, takes only a code',
  'POST /api/v1/auth/code-logout': 'public, takes only a refresh token',
  'GET /api/v1/me': "the caller's own profile",
  'POST /api/v1/orgs': 'creates a new org',
  'GET /api/v1/chat/threads': "the caller's threads",
  'POST /api/v1/attachments': 'an upload of the caller',
  'GET /api/v1/tracking/osmand': 'public, identified by a tracker token (an unknown one is a 404)',
  'POST /api/v1/tracking/osmand': 'public, identified by a tracker token (an unknown one is a 404)',
  'GET /health/live': 'operations',
  'GET /health/ready': 'operations',
  'GET /metrics': 'operations',
};

interface BodyIdCase {
  name: string;
  /** The body, query and expected statuses, from A's world and B's own ids. */
  make(a: OrgWorld, b: BWorld): { body?: unknown; query?: Record<string, string>; path?: Record<string, string> };
  status: number[];
}

/** B's own resources, for routes whose path names B's and whose body names A's. */
interface BWorld {
  org: TestOrg;
  accountId: string;
  threadId: string;
}

/** Routes without path parameters (and a few of B's own) whose body or query names A's resources. */
const BODY_ID_CASES: Record<string, BodyIdCase[]> = {
  'POST /api/v1/trips': [
    {
      name: "A's truck and driver on B's trip",
      make: (a, b) => ({
        body: {
          sourceOrgId: b.org.id,
          destinationOrgId: a.w.destination.id,
          truckId: a.w.truckId,
          driverId: a.w.driverId,
          startPoint: { name: 'Jaipur', lat: 26.9, lng: 75.8 },
          endPoint: { name: 'Delhi', lat: 28.6, lng: 77.2 },
        },
      }),
      status: [422],
    },
    {
      name: 'A as the source org',
      make: (a) => ({
        body: {
          sourceOrgId: a.w.source.id,
          destinationOrgId: a.w.destination.id,
          truckId: a.w.truckId,
          driverId: a.w.driverId,
          startPoint: { name: 'Jaipur', lat: 26.9, lng: 75.8 },
          endPoint: { name: 'Delhi', lat: 28.6, lng: 77.2 },
        },
      }),
      status: [404, 422],
    },
  ],
  'GET /api/v1/trips': [
    { name: "A's org", make: (a) => ({ query: { orgId: a.w.source.id } }), status: [404] },
    { name: "A's driver", make: (a) => ({ query: { driverId: a.w.driverId } }), status: [200, 404] },
  ],
  'POST /api/v1/tracking/ping': [
    {
      name: "A's trip",
      make: (a) => ({
        body: {
          tripId: a.tripId,
          locations: [{ latitude: 26.9, longitude: 75.8, timestamp: new Date().toISOString() }],
        },
      }),
      status: [404],
    },
  ],
  'POST /api/v1/chat/threads': [
    { name: "A's trip", make: (a) => ({ body: { tripId: a.tripId } }), status: [404] },
    { name: "A's account", make: (a) => ({ body: { accountId: a.ids.accountId } }), status: [404] },
  ],
  'POST /api/v1/qr/tags': [
    {
      name: "A's org",
      make: (a) => ({ body: { orgId: a.w.source.id, entityType: 'TRUCK', entityId: a.w.truckId, title: 'x' } }),
      status: [404],
    },
  ],
  'GET /api/v1/qr/tags': [{ name: "A's org", make: (a) => ({ query: { orgId: a.w.source.id } }), status: [404] }],
  'GET /api/v1/qr/analytics': [{ name: "A's org", make: (a) => ({ query: { orgId: a.w.source.id } }), status: [404] }],
  'POST /api/v1/qr/batches': [
    {
      name: "A's org",
      make: (a) => ({ body: { orgId: a.w.source.id, items: [{ entityType: 'CARGO', entityId: 'c', title: 't' }] } }),
      status: [404],
    },
  ],
  'POST /api/v1/qr/scan': [
    {
      name: "A's public tag, LOAD on A's trip",
      make: (a) => ({ body: { code: a.ids.code, action: 'LOAD', tripId: a.tripId } }),
      status: [404],
    },
    {
      // The tag is public, so its existence is no secret: the contract lets anyone VIEW it, and other actions
      // are for members of its org.
      name: "A's public tag, CHECK_IN",
      make: (a) => ({ body: { code: a.ids.code, action: 'CHECK_IN' } }),
      status: [403, 404],
    },
  ],
  // B's own account and thread, with A's resources in the body.
  'POST /api/v1/ledger/accounts/:accountId/invoices': [
    {
      name: "A's trip on B's account",
      make: (a, b) => ({ path: { accountId: b.accountId }, body: { number: 'X-1', amount: 10, tripId: a.tripId } }),
      status: [404],
    },
  ],
  'POST /api/v1/ledger/accounts/:accountId/payments': [
    {
      name: "A's invoice on B's account",
      make: (a, b) => ({
        path: { accountId: b.accountId },
        body: { amount: 10, method: 'UPI', invoiceId: a.bodyIds.invoiceId },
      }),
      status: [404],
    },
  ],
  'POST /api/v1/chat/threads/:threadId/messages': [
    {
      name: "A's attachment in B's thread",
      make: (a, b) => ({
        path: { threadId: b.threadId },
        body: { body: 'x', clientMessageId: randomUUID(), attachmentIds: [a.ids.attachmentId] },
      }),
      // The chat section's rule: only the sender's own unsent uploads may be attached; anything else, unknown ids
      // included, is the same 422 naming attachmentIds (so it reveals nothing).
      status: [422],
    },
  ],
  'POST /api/v1/chat/threads/:threadId/read': [
    {
      name: "A's message in B's thread",
      make: (a, b) => ({ path: { threadId: b.threadId }, body: { lastMessageId: a.bodyIds.lastMessageId } }),
      status: [404],
    },
  ],
};

/**
 * Generated body and query cases: for every route whose body or query has a
 * field named like one of A's resources (`bodyIds` in org-world.ts: tripId,
 * accountId, invoiceId, orgId, lastMessageId, attachmentIds...), B sends a
 * body valid for the route's schema made from B's own world, with that one
 * field set to A's resource, on B's own path resources. The answer must be a
 * 404 unless this table says otherwise (`<route> <field>`), with the reason.
 */
const GENERATED_EXPECT: Record<string, { status: number[]; why: string }> = {
  'POST /api/v1/trips truckId': {
    status: [422],
    why: "API.md, Trips: the truck must be the caller org's (422 naming it)",
  },
  'POST /api/v1/trips driverId': {
    status: [422],
    why: "API.md, Trips: the driver must be the caller org's (422 naming it)",
  },
  'GET /api/v1/trips driverId': {
    status: [200],
    why: 'a list filter: an invisible driver filters like an unknown one (an empty page, checked for A ids)',
  },
  'POST /api/v1/chat/threads/:threadId/messages attachmentIds': {
    status: [422],
    why: "only the sender's own unsent uploads; unknown ids alike (reveals nothing)",
  },
};

/** Generated cases left out, with the contract's reason. */
const GENERATED_SKIP: Record<string, string> = {
  'POST /api/v1/qr/scan code':
    "API.md, QR tags: the code is the tag's bearer secret; a member of the scan trip's org (B's own trip here) may scan with any action",
};

/** Fields that name another org on purpose (the other party of a trade), never one of its resources. */
const PARTY_FIELDS = new Set(['counterpartyOrgId', 'destinationOrgId', 'sourceOrgId']);

describe("tenant sweep: every route called by another org's OWNER with A's ids", () => {
  let t: TestApp;
  let a: OrgWorld;
  let b: BWorld;
  /** B's own world: every resource, for the generated cases' paths and bodies. */
  let bw: OrgWorld;
  let routes: RouteInfo[];

  beforeAll(async () => {
    ({ t, routes } = await startSweptApp());
    a = await buildOrgWorld(t);
    bw = await buildOrgWorld(t);
    const org = bw.w.source;
    const partner = await newOrg(t.api, undefined, 'Partner of B');
    const as = { token: org.owner.accessToken };
    const acc = await t.api.post(`/orgs/${org.id}/accounts`, { counterpartyOrgId: partner.id }, as);
    const thread = await t.api.post('/chat/threads', { accountId: acc.body.data.id }, as);
    b = { org, accountId: acc.body.data.id, threadId: thread.body.data.id };
  });
  afterAll(async () => {
    await t?.close();
  });

  const key = (r: RouteInfo) => `${r.method} ${r.url}`;

  /** A's resource for a body or query field named like one (`attachmentIds` takes `[attachmentId]`). */
  const aValueFor = (field: string, isArray: boolean): unknown => {
    const single = isArray && field.endsWith('s') ? field.slice(0, -1) : field;
    const id = a.bodyIds[single];
    if (id === undefined || PARTY_FIELDS.has(field)) return undefined;
    return isArray ? [id] : id;
  };

  interface Generated {
    name: string;
    field: string;
    path: Record<string, string>;
    body: unknown;
    query: Record<string, string>;
  }

  /** B's valid request to the route with one id field set to A's resource, for each such field. */
  function generatedCases(r: RouteInfo): Generated[] {
    if (r.isPublic || r.params.some((p) => !(p in bw.ids))) return [];
    const path = Object.fromEntries(r.params.map((p) => [p, bw.ids[p]]));
    const out: Generated[] = [];
    const query = r.querySchema ? (sample(r.querySchema, {}, '', false) as Record<string, string>) : {};
    const body = r.bodySchema ? validBodyFor(r, bw) : undefined;
    for (const leaf of r.bodySchema ? leaves(r.bodySchema) : []) {
      const field = leaf.path[0];
      const value = leaf.path.length === 1 ? aValueFor(field, leaf.kind === 'array') : undefined;
      if (value !== undefined && !(`${key(r)} ${field}` in GENERATED_SKIP))
        out.push({
          name: `body ${field} of A`,
          field,
          path,
          query,
          body: validBodyFor(r, bw, { [field]: value }, field),
        });
    }
    for (const leaf of leaves(r.querySchema)) {
      const field = leaf.path[0];
      const value = aValueFor(field, false);
      if (value !== undefined)
        out.push({ name: `query ${field} of A`, field, path, body, query: { ...query, [field]: String(value) } });
    }
    return out;
  }

  it('every route is mapped: path parameters to A resources, the others declared', () => {
    const unmapped: string[] = [];
    for (const r of routes) {
      for (const p of r.params) if (!(p in a.ids)) unmapped.push(`${key(r)}: no resource of A for :${p}`);
      if (!r.params.length && !(key(r) in NOT_ORG_SCOPED) && !(key(r) in BODY_ID_CASES) && !generatedCases(r).length)
        unmapped.push(`${key(r)}: declare it in BODY_ID_CASES or NOT_ORG_SCOPED`);
    }
    const generated = new Set(routes.flatMap((r) => generatedCases(r).map((g) => `${key(r)} ${g.field}`)));
    const stale = [
      ...[...Object.keys(NOT_ORG_SCOPED), ...Object.keys(BODY_ID_CASES), ...Object.keys(PATH_EXCEPTIONS)].filter(
        (k) => !routes.some((r) => key(r) === k),
      ),
      ...Object.keys(GENERATED_EXPECT).filter((k) => !generated.has(k)),
      ...Object.keys(GENERATED_SKIP).filter((k) => !routes.some((r) => k.startsWith(`${key(r)} `))),
    ];
    expect(unmapped).toEqual([]);
    expect(stale).toEqual([]);
  });

  it("answers B 404 for each of A's resources, leaks none of A's ids, and changes nothing", async () => {
    const skip = ['users.last_seen_at', 'access_code_sessions.last_seen_at'];
    const before = await snapshotTables(t.sql, skip);
    const aIds = new Set([
      ...Object.values(a.ids),
      ...Object.values(a.bodyIds),
      a.w.truckId,
      a.staff.id,
      a.w.driver.id,
    ]);
    const token = b.org.owner.accessToken;
    const wrong: string[] = [];
    const seen: string[] = [];
    let calls = 0;

    const call = async (
      r: RouteInfo,
      name: string,
      path: Record<string, string>,
      body: unknown,
      query: Record<string, string>,
      want: number[],
    ) => {
      const q = new URLSearchParams(query).toString();
      const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'idempotency-key': randomUUID() };
      const hasBody = body !== undefined && r.method !== 'GET';
      if (hasBody) headers['content-type'] = 'application/json';
      const res = await t.app.inject({
        method: r.method as 'GET',
        url: fillPath(r.url, path) + (q ? `?${q}` : ''),
        headers,
        payload: hasBody ? JSON.stringify(body) : undefined,
      });
      calls += 1;
      const line = `${key(r)} [${name}] → ${res.statusCode} ${res.body.slice(0, 160).replace(/\s+/g, ' ')}`;
      seen.push(line);
      if (!want.includes(res.statusCode)) wrong.push(`${line} (want ${want.join('|')})`);
      if (res.statusCode < 300) {
        const sent = `${r.url} ${JSON.stringify(path)} ${JSON.stringify(body)} ${q}`;
        const leaked = [...aIds].filter((id) => res.body.includes(id) && !sent.includes(id));
        if (leaked.length) wrong.push(`${line}: carries A's ${leaked.join(', ')}`);
      }
      if (res.statusCode >= 400 && res.json()?.success !== false) wrong.push(`${line}: not the envelope`);
    };

    await Promise.all(
      routes.map(async (r) => {
        const k = key(r);
        const query = r.querySchema ? (sample(r.querySchema, {}, '', false) as Record<string, string>) : {};
        const body = r.bodySchema ? validBodyFor(r, a) : r.method === 'GET' ? undefined : {};
        if (r.params.length) {
          const path = Object.fromEntries(r.params.map((p) => [p, a.ids[p] ?? 'unmapped']));
          await call(r, "A's ids", path, body, query, PATH_EXCEPTIONS[k]?.status ?? [404]);
        }
        for (const c of BODY_ID_CASES[k] ?? []) {
          const made = c.make(a, b);
          await call(r, c.name, made.path ?? {}, made.body ?? body, { ...query, ...made.query }, c.status);
        }
        if (k in NOT_ORG_SCOPED && r.method === 'GET' && !r.isPublic) await call(r, 'own', {}, undefined, query, [200]);
        for (const g of generatedCases(r)) {
          await call(r, g.name, g.path, g.body, g.query, GENERATED_EXPECT[`${k} ${g.field}`]?.status ?? [404]);
        }
      }),
    );
    const after = await snapshotTables(t.sql, skip);
    const byStatus: Record<string, number> = {};
    for (const line of seen) {
      const status = /→ (\d+)/.exec(line)?.[1] ?? '?';
      byStatus[status] = (byStatus[status] ?? 0) + 1;
    }
    console.log(`tenant sweep: ${routes.length} routes, ${calls} calls as B; by status ${JSON.stringify(byStatus)}`);
    expect(wrong).toEqual([]);
    expect(after).toEqual(before);
  });

  it("refuses B a Socket.IO subscription to A's trip, org and thread rooms", async () => {
    const watcher = await connectWatcher(t.url, b.org.owner.accessToken);
    try {
      for (const room of [`trip:${a.tripId}`, `org:${a.w.source.id}`, `thread:${a.ids.threadId}`]) {
        const ack = await watcher.request<{ ok: boolean; error?: { code: string } }>('subscribe', { room });
        expect({ room, ok: ack.ok }).toEqual({ room, ok: false });
      }
    } finally {
      watcher.close();
    }
  });
});
