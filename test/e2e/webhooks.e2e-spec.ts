import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { Client } from 'pg';
import { loadConfig } from '../../src/infra/config/config';
import { PingWriter } from '../../src/modules/tracking/ping-writer';
import { WebhookRelay } from '../../src/modules/webhooks/webhook-relay';
import { WebhooksService } from '../../src/modules/webhooks/webhooks.service';
import { verifySignature } from '../../src/modules/webhooks/webhook-signature';
import { newMember, newOrg, newUser, TestOrg, TestUser } from '../support/factories';
import { connectWatcher } from '../support/socket-client';
import { dropTestDatabase, startTestApp, TestApp } from '../support/test-app';
import { activeTrip, DELHI, moveTo, newTrip, newWorld, TripWorld } from '../support/trips-fixtures';

/** A delivery as the receiver saw it. */
interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  raw: string;
  body: { id: string; type: string; createdAt: string; orgId: string; data: any };
}

/**
 * A real HTTP receiver. `answer` decides, per request, what it does:
 * a status code, or 'hang' (never answers: the sender's timeout ends it).
 */
class Receiver {
  readonly received: Received[] = [];
  answer: (r: Received, nth: number) => number | 'hang' = () => 200;
  private server!: Server;
  private readonly hanging = new Set<ServerResponse>();
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const r: Received = { path: req.url ?? '', headers: req.headers, raw, body: JSON.parse(raw) };
        const nth = this.received.filter((x) => x.body.id === r.body.id && x.path === r.path).length + 1;
        this.received.push(r);
        const a = this.answer(r, nth);
        if (a === 'hang') {
          this.hanging.add(res);
          return;
        }
        res.statusCode = a;
        res.end(a >= 300 ? 'receiver says no' : 'ok');
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  on(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Polls until `check` returns a value (not undefined/false); fails the test after `ms`. */
async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, ms = 20_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Webhooks', () => {
  let t: TestApp;
  const receiver = new Receiver();
  beforeAll(async () => {
    await receiver.start();
    t = await startTestApp({
      arrivalRadiusM: 300,
      webhooks: {
        ...loadConfig({ NODE_ENV: 'test' }).webhooks,
        allowPrivate: true,
        timeoutMs: 400,
        retryFirstDelayMs: 50,
        retryWindowMs: 60_000,
        relayIntervalMs: 100,
        testRateLimitPerMinute: 3,
      },
    });
  });
  afterAll(async () => {
    await t.close();
    await receiver.close();
  });

  const auth = (u: TestUser) => ({ token: u.accessToken });
  let pathSeq = 0;
  async function endpoint(org: TestOrg, events: string[], who: TestUser = org.owner) {
    const path = `/hook-${++pathSeq}`;
    const res = await t.api.post(`/orgs/${org.id}/webhooks`, { url: receiver.url + path, events }, auth(who));
    expect(res.status).toBe(201);
    return { ...(res.body.data as { id: string; secret: string; url: string }), path };
  }
  const relay = () => t.app.get(WebhookRelay).drain();

  describe('endpoints', () => {
    let org: TestOrg;
    let other: TestOrg;
    beforeAll(async () => {
      [org, other] = await Promise.all([newOrg(t.api), newOrg(t.api)]);
    });

    it('creates (secret shown once), lists without secrets, pages, deletes (then 404)', async () => {
      const a = await endpoint(org, ['trip.status']);
      expect(a.secret).toMatch(/^whsec_/);
      const admin = await newMember(t.api, org, 'ADMIN');
      const b = await endpoint(org, ['qr.scan', 'ledger.invoice'], admin);
      const stored = await t.sql.query(`SELECT secret_ciphertext FROM webhook_endpoints WHERE id = $1`, [a.id]);
      expect(stored.rows[0].secret_ciphertext).not.toContain(a.secret);

      const page1 = await t.api.get(`/orgs/${org.id}/webhooks?limit=1`, auth(org.owner));
      expect(page1.status).toBe(200);
      expect(page1.body.data.map((e: { id: string }) => e.id)).toEqual([b.id]);
      expect(JSON.stringify(page1.body)).not.toContain('secret');
      const page2 = await t.api.get(
        `/orgs/${org.id}/webhooks?limit=1&cursor=${page1.body.meta.nextCursor}`,
        auth(org.owner),
      );
      expect(page2.body.data.map((e: { id: string }) => e.id)).toEqual([a.id]);
      expect(page2.body.data[0]).toMatchObject({ enabled: true, events: ['trip.status'], orgId: org.id });
      expect(JSON.stringify(page2.body)).not.toContain(a.secret);

      expect((await t.api.delete(`/orgs/${org.id}/webhooks/${a.id}`, auth(org.owner))).status).toBe(204);
      expect((await t.api.delete(`/orgs/${org.id}/webhooks/${a.id}`, auth(org.owner))).status).toBe(404);
      expect((await t.api.get(`/orgs/${org.id}/webhooks/${a.id}/deliveries`, auth(org.owner))).status).toBe(404);
      const after = await t.api.get(`/orgs/${org.id}/webhooks`, auth(org.owner));
      expect(after.body.data.map((e: { id: string }) => e.id)).toEqual([b.id]);
    });

    it('is for OWNER and ADMIN only (403); another org or a non-member gets 404', async () => {
      const hook = await endpoint(org, ['trip.status']);
      for (const role of ['STAFF', 'ACCOUNTANT', 'DRIVER']) {
        const m = await newMember(t.api, org, role);
        expect((await t.api.get(`/orgs/${org.id}/webhooks`, auth(m))).status).toBe(403);
        const create = await t.api.post(
          `/orgs/${org.id}/webhooks`,
          { url: `${receiver.url}/x`, events: ['trip.status'] },
          auth(m),
        );
        expect(create.status).toBe(403);
        expect((await t.api.delete(`/orgs/${org.id}/webhooks/${hook.id}`, auth(m))).status).toBe(403);
      }
      const stranger = await newUser(t.api);
      expect((await t.api.get(`/orgs/${org.id}/webhooks`, auth(stranger))).status).toBe(404);
      // Another org's endpoint through one's own org: 404.
      expect((await t.api.delete(`/orgs/${other.id}/webhooks/${hook.id}`, auth(other.owner))).status).toBe(404);
      expect((await t.api.get(`/orgs/${other.id}/webhooks/${hook.id}/deliveries`, auth(other.owner))).status).toBe(404);
      expect(
        (await t.api.post(`/orgs/${other.id}/webhooks/${hook.id}/test`, undefined, auth(other.owner))).status,
      ).toBe(404);
    });

    it('validates url and events (400, nothing created)', async () => {
      const bad: Record<string, unknown>[] = [
        { url: 'ftp://example.com/x', events: ['trip.status'] },
        { url: 'not a url', events: ['trip.status'] },
        { url: '/relative', events: ['trip.status'] },
        { url: `${receiver.url}/x`, events: [] },
        { url: `${receiver.url}/x`, events: ['trip.unknown'] },
        { url: `${receiver.url}/x` },
        { url: `${receiver.url}/x`, events: ['trip.status'], extra: 1 },
        { url: `${receiver.url}/x\u0000`, events: ['trip.status'] },
      ];
      const before = (await t.sql.query(`SELECT count(*)::int AS n FROM webhook_endpoints`)).rows[0].n;
      for (const body of bad) {
        const res = await t.api.post(`/orgs/${org.id}/webhooks`, body, auth(org.owner));
        expect({ body, status: res.status }).toEqual({ body, status: 400 });
        expect(res.body.success).toBe(false);
      }
      expect((await t.sql.query(`SELECT count(*)::int AS n FROM webhook_endpoints`)).rows[0].n).toBe(before);
    });

    it('sends a signed webhook.test on request, rate-limited per org (429 with Retry-After)', async () => {
      const o = await newOrg(t.api);
      const hook = await endpoint(o, ['qr.scan']);
      // An outsider's tries are 404 and spend nothing of the org's budget.
      const outsider = await newOrg(t.api);
      for (let i = 0; i < 5; i++) {
        const res = await t.api.post(`/orgs/${o.id}/webhooks/${hook.id}/test`, undefined, auth(outsider.owner));
        expect(res.status).toBe(404);
      }
      const res = await t.api.post(`/orgs/${o.id}/webhooks/${hook.id}/test`, undefined, auth(o.owner));
      expect(res.status).toBe(202);
      const got = await waitFor('the test event', async () => receiver.on(hook.path)[0]);
      expect(got.body).toMatchObject({ id: res.body.data.eventId, type: 'webhook.test', orgId: o.id });
      const ts = Number(got.headers['waybill-timestamp']);
      expect(verifySignature(hook.secret, ts, got.raw, String(got.headers['waybill-signature']))).toBe(true);
      expect(got.headers['waybill-event-id']).toBe(got.body.id);
      expect(got.headers['content-type']).toBe('application/json');
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++)
        statuses.push((await t.api.post(`/orgs/${o.id}/webhooks/${hook.id}/test`, undefined, auth(o.owner))).status);
      expect(statuses).toEqual([202, 202, 429]);
      // Another org's budget is its own.
      const o2 = await newOrg(t.api);
      const hook2 = await endpoint(o2, ['qr.scan']);
      expect((await t.api.post(`/orgs/${o2.id}/webhooks/${hook2.id}/test`, undefined, auth(o2.owner))).status).toBe(
        202,
      );
    });
  });

