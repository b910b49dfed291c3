import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { ZodType } from 'zod';
import { AppConfig } from '../../src/infra/config/config';
import { newMember, TestUser } from './factories';
import { recordFastifyRoutes, RouteInfo, routeTable } from './route-table';
import { Api, startTestApp, TestApp } from './test-app';
import { activeTrip, newWorld, TripWorld } from './trips-fixtures';
import { Hints, sample } from './zod-samples';

/**
 * An org with one of every resource the API serves (the sweeps' world): org A
 * (`w.source`) trades with `w.destination`, owns a truck, a driver (with a
 * tracker token), an active trip with points, a ledger account with an
 * invoice, a payment and their entries, a trip thread and an account thread
 * with a message carrying an attachment, a QR tag (scanned once), a QR batch,
 * an access code and a STAFF member.
 *
 * `ids` maps every path-parameter name the routes use to A's resource: the
 * sweeps look route parameters up in it by name. A new route with a new
 * parameter name needs one line here (create the resource in `buildOrgWorld`,
 * add `<paramName>: id`); until then the tenant sweep fails naming it.
 */
export interface OrgWorld {
  w: TripWorld;
  owner: TestUser;
  staff: TestUser;
  tripId: string;
  ids: Record<string, string>;
  /** Request-body fields that name one of A's resources (ledger, QR, chat...): field name → id. */
  bodyIds: Record<string, string>;
}

/** An app with the sweeps' settings, and its route table (every route it serves). */
export async function startSweptApp(): Promise<{ t: TestApp; routes: RouteInfo[] }> {
  let served = new Set<string>();
  const t = await startTestApp(await sweepOverrides(), (app) => {
    served = recordFastifyRoutes(app);
  });
  return { t, routes: routeTable(t.app, served) };
}

/** Settings the sweeps need: attachments on a private folder and rate limits out of the way. */
export async function sweepOverrides(): Promise<Partial<AppConfig>> {
  const dir = await mkdtemp(join(tmpdir(), 'waybill-sweep-'));
  return {
    chatAttachmentTypes: ['image/png', 'image/jpeg', 'application/pdf'],
    storage: {
      driver: 'local',
      dir,
      timeoutMs: 5000,
      breakerResetMs: 200,
      s3: { bucket: '', region: '', endpoint: '', accessKeyId: '', secretAccessKey: '', forcePathStyle: false },
    },
    authRateLimitPerMinute: 1_000_000,
    authRateLimitPerPhonePerMinute: 1_000_000,
    qrPublicRateLimitPerMinute: 1_000_000,
    osmandUnknownTokenLimitPerMinute: 1_000_000,
    realtimeSubscribesPerSecond: 100_000,
  };
}

/** A minimal PNG header: enough for the type sniffer. */
export function pngBytes(size = 256): Buffer {
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const head = Buffer.concat([sig, Buffer.from([0, 0, 0, 13]), Buffer.from('IHDR')]);
  return Buffer.concat([head, Buffer.alloc(size - head.length, 7)]);
}

export async function uploadAttachment(t: TestApp, who: TestUser): Promise<string> {
  const form = new FormData();
  form.append('file', new Blob([new Uint8Array(pngBytes())]), 'proof.png');
  const res = await fetch(`${t.url}/api/v1/attachments`, {
    method: 'POST',
    headers: { authorization: `Bearer ${who.accessToken}` },
    body: form,
  });
  const body = (await res.json()) as any;
  if (res.status !== 201) throw new Error(`attachment: ${res.status} ${JSON.stringify(body)}`);
  return body.data.id;
}

