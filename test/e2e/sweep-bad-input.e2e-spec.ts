/**
 * Bad-input sweep, generated from the app itself: every route Fastify serves is
 * read from Nest's metadata (`test/support/route-table.ts`) with the zod schemas
 * of its `@Param`/`@Query`/`@Body` DTOs, and each gets malformed JSON, wrong
 * types for each field, unknown keys, huge strings and arrays, NUL and unpaired
 * surrogates, injection strings, bad ids (not a uuid, a uuid of nothing) and
 * malformed cursors and limits. Every answer must be a 4xx in the envelope
 * `{success:false,error:{code,message}}` (never a 5xx) and no table may change
 * (row counts and a checksum of every table, before and after).
 *
 * A new endpoint is swept without new code here. What it may need:
 * - a path parameter with a new name: add it to `ids` in `test/support/org-world.ts`
 *   (create the resource in `buildOrgWorld`); the tenant sweep fails until then;
 * - a body field whose valid value the generator cannot guess (an id of a real
 *   resource, a phone): add it to `HINTS` below or to `bodyIds` in org-world.ts.
 *   Each route's generated valid body is checked against its own schema first,
 *   so a route whose mutations would only test "a required field is missing" fails
 *   naming the route.
 */
import { randomUUID } from 'node:crypto';
import { ZodType } from 'zod';
import {
  buildOrgWorld,
  OrgWorld,
  snapshotTables,
  sweepHints,
  startSweptApp,
  validBodyFor,
} from '../support/org-world';
import { fillPath, RouteInfo } from '../support/route-table';
import { connectWatcher } from '../support/socket-client';
import { TestApp } from '../support/test-app';
import { Hints, kindOf, Leaf, leaves, sample, setPath } from '../support/zod-samples';

jest.setTimeout(180_000);

const INJECTIONS = [
  "' OR '1'='1'; DROP TABLE users; --",
  '<script>alert(1)</script>',
  '${7*7}{{7*7}}',
  '../../etc/passwd',
];
const HUGE_STRING = 'x'.repeat(200_000);
const b64 = (s: string) => Buffer.from(s).toString('base64url');
const BAD_CURSORS = [
  'not a cursor!',
  b64('["x","y"]'),
  b64(`["2026-01-01T00:00:00Z","' OR 1=1 --"]`),
  b64('{"id":"x"}'),
  b64('["99999-01-01T00:00:00Z","0196e1d2-0000-7000-8000-000000000000"]'),
  b64('[1e400]'),
];
/** Edge values left out of the edge sweep (`<route> <field>`), with the reason. None today. */
const EDGE_SKIP = new Set<string>();

/** Limits no list takes; `max + 1` is added from each route's own schema. */
const BAD_LIMITS = ['0', '-1', '1e9', 'abc', '1.5', '', '99999999999999999999'];

interface Case {
  route: RouteInfo;
  name: string;
  method: string;
  url: string;
  token?: string;
  payload?: string;
  contentType?: string;
  idempotencyKey?: string;
  /** A 200 that stores nothing is right too (OsmAnd: a point the filters drop is a 200, or the app resends it forever). */
  droppedIsOk?: boolean;
}

/** Runs `fn` over `items` with at most `width` in flight. */
async function pool<T, R>(items: T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    }),
  );
  return out;
}