  describe('events', () => {
    let w: TripWorld;
    beforeAll(async () => {
      w = await newWorld(t.api);
    });

    it('a trip status change reaches both orgs, ARRIVED sends trip.status and trip.arrived', async () => {
      const src = await endpoint(w.source, ['trip.status', 'trip.arrived']);
      const dst = await endpoint(w.destination, ['trip.status', 'trip.arrived']);
      const trip = await activeTrip(t.api, w, 'IN_TRANSIT');
      await t.sql.query(`UPDATE trips SET created_at = now() - interval '2 hours' WHERE id = $1`, [trip.id]);
      // Arrival, detected by the after-flush round of a ping at the end point.
      const ping = await t.api.post(
        '/tracking/ping',
        {
          tripId: trip.id,
          locations: [
            { latitude: DELHI.lat, longitude: DELHI.lng, timestamp: new Date(Date.now() - 60_000).toISOString() },
          ],
        },
        auth(w.driver),
      );
      expect(ping.status).toBe(200);
      await t.app.get(PingWriter).drain();
      expect((await t.api.get(`/trips/${trip.id}`, auth(w.source.owner))).body.data.status).toBe('ARRIVED');
      await relay();
      for (const [hook, org] of [
        [src, w.source],
        [dst, w.destination],
      ] as const) {
        const seen = await waitFor('trip events', async () => {
          const r = receiver.on(hook.path).filter((x) => x.body.data.id === trip.id);
          return r.length >= 4 ? r : undefined;
        });
        const kinds = seen.map((r) => `${r.body.type}:${r.body.data.status}`).sort();
        expect(kinds).toEqual([
          'trip.arrived:ARRIVED',
          'trip.status:ARRIVED',
          'trip.status:IN_TRANSIT',
          'trip.status:LOADING',
        ]);
        for (const r of seen) {
          expect(r.body.orgId).toBe(org.id);
          expect(r.body.data).toMatchObject({
            id: trip.id,
            sourceOrgId: w.source.id,
            destinationOrgId: w.destination.id,
          });
          const ts = Number(r.headers['waybill-timestamp']);
          expect(verifySignature(hook.secret, ts, r.raw, String(r.headers['waybill-signature']))).toBe(true);
        }
      }
      // Each org's events have their own ids.
      const ids = new Set(receiver.received.filter((r) => r.body.data?.id === trip.id).map((r) => r.body.id));
      expect(ids.size).toBe(8);
    });

    it('writes the outbox row in the transaction of the change: a rolled-back change writes none', async () => {
      // A world of its own: the first test's driver is still on an ARRIVED trip.
      const w = await newWorld(t.api);
      const trip = await newTrip(t.api, w);
      await t.sql.query(`
        CREATE OR REPLACE FUNCTION test_refuse_cancel() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'refused at commit'; END $$`);
      await t.sql.query(`
        CREATE CONSTRAINT TRIGGER test_refuse_cancel AFTER UPDATE ON trips DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW WHEN (NEW.id = '${trip.id}'::uuid AND NEW.status = 'CANCELLED') EXECUTE FUNCTION test_refuse_cancel()`);
      try {
        const outboxOf = async () =>
          (await t.sql.query(`SELECT count(*)::int AS n FROM outbox_events WHERE data->>'id' = $1`, [trip.id])).rows[0]
            .n as number;
        const res = await t.api.post(`/trips/${trip.id}/status`, { status: 'CANCELLED' }, auth(w.source.owner));
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(await outboxOf()).toBe(0);
        expect((await t.api.get(`/trips/${trip.id}`, auth(w.source.owner))).body.data.status).toBe('PLANNED');
        await moveTo(t.api, w, trip.id, 'LOADING');
        expect(await outboxOf()).toBe(2);
      } finally {
        await t.sql.query(`DROP TRIGGER test_refuse_cancel ON trips`);
      }
    });

    it('a ledger invoice reaches both orgs of the account', async () => {
      const [a, b] = await Promise.all([newOrg(t.api), newOrg(t.api)]);
      const ha = await endpoint(a, ['ledger.invoice']);
      const hb = await endpoint(b, ['ledger.invoice', 'ledger.payment']);
      const acc = await t.api.post(`/orgs/${a.id}/accounts`, { counterpartyOrgId: b.id }, auth(a.owner));
      expect(acc.status).toBe(201);
      const inv = await t.api.post(
        `/ledger/accounts/${acc.body.data.id}/invoices`,
        { number: 'INV-1', amount: 12_345 },
        { ...auth(a.owner), headers: { 'idempotency-key': 'wh-inv-1' } },
      );
      expect(inv.status).toBe(201);
      for (const [hook, org] of [
        [ha, a],
        [hb, b],
      ] as const) {
        const got = await waitFor('the invoice event', async () => receiver.on(hook.path)[0]);
        expect(got.body).toMatchObject({ type: 'ledger.invoice', orgId: org.id });
        expect(got.body.data).toMatchObject({ id: inv.body.data.id, number: 'INV-1', amount: 12_345 });
      }
    });

    it('a QR scan reaches the tag’s org only', async () => {
      const [org, other] = await Promise.all([newOrg(t.api), newOrg(t.api)]);
      const mine = await endpoint(org, ['qr.scan']);
      const theirs = await endpoint(other, ['qr.scan']);
      const tag = await t.api.post(
        '/qr/tags',
        { orgId: org.id, entityType: 'CARGO', entityId: 'bag-1', title: 'Bag 1' },
        auth(org.owner),
      );
      expect(tag.status).toBe(201);
      const scan = await t.api.post('/qr/scan', { code: tag.body.data.code, action: 'VIEW' }, auth(other.owner));
      expect(scan.status).toBe(201);
      const got = await waitFor('the scan event', async () => receiver.on(mine.path)[0]);
      expect(got.body).toMatchObject({ type: 'qr.scan', orgId: org.id });
      expect(got.body.data.tag).toMatchObject({ id: tag.body.data.id, scanCount: 1 });
      expect(got.body.data.scan).toMatchObject({ id: scan.body.data.scan.id, action: 'VIEW' });
      await relay();
      expect(receiver.on(theirs.path)).toHaveLength(0);
    });
  });

