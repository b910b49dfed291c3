import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { threadRoom } from '../../src/infra/realtime/realtime-publisher';
import { StorageService } from '../../src/infra/storage/storage.service';
import { AttachmentsService } from '../../src/modules/chat/attachments.service';
import { newOrg, newUser, TestUser } from '../support/factories';
import { connectWatcher, Watcher } from '../support/socket-client';
import { startTestApp, TestApp } from '../support/test-app';
import { newMember, newTrip, newWorld, TripWorld } from '../support/trips-fixtures';

// Above the JSON body limit (1 MiB): uploads are streamed, not held to it.
const MAX = 1536 * 1024;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const PDF_HEAD = Buffer.from('%PDF-1.4\n%âãÏÓ\n1 0 obj\n<<>>\nendobj\n');

/** Bytes a sniffer calls image/png: the signature, an IHDR chunk header, then padding to `size`. */
function png(size: number): Buffer {
  const head = Buffer.concat([PNG_SIGNATURE, Buffer.from([0, 0, 0, 13]), Buffer.from('IHDR')]);
  return Buffer.concat([head, Buffer.alloc(size - head.length, 7)]);
}

describe('chat', () => {
  let t: TestApp;
  let storageDir: string;
  let w: TripWorld;
  let tripId: string;
  const open: Watcher[] = [];
  const auth = (u: TestUser) => ({ token: u.accessToken });

  beforeAll(async () => {
    storageDir = await mkdtemp(join(tmpdir(), 'waybill-chat-'));
    t = await startTestApp({
      chatAttachmentMaxBytes: MAX,
      chatAttachmentTypes: ['image/png', 'image/jpeg', 'image/webp', 'application/pdf'],
      realtimeReauthorizeMs: 60_000,
      storage: {
        driver: 'local',
        dir: storageDir,
        timeoutMs: 5000,
        breakerResetMs: 200,
        s3: { bucket: '', region: '', endpoint: '', accessKeyId: '', secretAccessKey: '', forcePathStyle: false },
      },
    });
    w = await newWorld(t.api);
    tripId = (await newTrip(t.api, w)).id;
  });
  afterEach(() => {
    for (const s of open.splice(0)) s.close();
  });
  afterAll(async () => {
    await t?.close();
    await rm(storageDir, { recursive: true, force: true });
  });

  async function tripThread(trip = tripId, who = w.source.owner): Promise<string> {
    const res = await t.api.post('/chat/threads', { tripId: trip }, auth(who));
    if (res.status !== 201 && res.status !== 200) throw new Error(`thread: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.data.id;
  }

  async function send(who: TestUser, threadId: string, body: string, extra: Record<string, unknown> = {}) {
    return t.api.post(
      `/chat/threads/${threadId}/messages`,
      { body, clientMessageId: `c-${Math.random()}`, ...extra },
      auth(who),
    );
  }

  async function upload(who: TestUser, bytes: Buffer, filename: string) {
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(bytes)]), filename);
    const res = await fetch(`${t.url}/api/v1/attachments`, {
      method: 'POST',
      headers: { authorization: `Bearer ${who.accessToken}` },
      body: form,
    });
    return { status: res.status, body: (await res.json()) as any };
  }

  async function watch(who: TestUser): Promise<Watcher> {
    const s = await connectWatcher(t.url, who.accessToken);
    open.push(s);
    return s;
  }

  describe('threads and membership', () => {
    it('has one thread per trip: 201, then 200 with the same thread for anyone who may see the trip', async () => {
      const trip = await newTrip(t.api, w);
      const first = await t.api.post('/chat/threads', { tripId: trip.id, title: 'Load 7' }, auth(w.source.owner));
      expect(first.status).toBe(201);
      expect(first.body.data).toMatchObject({
        tripId: trip.id,
        accountId: null,
        title: 'Load 7',
        unreadCount: 0,
        lastMessageAt: null,
      });
      const again = await t.api.post('/chat/threads', { tripId: trip.id }, auth(w.destination.owner));
      expect(again.status).toBe(200);
      expect(again.body.data.id).toBe(first.body.data.id);
      expect(await t.sql.query('SELECT 1 FROM chat_threads WHERE trip_id = $1', [trip.id])).toHaveProperty(
        'rowCount',
        1,
      );
    });

    it('refuses a create naming both or neither of tripId and accountId (400)', async () => {
      for (const body of [{}, { tripId, accountId: tripId }]) {
        const res = await t.api.post('/chat/threads', body, auth(w.source.owner));
        expect(res.status).toBe(400);
        expect(res.body.error.code).toBe('VALIDATION_FAILED');
      }
    });

    it("trip thread: the trip's driver and the two orgs' members are in; another driver of the org and strangers get 404", async () => {
      const threadId = await tripThread();
      const otherDriver = await newMember(t.api, w.source, 'DRIVER');
      const accountant = await newMember(t.api, w.destination, 'ACCOUNTANT');
      const staff = await newMember(t.api, w.source, 'STAFF');
      const stranger = await newUser(t.api);
      for (const who of [w.driver, accountant, staff, w.destination.owner]) {
        expect((await t.api.get(`/chat/threads/${threadId}`, auth(who))).status).toBe(200);
        expect((await send(who, threadId, 'hello')).status).toBe(201);
      }
      for (const who of [otherDriver, stranger]) {
        expect((await t.api.get(`/chat/threads/${threadId}`, auth(who))).status).toBe(404);
        expect((await t.api.get(`/chat/threads/${threadId}/messages`, auth(who))).status).toBe(404);
        const refused = await send(who, threadId, 'let me in');
        expect(refused.status).toBe(404);
        expect(refused.body.error.code).toBe('NOT_FOUND');
        expect((await t.api.post('/chat/threads', { tripId }, auth(who))).status).toBe(404);
        const list = await t.api.get('/chat/threads', auth(who));
        expect(list.body.data.map((x: { id: string }) => x.id)).not.toContain(threadId);
      }
    });

    it('account thread: OWNER, ADMIN and ACCOUNTANT of either org are in; STAFF and DRIVER members get 404', async () => {
      const [a, b] = await Promise.all([newOrg(t.api), newOrg(t.api)]);
      const acct = await t.api.post(`/orgs/${a.id}/accounts`, { counterpartyOrgId: b.id }, auth(a.owner));
      expect(acct.status).toBe(201);
      const accountId = acct.body.data.id;
      const accountantB = await newMember(t.api, b, 'ACCOUNTANT');
      const adminA = await newMember(t.api, a, 'ADMIN');
      const staffA = await newMember(t.api, a, 'STAFF');
      const driverB = await newMember(t.api, b, 'DRIVER');

      const created = await t.api.post('/chat/threads', { accountId }, auth(accountantB));
      expect(created.status).toBe(201);
      const threadId = created.body.data.id;
      expect(created.body.data).toMatchObject({ accountId, tripId: null });
      expect((await t.api.post('/chat/threads', { accountId }, auth(a.owner))).status).toBe(200);
      for (const who of [a.owner, adminA, accountantB, b.owner]) {
        expect((await t.api.get(`/chat/threads/${threadId}`, auth(who))).status).toBe(200);
      }
      for (const who of [staffA, driverB, w.source.owner]) {
        expect((await t.api.get(`/chat/threads/${threadId}`, auth(who))).status).toBe(404);
        expect((await send(who, threadId, 'hi')).status).toBe(404);
        expect((await t.api.post('/chat/threads', { accountId }, auth(who))).status).toBe(404);
      }
    });

    it('selects thread fields with ?fields= and refuses unknown ones', async () => {
      const threadId = await tripThread();
      const one = await t.api.get(`/chat/threads/${threadId}?fields=id,unreadCount`, auth(w.source.owner));
      expect(Object.keys(one.body.data).sort()).toEqual(['id', 'unreadCount']);
      const list = await t.api.get('/chat/threads?fields=id', auth(w.source.owner));
      expect(Object.keys(list.body.data[0])).toEqual(['id']);
      const bad = await t.api.get(`/chat/threads/${threadId}?fields=id,secret`, auth(w.source.owner));
      expect(bad.status).toBe(400);
    });

    it('a member removed from the org loses the thread and its room at once', async () => {
      const threadId = await tripThread();
      const staff = await newMember(t.api, w.destination, 'STAFF');
      const s = await watch(staff);
      expect(await s.request('subscribe', { room: threadRoom(threadId) })).toEqual({ ok: true });
      const del = await t.api.delete(`/orgs/${w.destination.id}/members/${staff.id}`, auth(w.destination.owner));
      expect(del.status).toBe(204);
      await s.waitFor((x) => x.events.some((e) => e.event === 'room.revoked'), 'thread room revoked');
      expect(s.events.find((e) => e.event === 'room.revoked')).toMatchObject({ room: threadRoom(threadId) });
      expect((await t.api.get(`/chat/threads/${threadId}`, auth(staff))).status).toBe(404);
      expect((await send(staff, threadId, 'still here?')).status).toBe(404);
    });
  });

  describe('messages', () => {
    it('answers the first message (200) for a repeated clientMessageId, and stores one row under 20 concurrent sends', async () => {
      const threadId = await tripThread();
      const body = { body: 'once', clientMessageId: 'phone-1-msg-1' };
      const first = await t.api.post(`/chat/threads/${threadId}/messages`, body, auth(w.driver));
      expect(first.status).toBe(201);
      const again = await t.api.post(`/chat/threads/${threadId}/messages`, body, auth(w.driver));
      expect(again.status).toBe(200);
      expect(again.body.data).toEqual(first.body.data);
      // The same id from another sender is another message.
      const other = await t.api.post(`/chat/threads/${threadId}/messages`, body, auth(w.source.owner));
      expect(other.status).toBe(201);

      const burst = { body: 'burst', clientMessageId: 'phone-1-msg-2' };
      const answers = await Promise.all(
        Array.from({ length: 20 }, () => t.api.post(`/chat/threads/${threadId}/messages`, burst, auth(w.driver))),
      );
      expect(answers.filter((r) => r.status === 201)).toHaveLength(1);
      expect(answers.filter((r) => r.status === 200)).toHaveLength(19);
      expect(new Set(answers.map((r) => r.body.data.id)).size).toBe(1);
      const rows = await t.sql.query(
        `SELECT count(*)::int AS n FROM chat_messages WHERE thread_id = $1 AND client_message_id = 'phone-1-msg-2'`,
        [threadId],
      );
      expect(rows.rows[0].n).toBe(1);
    });

    it('stores the body trimmed and refuses empty, too long, NUL and unpaired surrogates (400 naming body)', async () => {
      const threadId = await tripThread();
      const ok = await send(w.driver, threadId, '  <b>"Reached" ₹500 😀</b>\n ');
      expect(ok.status).toBe(201);
      expect(ok.body.data).toMatchObject({ body: '<b>"Reached" ₹500 😀</b>', threadId, senderId: w.driver.id });
      expect((await send(w.driver, threadId, '😀'.repeat(4000))).status).toBe(201);
      for (const raw of [
        JSON.stringify({ body: '   ', clientMessageId: 'e1' }),
        JSON.stringify({ body: 'x'.repeat(4001), clientMessageId: 'e2' }),
        JSON.stringify({ body: 'a\u0000b', clientMessageId: 'e3' }),
        '{"body":"a\\ud800b","clientMessageId":"e4"}',
      ]) {
        const res = await t.api.post(`/chat/threads/${threadId}/messages`, undefined, { ...auth(w.driver), raw });
        expect(res.status).toBe(400);
        expect(res.body.error.code).toBe('VALIDATION_FAILED');
        expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain('body');
      }
    });

    it('pages newest first, and a page continues where it left off while new messages arrive', async () => {
      const threadId = await tripThread(await newTrip(t.api, w).then((x) => x.id));
      for (let i = 1; i <= 5; i++) expect((await send(w.driver, threadId, `m${i}`)).status).toBe(201);
      const p1 = await t.api.get(`/chat/threads/${threadId}/messages?limit=2`, auth(w.source.owner));
      expect(p1.body.data.map((m: { body: string }) => m.body)).toEqual(['m5', 'm4']);
      for (let i = 6; i <= 8; i++) await send(w.driver, threadId, `m${i}`);
      const p2 = await t.api.get(
        `/chat/threads/${threadId}/messages?limit=2&cursor=${p1.body.meta.nextCursor}`,
        auth(w.source.owner),
      );
      expect(p2.body.data.map((m: { body: string }) => m.body)).toEqual(['m3', 'm2']);
      const p3 = await t.api.get(
        `/chat/threads/${threadId}/messages?limit=2&cursor=${p2.body.meta.nextCursor}`,
        auth(w.source.owner),
      );
      expect(p3.body.data.map((m: { body: string }) => m.body)).toEqual(['m1']);
      expect(p3.body.meta.nextCursor).toBeNull();
      const bad = await t.api.get(`/chat/threads/${threadId}/messages?cursor=nope`, auth(w.source.owner));
      expect(bad.status).toBe(400);
    });

    it('counts unread per user: others’ messages after the read marker, which never moves back', async () => {
      const threadId = await tripThread(await newTrip(t.api, w).then((x) => x.id));
      const reader = await newMember(t.api, w.destination, 'STAFF');
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await send(w.driver, threadId, `u${i}`)).body.data.id);
      const unread = async (who: TestUser) =>
        (await t.api.get(`/chat/threads/${threadId}`, auth(who))).body.data.unreadCount;
      expect(await unread(w.driver)).toBe(0);
      expect(await unread(reader)).toBe(3);
      expect(await unread(w.source.owner)).toBe(3);
      const read = (who: TestUser, id: string) =>
        t.api.post(`/chat/threads/${threadId}/read`, { lastMessageId: id }, auth(who));
      expect((await read(reader, ids[1])).status).toBe(204);
      expect(await unread(reader)).toBe(1);
      expect((await read(reader, ids[0])).status).toBe(204);
      expect(await unread(reader)).toBe(1);
      expect(await unread(w.source.owner)).toBe(3);
      await send(reader, threadId, 'my own reply');
      expect(await unread(reader)).toBe(1);
      expect(await unread(w.source.owner)).toBe(4);
      // A message of another thread is not a read position here.
      const other = await tripThread();
      const foreign = (await send(w.driver, other, 'elsewhere')).body.data.id;
      expect((await read(reader, foreign)).status).toBe(404);
    });

    it('lists threads newest activity first with unread counts, in one statement per page', async () => {
      const watcher = await newMember(t.api, w.source, 'STAFF');
      const made: string[] = [];
      for (let i = 0; i < 4; i++) {
        const threadId = await tripThread(await newTrip(t.api, w).then((x) => x.id));
        for (let j = 0; j <= i; j++) await send(w.driver, threadId, `t${i}-${j}`);
        made.push(threadId);
      }
      await send(w.driver, made[1], 'bump');
      const list = await t.api.get('/chat/threads?limit=3', auth(watcher));
      expect(list.body.data.map((x: { id: string }) => x.id)).toEqual([made[1], made[3], made[2]]);
      expect(list.body.data.map((x: { unreadCount: number }) => x.unreadCount)).toEqual([3, 4, 3]);
      const next = await t.api.get(`/chat/threads?limit=3&cursor=${list.body.meta.nextCursor}`, auth(watcher));
      expect(next.body.data[0].id).toBe(made[0]);

      // Statements the app sends that touch chat tables while one page is read.
      const statements: string[] = [];
      const original = Client.prototype.query;
      Client.prototype.query = function (this: Client, ...args: any[]) {
        const text = typeof args[0] === 'string' ? args[0] : args[0]?.text;
        if (typeof text === 'string' && /chat_/.test(text)) statements.push(text);
        return (original as any).apply(this, args);
      } as any;
      try {
        const page = await t.api.get('/chat/threads?limit=20', auth(watcher));
        expect(page.body.data.length).toBeGreaterThanOrEqual(4);
      } finally {
        Client.prototype.query = original;
      }
      expect(statements).toHaveLength(1);
    });
  });

  describe('realtime', () => {
    it('publishes each accepted message to thread:<id> as chat.message with the room seq (a replay publishes nothing)', async () => {
      const threadId = await tripThread();
      const s = await watch(w.destination.owner);
      expect(await s.request('subscribe', { room: threadRoom(threadId) })).toEqual({ ok: true });
      const body = { body: 'live', clientMessageId: 'live-1' };
      const sent = await t.api.post(`/chat/threads/${threadId}/messages`, body, auth(w.driver));
      await t.api.post(`/chat/threads/${threadId}/messages`, body, auth(w.driver));
      const second = await send(w.source.owner, threadId, 'second');
      await s.waitFor((x) => x.inRoom(threadRoom(threadId), 'chat.message').length === 2, 'two chat.message');
      const got = s.inRoom(threadRoom(threadId), 'chat.message');
      expect(got[0]).toMatchObject({ threadId, message: sent.body.data, room: threadRoom(threadId) });
      expect(got[1]).toMatchObject({ message: second.body.data });
      expect(got[1].seq).toBeGreaterThan(got[0].seq!);
    });

    it('refuses thread rooms to non-members (no longer ROOM_NOT_SUPPORTED)', async () => {
      const threadId = await tripThread();
      const stranger = await newUser(t.api);
      const s = await watch(stranger);
      const ack = await s.request('subscribe', { room: threadRoom(threadId) });
      expect(ack).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    });
  });

  describe('attachments', () => {
    const files = async () => (await readdir(join(storageDir, 'attachments')).catch(() => [] as string[])).sort();

    it('takes a file of exactly the limit and refuses one byte more (413), storing nothing', async () => {
      const ok = await upload(w.driver, png(MAX), 'photo.png');
      expect(ok.status).toBe(201);
      expect(ok.body.data).toMatchObject({ contentType: 'image/png', size: MAX, filename: 'photo.png' });
      expect(ok.body.data.url).toMatch(new RegExp(`/api/v1/attachments/${ok.body.data.id}$`));
      const before = await files();
      const rowsBefore = (await t.sql.query('SELECT count(*)::int AS n FROM chat_attachments')).rows[0].n;
      const big = await upload(w.driver, png(MAX + 1), 'big.png');
      expect(big.status).toBe(413);
      expect(big.body.error.code).toBe('PAYLOAD_TOO_LARGE');
      expect(await files()).toEqual(before);
      expect((await t.sql.query('SELECT count(*)::int AS n FROM chat_attachments')).rows[0].n).toBe(rowsBefore);
    });

    it('sniffs the type from the bytes: a PNG named .pdf is image/png, text named .png is 415', async () => {
      const png1 = await upload(w.driver, png(1000), 'invoice.pdf');
      expect(png1.status).toBe(201);
      expect(png1.body.data.contentType).toBe('image/png');
      const pdf = await upload(w.driver, PDF_HEAD, 'scan');
      expect(pdf.body.data.contentType).toBe('application/pdf');
      const text = await upload(w.driver, Buffer.from('just some words\n'), 'fake.png');
      expect(text.status).toBe(415);
      expect(text.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    });

    it('serves a file to its uploader, then to the members of the thread of the message carrying it; 404 to others', async () => {
      const threadId = await tripThread();
      const up = await upload(w.driver, png(2000), '../../bill: final?.png');
      const id = up.body.data.id;
      const get = (who: TestUser) =>
        fetch(`${t.url}/api/v1/attachments/${id}`, { headers: { authorization: `Bearer ${who.accessToken}` } });
      expect((await get(w.driver)).status).toBe(200);
      expect((await get(w.source.owner)).status).toBe(404);
      // Someone else may not send it.
      const stolen = await send(w.source.owner, threadId, 'mine now', { attachmentIds: [id] });
      expect(stolen.status).toBe(422);
      const msg = await send(w.driver, threadId, '', { attachmentIds: [id] });
      expect(msg.status).toBe(201);
      expect(msg.body.data).toMatchObject({ body: '', attachmentIds: [id] });
      // An attachment goes with one message only.
      expect((await send(w.driver, threadId, 'again', { attachmentIds: [id] })).status).toBe(422);
      const res = await get(w.source.owner);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/png');
      expect(res.headers.get('content-length')).toBe('2000');
      expect(res.headers.get('content-disposition')).toBe(
        `attachment; filename="bill final.png"; filename*=UTF-8''bill%20final.png`,
      );
      expect(Buffer.from(await res.arrayBuffer()).equals(png(2000))).toBe(true);
      const otherDriver = await newMember(t.api, w.source, 'DRIVER');
      expect((await get(otherDriver)).status).toBe(404);
      expect((await get(await newUser(t.api))).status).toBe(404);
    });

    it('removes attachments no message carried in time, keeping those that were sent', async () => {
      const threadId = await tripThread();
      const kept = (await upload(w.driver, png(500), 'kept.png')).body.data.id;
      const orphan = (await upload(w.driver, png(500), 'orphan.png')).body.data.id;
      await send(w.driver, threadId, 'with file', { attachmentIds: [kept] });
      const later = new Date(Date.now() + t.config.chatAttachmentOrphanMs + 60_000);
      expect(await t.app.get(AttachmentsService).sweepOrphans(later)).toBeGreaterThanOrEqual(1);
      const ids = (await t.sql.query('SELECT id FROM chat_attachments WHERE id = ANY($1)', [[kept, orphan]])).rows;
      expect(ids.map((r: { id: string }) => r.id)).toEqual([kept]);
      expect(await files()).toContain(kept);
      expect(await files()).not.toContain(orphan);
    });

    it('with storage down: uploads are 503 STORAGE_UNAVAILABLE, the breaker opens, messages still work, then it recovers', async () => {
      const threadId = await tripThread();
      const storage = t.app.get(StorageService);
      await rm(storageDir, { recursive: true, force: true });
      await writeFile(storageDir, 'not a folder');
      try {
        // Every failure is a 503; once most recent calls failed, the breaker opens and fails them at once.
        for (let i = 0; i < 30 && !storage.open; i++) {
          const res = await upload(w.driver, png(300), 'down.png');
          expect(res.status).toBe(503);
          expect(res.body.error.code).toBe('STORAGE_UNAVAILABLE');
        }
        expect(storage.open).toBe(true);
        const fast = await upload(w.driver, png(300), 'down.png');
        expect(fast.status).toBe(503);
        expect(fast.body.error.code).toBe('STORAGE_UNAVAILABLE');
        expect((await send(w.driver, threadId, 'text still works')).status).toBe(201);
      } finally {
        await rm(storageDir, { force: true });
        await mkdir(storageDir, { recursive: true });
      }
      let status = 0;
      for (let attempt = 0; attempt < 100 && status !== 201; attempt++) {
        status = (await upload(w.driver, png(300), 'back.png')).status;
        if (status !== 201) await new Promise((r) => setTimeout(r, 100));
      }
      expect(status).toBe(201);
      expect(storage.open).toBe(false);
    });
  });
});