/** encodeURIComponent, with an unpaired surrogate sent as its raw (invalid) UTF-8 bytes. */
const enc = (v: string) => {
  try {
    return encodeURIComponent(v);
  } catch {
    return encodeURIComponent(v.replace(/[\ud800-\udfff]/g, '\ufffd')).replace(/%EF%BF%BD/g, '%ED%A0%80');
  }
};
const qs = (q: Record<string, unknown>) =>
  Object.entries(q)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${enc(k)}=${enc(String(v))}`)
    .join('&');

/** Wrong values for one body field, by what it takes. */
function bodyMutations(leaf: Leaf, element: unknown): [string, unknown][] {
  const out: [string, unknown][] = [
    ['null', null],
    ['object', { nested: 1 }],
  ];
  switch (leaf.kind) {
    case 'string':
      out.push(
        ['number', 12345],
        ['boolean', true],
        ['array', ['a']],
        ['NUL', 'a\u0000b'],
        ['lone surrogate', 'a\ud800b'],
      );
      out.push(['lone low surrogate', '\udc00']);
      if (leaf.maxLength !== undefined || leaf.format) out.push(['huge string', HUGE_STRING]);
      if (leaf.format) for (const s of INJECTIONS) out.push([`injection ${s.slice(0, 8)}`, s]);
      break;
    case 'number':
      out.push(['text', 'abc'], ['boolean', false], ['array', [1]], ['1e300', 1e300], ['-1e300', -1e300]);
      if (!leaf.coerce) out.push(['numeric string', '12']);
      break;
    case 'boolean':
      out.push(['text', 'yes'], ['number', 1]);
      break;
    case 'enum':
    case 'literal':
      out.push(
        ['unknown member', 'NOT_A_MEMBER'],
        ['number', 7],
        ['NUL', 'A\u0000'],
        ...INJECTIONS.map((s): [string, unknown] => [`injection ${s.slice(0, 8)}`, s]),
      );
      break;
    case 'array':
      out.push(['string', 'x'], ['number', 3], ['huge array', Array.from({ length: 20_001 }, () => element)]);
      if (typeof element === 'string') out.push(['NUL element', ['a\u0000']]);
      break;
    case 'object':
      out.push(['string', 'x'], ['array', []], ['number', 3]);
      break;
  }
  if (out.every(([, v]) => v !== null)) return out;
  return out;
}

/** Wrong values for one query field. */
function queryMutations(name: string, leaf: Leaf): [string, string][] {
  const out: [string, string][] = [
    ['NUL', 'a\u0000'],
    ['lone surrogate (raw %ED%A0%80)', '\ud800'],
    ['huge', 'x'.repeat(5_000)],
    ...INJECTIONS.map((s): [string, string] => [`injection ${s.slice(0, 8)}`, s]),
  ];
  if (name === 'cursor') out.push(...BAD_CURSORS.map((c, i): [string, string] => [`bad cursor ${i}`, c]));
  else if (name === 'limit')
    out.push(
      ...[...BAD_LIMITS, ...(leaf.max === undefined ? [] : [String(leaf.max + 1)])].map((l): [string, string] => [
        `limit ${JSON.stringify(l)}`,
        l,
      ]),
    );
  else if (leaf.kind === 'number') out.push(['text', 'abc'], ['1e400', '1e400'], ['-1', '-1e300']);
  else if (leaf.kind === 'enum') out.push(['unknown member', 'NOT_A_MEMBER']);
  else if (leaf.kind === 'boolean') out.push(['text', 'maybe']);
  else if (leaf.format === 'datetime' || leaf.format === 'date')
    out.push(['bad date', '2026-13-45'], ['year 0', '0000-01-01']);
  return out.filter(([, v]) => v !== undefined);
}

describe('bad-input sweep over every route', () => {
  let t: TestApp;
  let world: OrgWorld;
  let routes: RouteInfo[];

  beforeAll(async () => {
    ({ t, routes } = await startSweptApp());
    world = await buildOrgWorld(t);
  });
  afterAll(async () => {
    await t?.close();
  });

  const hints = (): Hints => sweepHints(world);
  const validBody = (route: RouteInfo): unknown => validBodyFor(route, world);

  function casesFor(route: RouteInfo): Case[] {
    const cases: Case[] = [];
    const owner = route.url.includes('/tracking/ping') ? world.w.driver.accessToken : world.owner.accessToken;
    const token = route.isPublic ? undefined : owner;
    const params = Object.fromEntries(route.params.map((p) => [p, world.ids[p] ?? randomUUID()]));
    const url = fillPath(route.url, params);
    const query = route.querySchema ? (sample(route.querySchema, hints(), '', false) as Record<string, unknown>) : {};
    const withQuery = (q: Record<string, unknown>) => {
      const s = qs(q);
      return s ? `${url}?${s}` : url;
    };
    const hasBody = route.bodySchema !== undefined || (route.untypedInput && route.method !== 'GET');
    const body = route.bodySchema ? validBody(route) : {};
    const json = (payload: string, name: string, extra: Partial<Case> = {}): Case => ({
      route,
      name,
      method: route.method,
      url: withQuery(query),
      token,
      payload,
      contentType: 'application/json',
      ...extra,
    });

    if (hasBody) {
      cases.push(json('{"a":', 'malformed JSON'), json('{"a":1}}', 'trailing garbage'));
      cases.push(
        json('null', 'body null'),
        json('[]', 'body array'),
        json('"text"', 'body string'),
        json('123', 'body number'),
      );
      cases.push(json('{"a":"\\u0000"}', 'NUL in an unknown key value'), json('{"\\u0000":1}', 'NUL in a key'));
      cases.push(json('{"x":"\\ud800"}', 'lone surrogate under an unknown key'));
      cases.push(json(JSON.stringify({ ...(body as object), __sweep_unknown: 1 }), 'unknown key'));
    }
    if (route.bodySchema) {
      for (const leaf of leaves(route.bodySchema)) {
        const element = leaf.kind === 'array' ? (sample(route.bodySchema, hints()) as any) : undefined;
        const el = element ? leaf.path.reduce((o: any, k) => o?.[k], element)?.[0] : undefined;
        for (const [what, value] of bodyMutations(leaf, el)) {
          if (value === null && isNullableAt(route.bodySchema, leaf.path)) continue;
          cases.push(json(JSON.stringify(setPath(body, leaf.path, value)), `body ${leaf.path.join('.')}: ${what}`));
        }
        if (leaf.kind === 'object')
          cases.push(
            json(
              JSON.stringify(setPath(body, [...leaf.path, '__sweep_unknown'], 1)),
              `body ${leaf.path.join('.')}: unknown key`,
            ),
          );
      }
    }
    if (route.querySchema) {
      cases.push({ ...json('', 'unknown query key'), payload: undefined, url: withQuery({ ...query, __sweep: '1' }) });
      for (const leaf of leaves(route.querySchema)) {
        const name = leaf.path[0];
        for (const [what, value] of queryMutations(name, leaf)) {
          cases.push({
            ...json(JSON.stringify(body), `query ${name}: ${what}`),
            payload: hasBody ? JSON.stringify(body) : undefined,
            url: withQuery({ ...query, [name]: value }),
          });
        }
        cases.push({
          ...json('', `query ${name} repeated`),
          payload: hasBody ? JSON.stringify(body) : undefined,
          url: `${withQuery(query)}${qs(query) ? '&' : '?'}${name}=a&${name}=b`,
        });
      }
    }
    for (const p of route.params) {
      const bad: [string, string][] = [
        ['not a uuid', 'not-a-uuid'],
        ['NUL', '%00'],
        ['lone surrogate', '%ED%A0%80'],
        ['huge', 'x'.repeat(3000)],
        ['SQL', "'%20OR%20'1'%3D'1"],
        ['HTML', '%3Cscript%3Ealert(1)%3C%2Fscript%3E'],
        ['uuid of nothing', randomUUID()],
        ['nil uuid', '00000000-0000-0000-0000-000000000000'],
      ];
      for (const [what, raw] of bad) {
        const rawParams = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, encodeURIComponent(v)]));
        const u = fillPath(route.url, { ...rawParams, [p]: raw }, true);
        const s = qs(query);
        cases.push({
          ...json('', `param ${p}: ${what}`),
          payload: hasBody ? JSON.stringify(body) : undefined,
          url: s ? `${u}?${s}` : u,
        });
      }
    }
    if (hasBody) {
      // Bodies that are not JSON, on a JSON route; JSON on an upload route.
      const text = JSON.stringify(body);
      cases.push(json(text, 'text/plain body', { contentType: 'text/plain' }));
      cases.push(json('a=1&b=%00', 'form body', { contentType: 'application/x-www-form-urlencoded' }));
      cases.push(json('--x\r\n\r\n--x--', 'broken multipart', { contentType: 'multipart/form-data; boundary=x' }));
      cases.push(json('{"a":', 'broken JSON, unknown charset', { contentType: 'application/json; charset=ebcdic' }));
      if (route.method === 'POST')
        cases.push(json('{"a":', 'over-long Idempotency-Key', { idempotencyKey: 'k'.repeat(300) }));
    }
    // Untyped query input (the OsmAnd protocol): parameters no schema describes, bad values with a real token.
    if (route.untypedInput) {
      const token = world.w.trackerToken;
      for (const q of [
        `id=%00`,
        `id=${'x'.repeat(5000)}`,
        `id=%27%20OR%20%271%27%3D%271`,
        `id=%ED%A0%80&lat=26.9&lon=75.8`,
        `deviceid=${world.w.deviceId}&lat=26.9&lon=75.8`,
        `id=${token}&lat=abc&lon=75.8`,
        `id=${token}&lat=91&lon=75.8`,
        `id=${token}&lat=1e400&lon=75.8`,
        `id=${token}&lat=0&lon=0`,
        `id=${token}&lat=26.9&lon=75.8&timestamp=garbage`,
        `id=${token}&lat=26.9&lon=75.8&timestamp=99999999999999999999`,
        `id=${token}&location=x`,
        `id=${token}&lat=26.9&lat=27&lon=75.8`,
      ])
        cases.push({
          ...json('', `query ${q.replace(token, '<token>').slice(0, 60)}`),
          payload: undefined,
          url: `${url}?${q}`,
          droppedIsOk: q.startsWith(`id=${token}`),
        });
    }
    // Without a token: a protected route is 401 whatever the input.
    if (!route.isPublic) {
      cases.push({ ...json('{"a":', 'no token, malformed JSON'), token: undefined });
      cases.push({
        ...json(JSON.stringify(body), 'no token'),
        token: undefined,
        payload: hasBody ? JSON.stringify(body) : undefined,
      });
      cases.push({
        ...json(JSON.stringify(body), 'bad token'),
        token: 'not.a.jwt',
        payload: hasBody ? JSON.stringify(body) : undefined,
      });
    }
    return cases.map((c) => (c.payload === undefined ? { ...c, contentType: undefined } : c));
  }

  it('reads every route from the app and makes a valid body for each from its own schema', () => {
    const handlers = routes.map((r) => `${r.method} ${r.url}`);
    expect(handlers).toEqual(
      expect.arrayContaining(['POST /api/v1/trips', 'POST /api/v1/tracking/ping', 'GET /q/:code']),
    );
    const typed = routes.filter((r) => r.bodySchema || r.querySchema || r.paramSchema);
    expect(typed.length).toBeGreaterThan(40);
    for (const r of routes.filter((x) => x.bodySchema)) validBody(r);
  });

  it('answers every bad input with a 4xx in the envelope, never a 5xx, and writes nothing', async () => {
    const skip = ['users.last_seen_at', 'access_code_sessions.last_seen_at'];
    const before = await snapshotTables(t.sql, skip);
    const sweepable = routes.filter(
      (r) => r.params.length || r.bodySchema || r.querySchema || r.untypedInput || r.readsRequest,
    );
    const skipped = routes.filter((r) => !sweepable.includes(r)).map((r) => `${r.method} ${r.url}`);
    const cases = sweepable.flatMap(casesFor);
    const failures: string[] = [];
    const byStatus = new Map<number, number>();
    const started = Date.now();
    await pool(cases, 12, async (c) => {
      const headers: Record<string, string> = { 'idempotency-key': c.idempotencyKey ?? randomUUID() };
      if (c.token) headers.authorization = `Bearer ${c.token}`;
      if (c.contentType) headers['content-type'] = c.contentType;
      const res = await t.app.inject({ method: c.method as 'GET', url: c.url, headers, payload: c.payload });
      byStatus.set(res.statusCode, (byStatus.get(res.statusCode) ?? 0) + 1);
      let body: any;
      try {
        body = res.json();
      } catch {
        body = undefined;
      }
      const envelope =
        body?.success === false && typeof body.error?.code === 'string' && typeof body.error?.message === 'string';
      const authFailure = c.token && c.token !== 'not.a.jwt' && res.statusCode === 401;
      const dropped = c.droppedIsOk && res.statusCode === 200;
      if (!dropped && (res.statusCode < 400 || res.statusCode >= 500 || !envelope || authFailure))
        failures.push(
          `${c.route.method} ${c.route.url} [${c.name}] → ${res.statusCode} ${res.body.slice(0, 200).replace(/\s+/g, ' ')}`,
        );
    });
    const after = await snapshotTables(t.sql, skip);
    console.log(
      `bad-input sweep: ${sweepable.length} routes (${skipped.length} without input: ${skipped.join(', ')}), ` +
        `${cases.length} requests in ${Date.now() - started} ms; by status ${JSON.stringify(Object.fromEntries([...byStatus].sort()))}`,
    );
    expect(failures).toEqual([]);
    expect(after).toEqual(before);
  });

  it("answers the router's own refusals in the envelope; on /q/ as the page's 404", async () => {
    for (const url of [`/api/v1/trips/%ED%A0%80`, `/api/v1/trips/${'x'.repeat(3000)}`]) {
      const res = await t.app.inject({
        method: 'GET',
        url,
        headers: { authorization: `Bearer ${world.owner.accessToken}` },
      });
      expect({ url: url.slice(0, 30), status: res.statusCode, code: res.json().error?.code }).toEqual({
        url: url.slice(0, 30),
        status: 400,
        code: 'BAD_REQUEST',
      });
      expect(res.headers['x-request-id']).toBeTruthy();
    }
    for (const url of ['/q/%ED%A0%80', `/q/${'x'.repeat(3000)}`]) {
      const res = await t.app.inject({ method: 'GET', url });
      expect({ status: res.statusCode, code: res.json().error?.code, cache: res.headers['cache-control'] }).toEqual({
        status: 404,
        code: 'NOT_FOUND',
        cache: 'no-store',
      });
    }
  });

  it('answers every bad Socket.IO payload with {ok:false} and a client error code, and keeps the socket', async () => {
    const watcher = await connectWatcher(t.url, world.owner.accessToken);
    const room = `trip:${world.tripId}`;
    const payloads: unknown[] = [
      undefined,
      null,
      'x',
      5,
      [],
      {},
      { room: 5 },
      { room: `trip:${world.tripId}\u0000` },
      { room: 'trip:\ud800' },
      { room: 'x'.repeat(10_000) },
      { room: 'trip:not-a-uuid' },
      { room: `trip:${randomUUID()}` },
      { room: 'nope:1' },
      { room: ':' },
      { room, sinceSeq: 'abc' },
      { room, sinceSeq: -1 },
      { room, sinceSeq: 1e300 },
      { room, sinceSeq: 1.5 },
      { room, extra: 1 },
      { room: INJECTIONS[0] },
    ];
    const wrong: string[] = [];
    try {
      for (const event of ['subscribe', 'unsubscribe']) {
        for (const p of payloads) {
          const ack = await watcher.request<{ ok: boolean; error?: { code?: string } }>(event, p);
          const code = ack.error?.code ?? '';
          // Leaving a room one does not hold, named by any well-formed text, is a harmless no-op.
          const harmless =
            event === 'unsubscribe' &&
            ack.ok === true &&
            typeof (p as { room?: unknown })?.room === 'string' &&
            Object.keys(p as object).length === 1 &&
            !/[\ud800-\udfff]/.test((p as { room: string }).room) &&
            !(p as { room: string }).room.includes('\u0000');
          if (!harmless && (ack.ok !== false || !code || code === 'INTERNAL' || code === 'RATE_LIMITED'))
            wrong.push(`${event} ${JSON.stringify(p)?.slice(0, 80)} → ${JSON.stringify(ack)}`);
        }
      }
      // Still connected and serving: a good subscribe works.
      expect(await watcher.request('subscribe', { room })).toEqual({ ok: true });
      // A message over the transport's limit (64 KiB) ends that connection alone.
      const big = await connectWatcher(t.url, world.owner.accessToken);
      const closed = new Promise<void>((resolve) => big.socket.once('disconnect', () => resolve()));
      big.socket.emit('subscribe', { room: 'x'.repeat(100_000) });
      await closed;
      expect(await watcher.request('unsubscribe', { room })).toEqual({ ok: true });
      for (const p of [undefined, 5, {}, { token: 'not.a.jwt' }, { token: 'x'.repeat(10_000) }]) {
        const ack = await watcher
          .request<{ ok: boolean; error?: { code?: string } }>('auth', p, 2000)
          .catch(() => ({ ok: false, error: { code: 'DISCONNECTED' } }));
        if (ack.ok !== false || ack.error?.code === 'INTERNAL')
          wrong.push(`auth ${JSON.stringify(p)?.slice(0, 80)} → ${JSON.stringify(ack)}`);
      }
    } finally {
      watcher.close();
    }
    expect(wrong).toEqual([]);
  });

  interface Probe {
    what: string;
    method: string;
    url: string;
    token: string;
    payload?: string;
  }

  /** Sends the probes 8 at a time; collects each answer that `bad` refuses, and the slowest few. */
  async function probe(probes: Probe[], bad: (status: number, body: string) => boolean) {
    const failures: string[] = [];
    const slow: [number, string][] = [];
    await pool(probes, 8, async (p) => {
      const started = Date.now();
      const headers: Record<string, string> = { authorization: `Bearer ${p.token}`, 'idempotency-key': randomUUID() };
      if (p.payload !== undefined) headers['content-type'] = 'application/json';
      const res = await t.app.inject({ method: p.method as 'GET', url: p.url, headers, payload: p.payload });
      slow.push([Date.now() - started, `${p.what} ${res.statusCode}`]);
      if (bad(res.statusCode, res.body)) failures.push(`${p.what} → ${res.statusCode} ${res.body.slice(0, 160)}`);
    });
    return { failures, slowest: slow.sort((a, b) => b[0] - a[0]).slice(0, 5) };
  }

  const tokenFor = (route: RouteInfo) =>
    route.url.includes('/tracking/ping') ? world.w.driver.accessToken : world.owner.accessToken;
  const pathOf = (route: RouteInfo) =>
    fillPath(route.url, Object.fromEntries(route.params.map((p) => [p, world.ids[p] ?? randomUUID()])));

  it('takes injection strings in free-text fields as text: stored or refused with a 4xx, never a 5xx', async () => {
    const probes: Probe[] = [];
    for (const route of routes.filter((r) => r.bodySchema && !r.isPublic)) {
      const body = validBody(route);
      for (const leaf of leaves(route.bodySchema).filter((l) => l.kind === 'string' && !l.format)) {
        for (const s of [...INJECTIONS, 'null', '\u202e\u200b\ufeff', '\ud83d\ude9a'.repeat(50)]) {
          probes.push({
            what: `${route.method} ${route.url} ${leaf.path.join('.')}=${JSON.stringify(s).slice(0, 30)}`,
            method: route.method,
            url: pathOf(route),
            token: tokenFor(route),
            payload: JSON.stringify(setPath(body, leaf.path, s)),
          });
        }
      }
    }
    const { failures } = await probe(probes, (status, text) => {
      if (status < 300) return false;
      if (status >= 500) return true;
      try {
        return JSON.parse(text)?.success !== false;
      } catch {
        return true;
      }
    });
    console.log(`free-text injection: ${probes.length} requests`);
    expect(failures).toEqual([]);
  });

  it('takes the edge of every valid range without a 5xx: longest texts in multi-byte characters, extreme numbers and dates', async () => {
    const edges = (leaf: Leaf): unknown[] => {
      if (leaf.kind === 'string' && !leaf.format && leaf.maxLength !== undefined)
        return [
          'é'.repeat(leaf.maxLength),
          '\ud83d\ude9a'.repeat(Math.floor(leaf.maxLength / 2)),
          ' '.repeat(leaf.maxLength),
        ];
      if (leaf.kind === 'string' && leaf.format === 'datetime')
        return ['9999-12-31T23:59:59.999Z', '0001-01-01T00:00:00Z', '2026-01-01T00:00:00+14:00'];
      if (leaf.kind === 'string' && leaf.format === 'date') return ['9999-12-31', '0001-01-01'];
      if (leaf.kind === 'number') {
        const top = leaf.max ?? (leaf.int ? Number.MAX_SAFE_INTEGER : 1e300);
        const bottom = leaf.min ?? (leaf.int ? Number.MIN_SAFE_INTEGER : -1e300);
        return [top, bottom, ...(leaf.int ? [] : [5e-324])];
      }
      return [];
    };
    const probes: Probe[] = [];
    for (const route of routes.filter((r) => r.bodySchema && !r.isPublic)) {
      const body = validBody(route);
      for (const leaf of leaves(route.bodySchema))
        for (const value of edges(leaf))
          probes.push({
            what: `${route.method} ${route.url} ${leaf.path.join('.')}=${JSON.stringify(value).slice(0, 30)}`,
            method: route.method,
            url: pathOf(route),
            token: tokenFor(route),
            payload: JSON.stringify(setPath(body, leaf.path, value)),
          });
    }
    for (const route of routes.filter((r) => r.querySchema && !r.isPublic && r.method === 'GET')) {
      for (const leaf of leaves(route.querySchema)) {
        if (EDGE_SKIP.has(`GET ${route.url} ${leaf.path[0]}`)) continue;
        for (const value of edges(leaf))
          probes.push({
            what: `GET ${route.url}?${leaf.path[0]}=${String(value).slice(0, 30)}`,
            method: 'GET',
            url: `${pathOf(route)}?${qs({ [leaf.path[0]]: value })}`,
            token: world.owner.accessToken,
          });
      }
    }
    const { failures, slowest } = await probe(probes, (status) => status >= 500);
    console.log(`edge values: ${probes.length} requests; slowest (ms) ${JSON.stringify(slowest)}`);
    expect(failures).toEqual([]);
  });
});

/** Whether `null` is a valid value at `path` (a `.nullable()` field). */
function isNullableAt(schema: ZodType, path: string[]): boolean {
  let cur: any = schema;
  for (const k of path) {
    if (/^\d+$/.test(k)) {
      const d = unwrapDef(cur);
      cur = d.element;
    } else {
      const d = unwrapDef(cur);
      cur = d.shape?.[k] ?? (d.options ?? []).map((o: any) => unwrapDef(o).shape?.[k]).find(Boolean);
    }
    if (!cur) return false;
  }
  return cur.safeParse(null).success;
}

function unwrapDef(s: any): any {
  let d = s._zod.def;
  while (['optional', 'default', 'nullable', 'pipe', 'prefault', 'readonly'].includes(d.type))
    d = (d.type === 'pipe' ? (d.in._zod.def.type === 'transform' ? d.out : d.in) : d.innerType)._zod.def;
  return d;
}

void kindOf;