  it('disables an endpoint failing for WEBHOOK_DISABLE_AFTER_MS and tells the org (webhook.disabled)', async () => {
    const org = await newOrg(t.api);
    const failing = await endpoint(org, ['qr.scan']);
    const watcher = await endpoint(org, ['webhook.disabled']);
    const previous = receiver.answer;
    receiver.answer = (r, nth) => (r.path === failing.path ? 503 : previous(r, nth));
    // The org's room is told too, live.
    const socket = await connectWatcher(t.url, org.owner.accessToken);
    try {
      expect((await socket.request('subscribe', { room: `org:${org.id}` })).ok).toBe(true);
      // Failing since longer than the limit (24 h by default): the next failure disables it.
      await t.sql.query(`UPDATE webhook_endpoints SET failing_since = now() - interval '25 hours' WHERE id = $1`, [
        failing.id,
      ]);
      const res = await t.api.post(`/orgs/${org.id}/webhooks/${failing.id}/test`, undefined, auth(org.owner));
      expect(res.status).toBe(202);
      const told = await waitFor('the webhook.disabled event', async () => receiver.on(watcher.path)[0]);
      expect(told.body).toMatchObject({ type: 'webhook.disabled', orgId: org.id, data: { webhookId: failing.id } });
      await socket.waitFor((x) => x.inRoom(`org:${org.id}`, 'webhook.disabled').length > 0, 'webhook.disabled');
      expect(socket.inRoom(`org:${org.id}`, 'webhook.disabled')[0]).toMatchObject({
        webhookId: failing.id,
        reason: 'FAILING',
        disabledAt: told.body.data.disabledAt,
      });
      const list = await t.api.get(`/orgs/${org.id}/webhooks`, auth(org.owner));
      const row = list.body.data.find((e: { id: string }) => e.id === failing.id);
      expect(row).toMatchObject({ enabled: false });
      expect(row.disabledAt).not.toBeNull();
      // Its pending delivery ended with it, and a new event for it is never sent.
      const states = await t.sql.query(`SELECT status FROM webhook_deliveries WHERE endpoint_id = $1`, [failing.id]);
      expect(states.rows.map((r) => r.status)).toEqual(['FAILED']);
      const sent = receiver.on(failing.path).length;
      const [d] = (
        await t.sql.query(
          `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, body)
           VALUES (gen_random_uuid(), $1, gen_random_uuid(), 'qr.scan', '{}') RETURNING id`,
          [failing.id],
        )
      ).rows;
      expect(await t.app.get(WebhooksService).deliver(d.id)).toBe('skipped');
      expect(receiver.on(failing.path)).toHaveLength(sent);
    } finally {
      receiver.answer = previous;
      socket.close();
    }
  });