async function ok(what: string, p: Promise<{ status: number; body: any }>): Promise<any> {
  const res = await p;
  if (res.status >= 300) throw new Error(`${what}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.data;
}

export async function buildOrgWorld(t: TestApp): Promise<OrgWorld> {
  const api: Api = t.api;
  const w = await newWorld(api);
  const owner = w.source.owner;
  const as = { token: owner.accessToken };
  const idem = () => ({ token: owner.accessToken, headers: { 'idempotency-key': randomUUID() } });
  const [trip, staff] = await Promise.all([activeTrip(api, w), newMember(api, w.source, 'STAFF')]);
  await ok(
    'pings',
    api.post(
      '/tracking/ping',
      { tripId: trip.id, locations: [{ latitude: 26.92, longitude: 75.79, timestamp: new Date().toISOString() }] },
      { token: w.driver.accessToken },
    ),
  );
  const account = await ok(
    'account',
    api.post(`/orgs/${w.source.id}/accounts`, { counterpartyOrgId: w.destination.id }, as),
  );
  const invoice = await ok(
    'invoice',
    api.post(`/ledger/accounts/${account.id}/invoices`, { number: 'SW-1', amount: 5000, tripId: trip.id }, idem()),
  );
  const payment = await ok(
    'payment',
    api.post(`/ledger/accounts/${account.id}/payments`, { amount: 1000, method: 'UPI', invoiceId: invoice.id }, idem()),
  );
  const thread = await ok('thread', api.post('/chat/threads', { tripId: trip.id }, as));
  const accountThread = await ok('account thread', api.post('/chat/threads', { accountId: account.id }, as));
  const attachmentId = await uploadAttachment(t, owner);
  const message = await ok(
    'message',
    api.post(
      `/chat/threads/${thread.id}/messages`,
      { body: 'loaded', clientMessageId: randomUUID(), attachmentIds: [attachmentId] },
      as,
    ),
  );
  const tag = await ok(
    'tag',
    api.post('/qr/tags', { orgId: w.source.id, entityType: 'TRUCK', entityId: w.truckId, title: 'Truck tag' }, as),
  );
  await ok('scan', api.post('/qr/scan', { code: tag.code, action: 'CHECK_IN', tripId: trip.id }, as));
  const batch = await ok(
    'batch',
    api.post(
      '/qr/batches',
      { orgId: w.source.id, items: [{ entityType: 'CARGO', entityId: 'c-1', title: 'Crate 1' }] },
      as,
    ),
  );
  const code = await ok(
    'access code',
    api.post(`/orgs/${w.source.id}/access-codes`, { label: 'Gate', role: 'STAFF', maxSessions: 5 }, as),
  );
  // The batch's job runs behind the answer: wait for it, so it writes nothing during a sweep.
  for (let i = 0; i < 500; i++) {
    const state = (await api.get(`/qr/batches/${batch.batchId}`, as)).body.data?.status;
    if (state === 'DONE' || state === 'FAILED') break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const invoiceId: string = invoice.id;
  const entryId: string = invoice.entries[0].id;
  const ids: Record<string, string> = {
    orgId: w.source.id,
    userId: staff.id,
    driverId: w.driverId,
    codeId: code.id,
    tripId: trip.id,
    accountId: account.id,
    entryId,
    threadId: thread.id,
    attachmentId,
    tagId: tag.id,
    batchId: batch.batchId,
    code: tag.code,
  };
  // Webhooks, once the app serves them: one endpoint, for `/orgs/:orgId/webhooks/:webhookId`. Subscribed to an
  // event no sweep causes, so no delivery runs during one; a literal public address (no DNS: the box may have none). If this
  // cannot be made, the tenant sweep names :webhookId.
  const hook = await api.post(
    `/orgs/${w.source.id}/webhooks`,
    { url: 'https://93.184.215.14/waybill-sweep', events: ['trip.arrived'], description: 'sweep' },
    as,
  );
  if (hook.status === 201) ids.webhookId = hook.body.data.id;
  const bodyIds: Record<string, string> = {
    tripId: trip.id,
    accountId: account.id,
    invoiceId,
    orgId: w.source.id,
    truckId: w.truckId,
    driverId: w.driverId,
    lastMessageId: message.id,
    attachmentId,
    code: tag.code,
    paymentId: payment.id,
    accountThreadId: accountThread.id,
  };
  return { w, owner, staff, tripId: trip.id, ids, bodyIds };
}

/**
 * Every table's row count and an order-independent checksum of its rows: two
 * snapshots are equal only if nothing was inserted, updated or deleted.
 * `skip` names `table.column`s that reads legitimately touch (last-seen times).
 */
export async function snapshotTables(sql: Client, skip: string[] = []): Promise<Record<string, string>> {
  // Background work started by the world's set-up (jobs, outboxes) may still be writing: wait until two
  // snapshots in a row agree, so the sweep compares against a settled database.
  let last = await snapshotOnce(sql, skip);
  for (let i = 0; i < 25; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const next = await snapshotOnce(sql, skip);
    if (JSON.stringify(next) === JSON.stringify(last)) return next;
    last = next;
  }
  return last;
}

async function snapshotOnce(sql: Client, skip: string[]): Promise<Record<string, string>> {
  const { rows: tables } = await sql.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables
      WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> '_prisma_migrations'
      ORDER BY table_name`,
  );
  const out: Record<string, string> = {};
  for (const { table_name: table } of tables) {
    const { rows: cols } = await sql.query<{ column_name: string }>(
      `SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`,
      [table],
    );
    const kept = cols.map((c) => c.column_name).filter((c) => !skip.includes(`${table}.${c}`));
    const row = kept.length ? `ROW(${kept.map((c) => `t."${c}"`).join(', ')})::text` : `''`;
    const { rows } = await sql.query<{ n: string; h: string }>(
      `SELECT count(*)::text AS n, coalesce(sum(hashtext(${row})::bigint), 0)::text AS h FROM "${table}" t`,
    );
    out[table] = `${rows[0].n} rows, sum ${rows[0].h}`;
  }
  return out;
}

/**
 * Body field values the generator cannot guess (`zod-samples.ts`), by field
 * name: the world's ids and a few formats. A new body field naming a resource
 * gets its value here (or in `bodyIds`).
 */
export function sweepHints(world: OrgWorld, extra: Hints = {}): Hints {
  return {
    ...world.bodyIds,
    phone: world.staff.phone,
    password: 'password-123',
    refreshToken: world.owner.refreshToken,
    counterpartyOrgId: world.w.destination.id,
    sourceOrgId: world.w.source.id,
    destinationOrgId: world.w.destination.id,
    latitude: 26.93,
    longitude: 75.8,
    lat: 26.93,
    lng: 75.8,
    currency: 'INR',
    ...extra,
  };
}

/** A body that passes the route's own schema (so each mutation tests one field, and a tenant call reaches its checks). */
export function validBodyFor(route: RouteInfo, world: OrgWorld, extra: Hints = {}, must?: string): unknown {
  const schema = route.bodySchema as ZodType;
  const h = sweepHints(world, extra);
  const tries = [
    // The required fields and `must` alone (one of two exclusive ids, e.g. a chat thread's accountId).
    ...(must ? [{ ...(sample(schema, h, '', false) as object), [must]: h[must] }] : []),
    sample(schema, h),
    sample(schema, h, '', false),
    // One of two exclusive ids (chat threads): the first optional id alone.
    sample(schema, { ...h, accountId: undefined }, '', false),
    { ...(sample(schema, h, '', false) as object), tripId: h.tripId },
  ];
  const ok = tries.find((b) => schema.safeParse(b).success);
  if (ok === undefined) {
    const err = schema.safeParse(tries[0]).error;
    throw new Error(
      `${route.method} ${route.url}: no valid body generated (${JSON.stringify(err?.issues)}); add a hint`,
    );
  }
  return JSON.parse(JSON.stringify(ok));
}
