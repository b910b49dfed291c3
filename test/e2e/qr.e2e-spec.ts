import jsQR from 'jsqr';
import { decodePDFRawStream, PDFArray, PDFDocument, PDFPage, PDFRawStream } from 'pdf-lib';
import { PNG } from 'pngjs';
import { labelBox, LABELS } from '../../src/modules/qr/qr-labels';
import { QrService } from '../../src/modules/qr/qr.service';
import { newMember, newOrg, newUser, TestOrg, TestUser } from '../support/factories';
import { connectWatcher } from '../support/socket-client';
import { startTestApp, TestApp } from '../support/test-app';
import { newTrip, newWorld, TripWorld } from '../support/trips-fixtures';

describe('QR tags', () => {
  let t: TestApp;
  let org: TestOrg;
  let other: TestOrg;
  beforeAll(async () => {
    t = await startTestApp({
      // 1,000 scans at once, waiting their turn for a connection.
      databaseConnectTimeoutMs: 120_000,
      publicBaseUrl: 'https://waybill.example',
      qrBatchMaxItems: 10_000,
      qrBatchChunk: 7,
    });
    [org, other] = await Promise.all([newOrg(t.api, undefined, 'Sharma <Traders> & Co'), newOrg(t.api)]);
  });
  afterAll(() => t.close());

  const auth = (u: TestUser) => ({ token: u.accessToken });
  const newTag = async (body: Record<string, unknown> = {}, who: TestUser = org.owner) => {
    const res = await t.api.post(
      '/qr/tags',
      { orgId: org.id, entityType: 'CARGO', entityId: 'bag-1', title: 'Bag 1', ...body },
      auth(who),
    );
    expect(res.status).toBe(201);
    return res.body.data as { id: string; code: string; url: string; status: string; scanCount: number };
  };

  describe('tags', () => {
    it('creates a tag with an unguessable code and its url; members read it, another org gets 404', async () => {
      const tag = await newTag({ maxScans: 3 });
      expect(tag.code).toMatch(/^[A-Za-z0-9_-]{16}$/);
      expect(tag.url).toBe(`https://waybill.example/q/${tag.code}`);
      expect(tag).toMatchObject({ orgId: org.id, isPublic: true, status: 'ACTIVE', maxScans: 3, scanCount: 0 });

      const accountant = await newMember(t.api, org, 'ACCOUNTANT');
      expect((await t.api.get(`/qr/tags/${tag.id}`, auth(accountant))).body.data.id).toBe(tag.id);
      expect((await t.api.get(`/qr/tags/${tag.id}`, auth(other.owner))).status).toBe(404);
      expect((await t.api.post(`/qr/tags/${tag.id}/disable`, undefined, auth(other.owner))).status).toBe(404);
      expect((await t.api.get(`/qr/tags?orgId=${org.id}`, auth(other.owner))).status).toBe(404);

      const staff = await newMember(t.api, org, 'STAFF');
      await newTag({}, staff);
      for (const role of ['ACCOUNTANT', 'DRIVER']) {
        const m = await newMember(t.api, org, role);
        const res = await t.api.post(
          '/qr/tags',
          { orgId: org.id, entityType: 'CARGO', entityId: 'x', title: 'x' },
          auth(m),
        );
        expect(res.status).toBe(403);
      }
      const fields = await t.api.get(`/qr/tags/${tag.id}?fields=id,status`, auth(org.owner));
      expect(fields.body.data).toEqual({ id: tag.id, status: 'ACTIVE' });
      expect((await t.api.get(`/qr/tags/${tag.id}?fields=id,secret`, auth(org.owner))).status).toBe(400);
    });

    it('lists with filters and keyset pages; EXPIRED is derived; disabling twice is 200', async () => {
      const o = await newOrg(t.api);
      const mk = async (entityType: string) =>
        (await t.api.post('/qr/tags', { orgId: o.id, entityType, entityId: 'e', title: 't' }, auth(o.owner))).body
          .data as { id: string };
      const trucks = [await mk('TRUCK'), await mk('TRUCK'), await mk('TRUCK')];
      const cargo = await mk('CARGO');
      await t.sql.query(`UPDATE qr_tags SET expires_at = now() - interval '1 minute' WHERE id = $1`, [trucks[0].id]);
      const first = await t.api.post(`/qr/tags/${trucks[1].id}/disable`, undefined, auth(o.owner));
      expect(first.status).toBe(200);
      expect(first.body.data.status).toBe('DISABLED');
      const again = await t.api.post(`/qr/tags/${trucks[1].id}/disable`, undefined, auth(o.owner));
      expect(again.status).toBe(200);
      expect(again.body.data.status).toBe('DISABLED');

      const ids = async (q: string) =>
        ((await t.api.get(`/qr/tags?orgId=${o.id}${q}`, auth(o.owner))).body.data as { id: string }[]).map((x) => x.id);
      expect(await ids('&entityType=TRUCK')).toEqual([trucks[2].id, trucks[1].id, trucks[0].id]);
      expect(await ids('&status=EXPIRED')).toEqual([trucks[0].id]);
      expect(await ids('&status=DISABLED')).toEqual([trucks[1].id]);
      expect(await ids('&status=ACTIVE')).toEqual([cargo.id, trucks[2].id]);
      expect((await t.api.get(`/qr/tags/${trucks[0].id}`, auth(o.owner))).body.data.status).toBe('EXPIRED');

      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { status: number; body: any } = await t.api.get(
          `/qr/tags?orgId=${o.id}&limit=3${cursor ? `&cursor=${cursor}` : ''}`,
          auth(o.owner),
        );
        seen.push(...(page.body.data as { id: string }[]).map((x) => x.id));
        cursor = page.body.meta.nextCursor;
      } while (cursor);
      expect(seen).toEqual([cargo.id, trucks[2].id, trucks[1].id, trucks[0].id]);
    });
  });

  describe('scans', () => {
    const scan = (who: TestUser, body: Record<string, unknown>, headers?: Record<string, string>) =>
      t.api.post('/qr/scan', body, { token: who.accessToken, headers });

    it('maxScans is exact under 1,000 simultaneous scans through HTTP', async () => {
      const tag = await newTag({ maxScans: 400 });
      const statuses = await Promise.all(
        Array.from({ length: 1000 }, () => scan(org.owner, { code: tag.code, action: 'CHECK_IN' })),
      );
      const by = (s: number) => statuses.filter((r) => r.status === s).length;
      expect(by(201)).toBe(400);
      expect(by(409)).toBe(600);
      expect(
        statuses.filter((r) => r.status === 409).every((r) => r.body.error.code === 'TAG_SCAN_LIMIT_REACHED'),
      ).toBe(true);
      const row = (await t.sql.query(`SELECT scan_count FROM qr_tags WHERE id = $1`, [tag.id])).rows[0];
      expect(row.scan_count).toBe(400);
      const logged = (await t.sql.query(`SELECT count(*)::int AS n FROM qr_scans WHERE tag_id = $1`, [tag.id])).rows[0];
      expect(logged.n).toBe(400);
    });

    it("writes the scan's webhook event with it: {tag, scan} exactly as the answer carries them", async () => {
      const tag = await newTag({ maxScans: 50, expiresAt: new Date(Date.now() + 86_400_000).toISOString() });
      const answers = [
        await scan(org.owner, {
          code: tag.code,
          action: 'CHECK_IN',
          lat: 28.613939,
          lng: 77.2090212,
          scannedAt: new Date(Date.now() - 60_000).toISOString(),
        }),
        await scan(org.owner, { code: tag.code, action: 'VIEW' }),
      ];
      for (const res of answers) {
        expect(res.status).toBe(201);
        const { rows } = await t.sql.query(
          `SELECT type, org_id::text AS "orgId", data, created_at AS "createdAt" FROM outbox_events
           WHERE type = 'qr.scan' AND data->'scan'->>'id' = $1`,
          [res.body.data.scan.id],
        );
        expect(rows).toHaveLength(1);
        expect(rows[0]).toMatchObject({ type: 'qr.scan', orgId: org.id });
        expect(rows[0].data).toEqual(res.body.data);
        expect(Math.abs(rows[0].createdAt.getTime() - Date.now())).toBeLessThan(60_000);
      }
      expect(answers[1].body.data.tag.scanCount).toBe(2);
    });

    it('answers 409 TAG_DISABLED / TAG_EXPIRED, 404 for unknown codes; a scannedAt far ahead is 400', async () => {
      const disabled = await newTag();
      await t.api.post(`/qr/tags/${disabled.id}/disable`, undefined, auth(org.owner));
      const d = await scan(org.owner, { code: disabled.code, action: 'VIEW' });
      expect([d.status, d.body.error.code]).toEqual([409, 'TAG_DISABLED']);
      const expired = await newTag();
      await t.sql.query(`UPDATE qr_tags SET expires_at = now() - interval '1 second' WHERE id = $1`, [expired.id]);
      const e = await scan(org.owner, { code: expired.code, action: 'VIEW' });
      expect([e.status, e.body.error.code]).toEqual([409, 'TAG_EXPIRED']);
      for (const code of ['AAAAAAAAAAAAAAAA', 'x', '../../etc/passwd']) {
        expect((await scan(org.owner, { code, action: 'VIEW' })).status).toBe(404);
      }
      const live = await newTag();
      const ahead = new Date(Date.now() + 10 * 60_000).toISOString();
      expect((await scan(org.owner, { code: live.code, action: 'VIEW', scannedAt: ahead })).status).toBe(400);
      const past = '2026-01-02T03:04:05.000Z';
      const ok = await scan(org.owner, { code: live.code, action: 'VIEW', scannedAt: past, lat: 26.9, lng: 75.8 });
      expect(ok.status).toBe(201);
      expect(ok.body.data.scan).toMatchObject({ action: 'VIEW', scannedAt: past, lat: 26.9, lng: 75.8 });
      expect(ok.body.data.tag).toMatchObject({ id: live.id, scanCount: 1 });
      expect((await scan(org.owner, { code: live.code, action: 'VIEW', x: 1 })).status).toBe(400);
    });

    it('lets outsiders VIEW a public tag only; trip-org members scan with any action and append a trip event', async () => {
      const outsider = await newUser(t.api);
      const pub = await newTag({ isPublic: true });
      const priv = await newTag({ isPublic: false });
      const viewed = await scan(outsider, { code: pub.code, action: 'VIEW' });
      expect(viewed.status).toBe(201);
      // The outsider sees the tag as its public page shows it, nothing more.
      expect(viewed.body.data.tag).toEqual({
        code: pub.code,
        entityType: 'CARGO',
        title: 'Bag 1',
        orgName: expect.any(String),
        status: 'ACTIVE',
      });
      expect(viewed.body.data.tag.orgName.length).toBeGreaterThan(0);
      expect((await scan(outsider, { code: pub.code, action: 'LOAD' })).status).toBe(404);
      expect((await scan(outsider, { code: priv.code, action: 'VIEW' })).status).toBe(404);

      const w: TripWorld = await newWorld(t.api, { source: other, destination: org });
      const trip = await newTrip(t.api, w);
      // A member of the trip's other org scans this org's private tag while loading.
      const watcher = await connectWatcher(t.url, org.owner.accessToken);
      try {
        expect((await watcher.request('subscribe', { room: `org:${org.id}` })).ok).toBe(true);
        const res = await scan(other.owner, { code: priv.code, action: 'LOAD', tripId: trip.id });
        expect(res.status).toBe(201);
        await watcher.waitFor((x) => x.inRoom(`org:${org.id}`, 'qr.scan').length > 0, 'qr.scan');
        expect(watcher.inRoom(`org:${org.id}`, 'qr.scan')[0]).toMatchObject({ tagId: priv.id, action: 'LOAD' });
      } finally {
        watcher.close();
      }
      const events = await t.api.get(`/trips/${trip.id}/events`, auth(other.owner));
      expect(events.body.data.filter((e: { type: string }) => e.type === 'SCAN')).toEqual([
        expect.objectContaining({ data: expect.objectContaining({ tagId: priv.id, action: 'LOAD' }) }),
      ]);
      // A trip the scanner cannot see is a 404, and lends no access.
      expect((await scan(outsider, { code: priv.code, action: 'LOAD', tripId: trip.id })).status).toBe(404);
    });

    it('replays an Idempotency-Key retry without counting it twice', async () => {
      const tag = await newTag({ maxScans: 5 });
      const h = { 'idempotency-key': `scan-${tag.id}` };
      const a = await scan(org.owner, { code: tag.code, action: 'CHECK_IN' }, h);
      const b = await scan(org.owner, { code: tag.code, action: 'CHECK_IN' }, h);
      expect([a.status, b.status]).toEqual([201, 201]);
      expect(b.body.data.scan.id).toBe(a.body.data.scan.id);
      expect((await t.sql.query(`SELECT scan_count FROM qr_tags WHERE id = $1`, [tag.id])).rows[0].scan_count).toBe(1);
      expect((await scan(org.owner, { code: tag.code, action: 'VIEW' }, h)).status).toBe(409);
    });

    it('pages the scan log and answers analytics from a hand-made data set', async () => {
      const o = await newOrg(t.api);
      const mk = async (entityId: string) =>
        (await t.api.post('/qr/tags', { orgId: o.id, entityType: 'TRUCK', entityId, title: entityId }, auth(o.owner)))
          .body.data as { id: string };
      const [a, b] = [await mk('RJ14-1'), await mk('RJ14-2')];
      const u1 = o.owner;
      const u2 = await newUser(t.api);
      const rows: [string, string, string, string][] = [
        [a.id, 'VIEW', u1.id, '2020-11-01T10:00:00Z'],
        [a.id, 'LOAD', u1.id, '2020-11-01T23:59:59Z'],
        [a.id, 'LOAD', u2.id, '2020-11-02T00:00:00Z'],
        [b.id, 'VIEW', u2.id, '2020-11-02T05:00:00Z'],
        [b.id, 'DELIVER', u2.id, '2020-11-03T05:00:00Z'],
        [b.id, 'VIEW', u1.id, new Date(Date.now() - 3600_000).toISOString()], // only in the default range
      ];
      for (const [tagId, action, userId, at] of rows) {
        await t.sql.query(
          `INSERT INTO qr_scans (id, tag_id, org_id, action, scanner_user_id, scanned_at)
           VALUES (gen_random_uuid(), $1, $2, $3, $4, $5)`,
          [tagId, o.id, action, userId, at],
        );
      }
      const q = (groupBy: string) =>
        t.api.get(
          `/qr/analytics?orgId=${o.id}&from=2020-11-01T00:00:00Z&to=2020-11-30T00:00:00Z&groupBy=${groupBy}`,
          auth(o.owner),
        );
      expect((await q('day')).body.data).toEqual({
        total: 5,
        uniqueScanners: 2,
        groups: [
          { key: '2020-11-01', count: 2, uniqueScanners: 1 },
          { key: '2020-11-02', count: 2, uniqueScanners: 1 },
          { key: '2020-11-03', count: 1, uniqueScanners: 1 },
        ],
      });
      expect((await q('entity')).body.data.groups).toEqual([
        { key: 'TRUCK:RJ14-1', count: 3, uniqueScanners: 2 },
        { key: 'TRUCK:RJ14-2', count: 2, uniqueScanners: 1 },
      ]);
      expect((await q('action')).body.data.groups).toEqual([
        { key: 'DELIVER', count: 1, uniqueScanners: 1 },
        { key: 'LOAD', count: 2, uniqueScanners: 2 },
        { key: 'VIEW', count: 2, uniqueScanners: 2 },
      ]);
      expect((await t.api.get(`/qr/analytics?orgId=${o.id}`, auth(o.owner))).body.data.total).toBe(1);
      expect((await t.api.get(`/qr/analytics?orgId=${o.id}`, auth(other.owner))).status).toBe(404);

      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { status: number; body: any } = await t.api.get(
          `/qr/tags/${a.id}/scans?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
          auth(o.owner),
        );
        expect(page.status).toBe(200);
        seen.push(...(page.body.data as { action: string }[]).map((s) => s.action));
        cursor = page.body.meta.nextCursor;
      } while (cursor);
      expect(seen.sort()).toEqual(['LOAD', 'LOAD', 'VIEW']);
      expect((await t.api.get(`/qr/tags/${a.id}/scans`, auth(other.owner))).status).toBe(404);
    });
  });

  describe('public page /q/:code', () => {
    it('shows a public tag with a strong ETag and shared-cache headers, escaped in HTML', async () => {
      const tag = await newTag({ title: '<img src=x onerror=alert(1)> Bag' });
      const json = await t.root.get(`/q/${tag.code}`, { headers: { accept: 'application/json' } });
      expect(json.status).toBe(200);
      expect(json.body.data).toEqual({
        code: tag.code,
        entityType: 'CARGO',
        title: '<img src=x onerror=alert(1)> Bag',
        orgName: 'Sharma <Traders> & Co',
        status: 'ACTIVE',
      });
      expect(json.headers.get('cache-control')).toBe('public, s-maxage=60, stale-while-revalidate=300');
      const etag = json.headers.get('etag')!;
      expect(etag).toMatch(/^"[^"]+"$/);
      const again = await t.root.get(`/q/${tag.code}`, {
        headers: { accept: 'application/json', 'if-none-match': etag },
      });
      expect(again.status).toBe(304);
      expect(again.body).toBeUndefined();

      const html = await t.root.get(`/q/${tag.code}`, { headers: { accept: 'text/html' } });
      expect(html.status).toBe(200);
      expect(html.headers.get('content-type')).toMatch(/^text\/html/);
      expect(html.body).toContain('&lt;img src=x onerror=alert(1)&gt; Bag');
      expect(html.body).toContain('Sharma &lt;Traders&gt; &amp; Co');
      expect(html.body).not.toContain('<img');
      expect((await t.api.get(`/q/${tag.code}`)).status).toBe(404);
    });

    it('answers private, disabled (at once, despite the cache) and unknown codes with one 404, no-store', async () => {
      const priv = await newTag({ isPublic: false });
      const pub = await newTag();
      expect((await t.root.get(`/q/${pub.code}`, { headers: { accept: 'application/json' } })).status).toBe(200);
      await t.api.post(`/qr/tags/${pub.id}/disable`, undefined, auth(org.owner));
      const answers = await Promise.all(
        [priv.code, pub.code, 'AAAAAAAAAAAAAAAA', 'x', '%00', 'a'.repeat(900)].map((c) =>
          t.root.get(`/q/${c}`, { headers: { accept: 'application/json' } }),
        ),
      );
      for (const a of answers) {
        expect(a.status).toBe(404);
        expect(a.headers.get('cache-control')).toBe('no-store');
        const { requestId: _, ...error } = a.body.error;
        expect(error).toEqual({ code: 'NOT_FOUND', message: 'Tag not found' });
      }
    });
  });

  describe('images', () => {
    it('renders a PNG that decodes to the url, for every ecl; SVG; ETag and 304; out-of-range is 400', async () => {
      const tag = await newTag();
      for (const ecl of ['L', 'M', 'Q', 'H']) {
        const res = await fetch(`${t.url}/api/v1/qr/tags/${tag.id}/image?format=png&size=400&ecl=${ecl}`, {
          headers: { authorization: `Bearer ${org.owner.accessToken}` },
        });
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toBe('image/png');
        expect(res.headers.get('cache-control')).toMatch(/^private/);
        const png = PNG.sync.read(Buffer.from(await res.arrayBuffer()));
        expect(png.width).toBe(400);
        const decoded = jsQR(new Uint8ClampedArray(png.data), png.width, png.height);
        expect(decoded?.data).toBe(tag.url);
        const etag = res.headers.get('etag')!;
        const cached = await t.api.get(`/qr/tags/${tag.id}/image?format=png&size=400&ecl=${ecl}`, {
          token: org.owner.accessToken,
          headers: { 'if-none-match': etag },
        });
        expect(cached.status).toBe(304);
      }
      const svg = await t.api.get(`/qr/tags/${tag.id}/image?format=svg`, auth(org.owner));
      expect(svg.status).toBe(200);
      expect(svg.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
      expect(svg.body).toMatch(/^<svg/);
      for (const bad of ['size=63', 'size=2001', 'margin=17', 'margin=-1', 'ecl=X', 'format=gif', 'size=abc']) {
        expect((await t.api.get(`/qr/tags/${tag.id}/image?${bad}`, auth(org.owner))).status).toBe(400);
      }
      expect((await t.api.get(`/qr/tags/${tag.id}/image`, auth(other.owner))).status).toBe(404);
    });
  });

  describe('batches', () => {
    const item = (i: number) => ({ entityType: 'CARGO', entityId: `C${i}`, title: `Bag ${i}` });

    it('rejects a batch over the limit naming it, and one bad item naming its index', async () => {
      const big = await t.api.post(
        '/qr/batches',
        { orgId: org.id, items: Array.from({ length: 10_001 }, (_, i) => item(i)) },
        auth(org.owner),
      );
      expect(big.status).toBe(400);
      expect(JSON.stringify(big.body.error)).toContain('10000');
      const items: Record<string, unknown>[] = Array.from({ length: 5 }, (_, i) => item(i));
      items[3] = { ...item(3), title: '' };
      const bad = await t.api.post('/qr/batches', { orgId: org.id, items }, auth(org.owner));
      expect(bad.status).toBe(400);
      expect(bad.body.error.details.map((d: { path: string }) => d.path)).toContain('items.3.title');
      items[3] = { ...item(3), title: 'nul\u0000' };
      expect((await t.api.post('/qr/batches', { orgId: org.id, items }, auth(org.owner))).status).toBe(400);
      expect((await t.sql.query(`SELECT count(*)::int AS n FROM qr_batches`)).rows[0].n).toBe(0);
    });

    // Rendering QR PNGs is far slower inside Jest's sandbox than in node (about 0.5 s against 10 ms a
    // label): 22 labels fill one page and start a second, and the test gets time for them on a busy box.
    it('makes the tags in the background, idempotent on a rerun, and prints a label sheet', async () => {
      const n = 22;
      const res = await t.api.post(
        '/qr/batches',
        { orgId: org.id, items: Array.from({ length: n }, (_, i) => item(i)) },
        auth(org.owner),
      );
      expect(res.status).toBe(202);
      const { batchId } = res.body.data as { batchId: string };
      let status: { status: string; total: number; done: number; failed: number };
      for (;;) {
        status = (await t.api.get(`/qr/batches/${batchId}`, auth(org.owner))).body.data;
        if (status.status === 'DONE' || status.status === 'FAILED') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(status).toEqual({ status: 'DONE', total: n, done: n, failed: 0 });
      expect((await t.api.get(`/qr/batches/${batchId}`, auth(other.owner))).status).toBe(404);

      // A retried job inserts nothing twice.
      await t.app.get(QrService).runBatch(batchId, async () => undefined);
      const count = await t.sql.query(`SELECT count(*)::int AS n FROM qr_tags WHERE batch_id = $1`, [batchId]);
      expect(count.rows[0].n).toBe(n);

      const pdf = await fetch(`${t.url}/api/v1/qr/batches/${batchId}/labels.pdf`, {
        headers: { authorization: `Bearer ${org.owner.accessToken}` },
      });
      expect(pdf.status).toBe(200);
      expect(pdf.headers.get('content-type')).toBe('application/pdf');
      const doc = await PDFDocument.load(Buffer.from(await pdf.arrayBuffer()));
      expect(doc.getPageCount()).toBe(Math.ceil(n / 21));
      // Each label's QR is drawn as filled rectangles: rasterize those inside each label's QR square and decode
      // it; the labels are the batch's tags in item order.
      const tags = await t.sql.query(`SELECT code FROM qr_tags WHERE batch_id = $1 ORDER BY batch_index`, [batchId]);
      const decoded: (string | undefined)[] = [];
      doc.getPages().forEach((page, p) => {
        const rects = pageRects(page);
        for (let slot = 0; slot < LABELS.columns * LABELS.rows && p * 21 + slot < n; slot++)
          decoded.push(decodeSquare(rects, labelBox(slot).qr));
      });
      expect(decoded).toEqual(tags.rows.map((r: { code: string }) => `https://waybill.example/q/${r.code}`));
    }, 120_000);
  });
});