  it('retries through a timeout and a 500 until the receiver recovers; every event arrives, each attempt is logged', async () => {
    const org = await newOrg(t.api);
    const hook = await endpoint(org, ['qr.scan']);
    // Per event: the first attempt hangs (past WEBHOOK_TIMEOUT_MS), the second is a 500, then 200.
    const previous = receiver.answer;
    receiver.answer = (r, nth) =>
      r.path !== hook.path ? previous(r, nth) : nth === 1 ? 'hang' : nth === 2 ? 500 : 200;
    try {
      const tag = await t.api.post(
        '/qr/tags',
        { orgId: org.id, entityType: 'CARGO', entityId: 'crate', title: 'Crate' },
        auth(org.owner),
      );
      const scans: string[] = [];
      for (let i = 0; i < 3; i++) {
        const s = await t.api.post('/qr/scan', { code: tag.body.data.code, action: 'VIEW' }, auth(org.owner));
        expect(s.status).toBe(201);
        scans.push(s.body.data.scan.id);
      }
      const delivered = await waitFor('every event answered 200', async () => {
        const ok = receiver
          .on(hook.path)
          .filter((_, i, all) => all.slice(0, i).filter((x) => x.body.id === all[i].body.id).length === 2);
        return ok.length === 3 ? ok : undefined;
      });
      expect(delivered.map((r) => r.body.data.scan.id).sort()).toEqual([...scans].sort());
      for (const r of receiver.on(hook.path)) {
        const ts = Number(r.headers['waybill-timestamp']);
        expect(verifySignature(hook.secret, ts, r.raw, String(r.headers['waybill-signature']))).toBe(true);
      }
      const log = await waitFor('nine attempts logged', async () => {
        const res = await t.api.get(`/orgs/${org.id}/webhooks/${hook.id}/deliveries?limit=100`, auth(org.owner));
        return res.body.data.length === 9 ? res.body.data : undefined;
      });
      const byEvent = new Map<string, any[]>();
      for (const a of log) byEvent.set(a.eventId, [...(byEvent.get(a.eventId) ?? []), a]);
      expect(byEvent.size).toBe(3);
      for (const attempts of byEvent.values()) {
        attempts.sort((x, y) => x.attempt - y.attempt);
        expect(attempts.map((a) => [a.attempt, a.statusCode])).toEqual([
          [1, null],
          [2, 500],
          [3, 200],
        ]);
        expect(attempts[0].error).toMatch(/no answer within/);
        expect(attempts[0].nextRetryAt).not.toBeNull();
        expect(attempts[1].nextRetryAt).not.toBeNull();
        expect(attempts[2]).toMatchObject({ error: null, nextRetryAt: null, eventType: 'qr.scan' });
      }
      // Newest first; pages of one.
      const times = log.map((a: { createdAt: string }) => Date.parse(a.createdAt));
      expect([...times].sort((x, y) => y - x)).toEqual(times);
      const p1 = await t.api.get(`/orgs/${org.id}/webhooks/${hook.id}/deliveries?limit=1`, auth(org.owner));
      expect(p1.body.data[0].id).toBe(log[0].id);
      const p2 = await t.api.get(
        `/orgs/${org.id}/webhooks/${hook.id}/deliveries?limit=1&cursor=${p1.body.meta.nextCursor}`,
        auth(org.owner),
      );
      expect(p2.body.data[0].id).toBe(log[1].id);
    } finally {
      receiver.answer = previous;
    }
  });
});

