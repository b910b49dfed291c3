/// <reference lib="dom" />
// The callbacks given to page.evaluate / waitForFunction run in the browser.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startTestApp, TestApp } from '../support/test-app';
import { activeTrip, newWorld, TripWorld } from '../support/trips-fixtures';

const CHROMIUM = '/usr/bin/chromium';
const OUTPUT_DIR = join(__dirname, '..', '..', 'test-output');
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  // The CI script installs Debian's chromium; without it this file has nothing to drive.
  process.stderr.write(`live-page.e2e-spec: skipped, ${CHROMIUM} is missing (apt-get install chromium)\n`);
}
const describeWithBrowser = haveChromium ? describe : describe.skip;

describeWithBrowser('live page (/live) in a real browser', () => {
  let t: TestApp;
  let browser: BrowserContext;
  let page: Page;
  let profileDir: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    // Short-lived access tokens: the page must refresh its own (and re-authenticate its socket) during the test.
    t = await startTestApp({ accessTokenTtlSeconds: 30 });
    profileDir = mkdtempSync(join(tmpdir(), 'waybill-live-chromium-'));
    // A fresh profile directory per run: nothing cached or remembered from another run.
    browser = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      viewport: { width: 1280, height: 800 },
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(msg.text());
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    if (profileDir) rmSync(profileDir, { recursive: true, force: true });
    await t?.close();
  });

  /** The marker of a trip as drawn: its data- attributes, or null while it is not on the map. */
  const marker = (tripId: string) =>
    page.evaluate((id) => {
      const g = document.querySelector(`#markers .marker[data-trip-id="${id}"]`);
      if (!g) return null;
      return {
        lat: Number(g.getAttribute('data-lat')),
        lng: Number(g.getAttribute('data-lng')),
        transform: g.getAttribute('transform'),
      };
    }, tripId);

  it('serves the page, its files and the Socket.IO client under the default CSP', async () => {
    const res = await fetch(`${t.url}/live/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(res.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    expect(await res.text()).toContain('<script src="/live/live.js">');
    const client = await fetch(`${t.url}/live/socket.io.min.js`);
    expect(client.status).toBe(200);
    expect(client.headers.get('content-type')).toMatch(/javascript/);
    const redirect = await fetch(`${t.url}/live`, { redirect: 'manual' });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toBe('/live/');
  });

  it('logs in, picks the org, and moves the truck as pings arrive', async () => {
    const w: TripWorld = await newWorld(t.api);
    const trip = await activeTrip(t.api, w);
    // Fixes may not be older than the trip.
    await t.sql.query(`UPDATE trips SET created_at = now() - interval '2 hours' WHERE id = $1`, [trip.id]);
    const t0 = Date.now() - 3600_000;
    const first = await t.api.post(
      '/tracking/ping',
      {
        tripId: trip.id,
        locations: [{ latitude: 27.0, longitude: 75.9, timestamp: new Date(t0).toISOString(), speed: 15 }],
      },
      { token: w.driver.accessToken },
    );
    expect(first.status).toBe(200);

    await page.goto(`${t.url}/live`);
    await page.fill('#phone', w.source.owner.phone);
    await page.fill('#password', w.source.owner.password);
    const loggedInAt = Date.now();
    await page.click('#login');
    await page.waitForSelector(`#org option[value="${w.source.id}"]`, { state: 'attached' });
    await page.selectOption('#org', w.source.id);
    await page.waitForSelector(`#trips li[data-trip-id="${trip.id}"]`);
    await page.waitForSelector('#connection[data-state="online"]');

    // The first point, from the trip row or the first event.
    await page.waitForFunction(
      (id) => document.querySelector(`#markers .marker[data-trip-id="${id}"]`) !== null,
      trip.id,
      { timeout: 15_000 },
    );
    const before = await marker(trip.id);
    expect(before).not.toBeNull();

    // The truck drives north-east; each batch goes out as one trip.location to the page's trip room.
    let last = { latitude: 27.0, longitude: 75.9 };
    for (let i = 1; i <= 5; i++) {
      last = { latitude: 27.0 + i * 0.02, longitude: 75.9 + i * 0.015 };
      const res = await t.api.post(
        '/tracking/ping',
        { tripId: trip.id, locations: [{ ...last, timestamp: new Date(t0 + i * 180_000).toISOString(), speed: 15 }] },
        { token: w.driver.accessToken },
      );
      expect(res.status).toBe(200);
    }
    await page.waitForFunction(
      ({ id, lat }) => {
        const g = document.querySelector(`#markers .marker[data-trip-id="${id}"]`);
        return g !== null && Number(g.getAttribute('data-lat')) === lat;
      },
      { id: trip.id, lat: last.latitude },
      { timeout: 15_000 },
    );
    const after = await marker(trip.id);
    expect(after).toEqual(expect.objectContaining({ lat: last.latitude, lng: last.longitude }));
    expect(after!.transform).not.toBe(before!.transform);
    // The side list shows the trip's status and its newest position.
    const item = await page.textContent(`#trips li[data-trip-id="${trip.id}"]`);
    expect(item).toContain('IN_TRANSIT');
    expect(item).toContain(last.latitude.toFixed(4));

    mkdirSync(OUTPUT_DIR, { recursive: true });
    await page.screenshot({ path: join(OUTPUT_DIR, 'live-page.png') });

    // The page refreshes its access token before it expires (30 s here: at 5 s) and tells its socket; the trip
    // room still delivers afterwards.
    const stored = () =>
      page.evaluate(() => JSON.parse(sessionStorage.getItem('waybill-live') ?? '{}') as { access?: string });
    const firstToken = (await stored()).access;
    expect(firstToken).toBeTruthy();
    await page.waitForFunction(
      (old) => (JSON.parse(sessionStorage.getItem('waybill-live') ?? '{}') as { access?: string }).access !== old,
      firstToken,
      { timeout: 20_000 },
    );
    // Past the first token's expiry: a socket still on it would have been cut off (`auth.expired`).
    await new Promise((r) => setTimeout(r, Math.max(0, loggedInAt + 32_000 - Date.now())));
    const relogin = await t.api.post('/auth/login', { phone: w.driver.phone, password: w.driver.password });
    expect(relogin.status).toBe(200);
    const later = { latitude: 27.2, longitude: 76.0 };
    const res = await t.api.post(
      '/tracking/ping',
      { tripId: trip.id, locations: [{ ...later, timestamp: new Date(t0 + 20 * 60_000).toISOString(), speed: 14 }] },
      { token: relogin.body.data.accessToken },
    );
    expect(res.status).toBe(200);
    await page.waitForFunction(
      ({ id, lat }) =>
        Number(document.querySelector(`#markers .marker[data-trip-id="${id}"]`)?.getAttribute('data-lat')) === lat,
      { id: trip.id, lat: later.latitude },
      { timeout: 15_000 },
    );
    expect(await page.getAttribute('#connection', 'data-state')).toBe('online');
    expect(pageErrors).toEqual([]);
  }, 60_000);
});