describe('QR public page rate limit', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ qrPublicRateLimitPerMinute: 3 });
  });
  afterAll(() => t.close());

  it('answers a client address past QR_PUBLIC_RATE_LIMIT_PER_MINUTE with 429 and Retry-After, however the path is spelled', async () => {
    const statuses: number[] = [];
    for (const path of ['/q/unknown-1', '/q/unknown-2', '/%71/unknown-3'])
      statuses.push((await t.root.get(path)).status);
    expect(statuses).toEqual([404, 404, 404]);
    const limited = await t.root.get('/q/unknown-4');
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({ success: false, error: { code: 'RATE_LIMITED' } });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});

/** The rectangles (`x y w h re`) a page's content draws, in the page's top-left coordinates (pdfkit flips y once). */
function pageRects(page: PDFPage): { x: number; y: number; w: number; h: number }[] {
  const contents = page.node.Contents();
  const streams = contents instanceof PDFArray ? contents.asArray().map((r) => page.doc.context.lookup(r)) : [contents];
  const text = streams
    .map((st) => Buffer.from(decodePDFRawStream(st as PDFRawStream).decode()).toString('latin1'))
    .join('\n');
  const rects: { x: number; y: number; w: number; h: number }[] = [];
  for (const m of text.matchAll(/(-?[\d.]+) (-?[\d.]+) (-?[\d.]+) (-?[\d.]+) re/g))
    rects.push({ x: Number(m[1]), y: Number(m[2]), w: Number(m[3]), h: Number(m[4]) });
  return rects;
}

/** Paints the rectangles that start inside the square black on white, 4 pixels a point, and reads the QR code. */
function decodeSquare(
  rects: { x: number; y: number; w: number; h: number }[],
  sq: { x: number; y: number; side: number },
): string | undefined {
  const scale = 4;
  const px = Math.ceil(sq.side * scale);
  const png = new PNG({ width: px, height: px });
  png.data.fill(255);
  for (const r of rects) {
    if (r.x < sq.x || r.y < sq.y || r.x >= sq.x + sq.side || r.y >= sq.y + sq.side) continue;
    const x0 = Math.round((r.x - sq.x) * scale);
    const y0 = Math.round((r.y - sq.y) * scale);
    const x1 = Math.min(px, Math.round((r.x + r.w - sq.x) * scale));
    const y1 = Math.min(px, Math.round((r.y + r.h - sq.y) * scale));
    for (let y = y0; y < y1; y++)
      for (let x = x0; x < x1; x++) {
        const i = (y * px + x) * 4;
        png.data[i] = png.data[i + 1] = png.data[i + 2] = 0;
      }
  }
  return jsQR(new Uint8ClampedArray(png.data), px, px)?.data;
}