describe('Webhooks: private addresses refused', () => {
  let t: TestApp;
  let org: TestOrg;
  const receiver = new Receiver();
  beforeAll(async () => {
    await receiver.start();
    t = await startTestApp();
    org = await newOrg(t.api);
  });
  afterAll(async () => {
    await t.close();
    await receiver.close();
  });

  it('refuses private, loopback and link-local hosts at creation (400)', async () => {
    expect(t.config.webhooks.allowPrivate).toBe(false);
    for (const url of [
      receiver.url,
      'http://localhost:8080/',
      'http://10.1.2.3/',
      'http://169.254.169.254/latest/meta-data',
      'http://[::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://100.64.0.1/',
      'http://0.0.0.0/',
    ]) {
      const res = await t.api.post(
        `/orgs/${org.id}/webhooks`,
        { url, events: ['qr.scan'] },
        { token: org.owner.accessToken },
      );
      expect({ url, status: res.status }).toEqual({ url, status: 400 });
    }
  });

  it('checks again at delivery time: an endpoint that points at a private address gets nothing', async () => {
    // As if the address had changed after creation.
    const [row] = (
      await t.sql.query(
        `INSERT INTO webhook_endpoints (id, org_id, url, events, secret_ciphertext, created_by_id)
         VALUES (gen_random_uuid(), $1, $2, ARRAY['qr.scan'], 'x', $3) RETURNING id`,
        [org.id, `${receiver.url}/private`, org.owner.id],
      )
    ).rows;
    // The secret cannot be opened ('x'): use a real one through the API's key instead.
    const created = await startSecret(t, org);
    await t.sql.query(`UPDATE webhook_endpoints SET secret_ciphertext = $2 WHERE id = $1`, [row.id, created]);
    const res = await t.api.post(`/orgs/${org.id}/webhooks/${row.id}/test`, undefined, {
      token: org.owner.accessToken,
    });
    expect(res.status).toBe(202);
    const log = await waitFor('the refused attempt', async () => {
      const r = await t.api.get(`/orgs/${org.id}/webhooks/${row.id}/deliveries`, { token: org.owner.accessToken });
      return r.body.data.length > 0 ? r.body.data : undefined;
    });
    // A retry may already have followed (full jitter can draw a short delay): every attempt was refused.
    expect(log[log.length - 1]).toMatchObject({ attempt: 1, statusCode: null });
    for (const a of log) expect(a.error).toMatch(/private, loopback or link-local/);
    expect(receiver.received).toHaveLength(0);
  });
});

/** A sealed secret made with the app's key (the one the service opens). */
async function startSecret(t: TestApp, _org: TestOrg): Promise<string> {
  const { sealSecret } = await import('../../src/modules/webhooks/webhook-secret-box');
  return sealSecret(t.config.webhooks.secretKey, 'whsec_test');
}

describe('Webhooks: shutdown', () => {
  it('finishes the attempt in flight before the app closes (the attempt is logged)', async () => {
    const receiver = new Receiver();
    await receiver.start();
    receiver.answer = () => 'hang';
    const t = await startTestApp({
      webhooks: { ...loadConfig({ NODE_ENV: 'test' }).webhooks, allowPrivate: true, timeoutMs: 1500 },
    });
    const databaseUrl = t.config.databaseUrl;
    const sql = new Client({ connectionString: databaseUrl });
    await sql.connect();
    let closed = false;
    try {
      const org = await newOrg(t.api);
      const created = await t.api.post(
        `/orgs/${org.id}/webhooks`,
        { url: `${receiver.url}/slow`, events: ['qr.scan'] },
        { token: org.owner.accessToken },
      );
      const hookId = created.body.data.id as string;
      expect(
        (await t.api.post(`/orgs/${org.id}/webhooks/${hookId}/test`, undefined, { token: org.owner.accessToken }))
          .status,
      ).toBe(202);
      await waitFor('the attempt to start', async () => receiver.received.length > 0);
      // Close the app (as SIGTERM does) while the attempt waits for its answer; keep the database to look at it.
      await t.app.close();
      closed = true;
      const rows = await sql.query(`SELECT attempt, status_code, error FROM webhook_attempts WHERE endpoint_id = $1`, [
        hookId,
      ]);
      expect(rows.rows).toEqual([{ attempt: 1, status_code: null, error: expect.stringMatching(/no answer within/) }]);
      const d = await sql.query(`SELECT status, locked_until FROM webhook_deliveries WHERE endpoint_id = $1`, [hookId]);
      expect(d.rows[0]).toMatchObject({ status: 'PENDING', locked_until: null });
    } finally {
      await sql.end();
      if (closed) {
        await t.sql.end();
        await dropTestDatabase(databaseUrl);
      } else await t.close();
      await receiver.close();
    }
  });
});
