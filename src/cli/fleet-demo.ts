import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { demoRoutes, Fix, maxSpeedup, randomSource, TruckMotion } from './fleet-sim';
import { City, FIRST_NAMES, haversineM } from './india-routes';

/**
 * `npm run demo`: a fleet driving between Indian cities against a running
 * server, through the public API only. Sets up two trading orgs, trucks and
 * drivers (idempotent: found again on a re-run), then each truck loops: a
 * trip is created, loaded (QR scan), driven (batched pings, now and then a
 * stretch offline and its backlog), unloaded, invoiced and paid, completed;
 * the driver and the orgs chat on the trip's thread. Every third truck
 * reports through the OsmAnd endpoint with its tracker token, as Traccar
 * Client does. Sessions are kept in a state file and refreshed, so re-runs
 * do not spend the login rate limit.
 *
 *   npm run demo -- --url http://127.0.0.1:3000 --trucks 10 --speedup 2.5 --duration 600
 *
 * `--speedup` multiplies the distance driven per second; fixes carry real times (the server refuses fixes from the
 * future), so it is capped below the server's implied-speed filter (`--max-implied-speed`, 70 m/s by default).
 */

const PASSWORD = 'waybill-demo';
const CRUISE_MPS = 16; // about 58 km/h
const OWNER_A = { phone: '+919810000001', name: 'Ramesh Sharma', org: 'Sharma Traders (demo)', city: 'Jaipur' };
const OWNER_B = { phone: '+919810000002', name: 'Sunita Gupta', org: 'Gupta Wholesale (demo)', city: 'Indore' };
const driverPhone = (i: number) => `+9198100${String(10000 + i).slice(1)}`;

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterSec = 0,
  ) {
    super(message);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface TokenAnswer {
  user?: { id: string };
  accessToken: string;
  refreshToken: string;
}

interface StoredSession {
  refreshToken: string;
}

/** Refresh tokens by phone, per server, so that the next run refreshes instead of logging in again. */
class SessionStore {
  private data: Record<string, Record<string, StoredSession>> = {};
  constructor(
    private readonly file: string,
    private readonly url: string,
  ) {
    try {
      this.data = JSON.parse(readFileSync(file, 'utf8')) as typeof this.data;
    } catch {
      this.data = {};
    }
  }
  get(phone: string): StoredSession | undefined {
    return this.data[this.url]?.[phone];
  }
  set(phone: string, s: StoredSession | undefined): void {
    const forUrl = (this.data[this.url] ??= {});
    if (s) forUrl[phone] = s;
    else delete forUrl[phone];
    mkdirSync(join(this.file, '..'), { recursive: true });
    writeFileSync(this.file, JSON.stringify(this.data, null, 2), { mode: 0o600 });
  }
}

/** One user's session: logs in once (or refreshes a stored token), refreshes before expiry, retries a 401 once. */
class Session {
  private access = '';
  private expiresAt = 0;
  private refreshing: Promise<void> | null = null;
  userId = '';

  constructor(
    readonly client: Client,
    readonly phone: string,
    readonly name: string,
  ) {}

  async start(): Promise<void> {
    const stored = this.client.store.get(this.phone);
    if (stored) {
      try {
        await this.refresh(stored.refreshToken);
        return;
      } catch {
        /* ended or revoked: log in */
      }
    }
    await this.login();
  }

  /**
   * A session without a stored token: register (the demo user is new on a fresh server), or log in when the
   * phone is taken. One counted attempt per user on either path; a 429 waits as long as it says.
   */
  private async login(): Promise<void> {
    let register = true;
    for (;;) {
      try {
        const res = register
          ? await this.client.raw<TokenAnswer>('POST', '/auth/register', {
              phone: this.phone,
              name: this.name,
              password: PASSWORD,
            })
          : await this.client.raw<TokenAnswer>('POST', '/auth/login', { phone: this.phone, password: PASSWORD });
        this.accept(res);
        return;
      } catch (err) {
        if (register && err instanceof ApiError && err.status === 409) {
          register = false;
          continue;
        }
        if (err instanceof ApiError && err.status === 429) {
          this.client.note(`login rate limited, waiting ${err.retryAfterSec} s`);
          process.stdout.write(`login rate limited, waiting ${err.retryAfterSec} s\n`);
          await sleep(Math.max(1, err.retryAfterSec) * 1000);
          continue;
        }
        throw err;
      }
    }
  }

  private accept(data: TokenAnswer): void {
    this.access = data.accessToken;
    if (data.user) this.userId = data.user.id;
    try {
      const payload = JSON.parse(Buffer.from(data.accessToken.split('.')[1], 'base64url').toString()) as {
        exp: number;
        sub?: string;
      };
      this.expiresAt = payload.exp * 1000;
      if (!this.userId && payload.sub) this.userId = payload.sub;
    } catch {
      this.expiresAt = Date.now() + 60_000;
    }
    this.client.store.set(this.phone, { refreshToken: data.refreshToken });
  }

  private async refresh(token?: string): Promise<void> {
    const refreshToken = token ?? this.client.store.get(this.phone)?.refreshToken;
    if (!refreshToken) return this.login();
    this.refreshing ??= this.client
      .raw<TokenAnswer>('POST', '/auth/refresh', { refreshToken })
      .then((res) => this.accept(res))
      .catch(async (err) => {
        if (err instanceof ApiError && err.status === 401) {
          this.client.store.set(this.phone, undefined);
          await this.login();
          return;
        }
        throw err;
      })
      .finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  async token(): Promise<string> {
    if (!this.access || Date.now() > this.expiresAt - 60_000) await this.refresh();
    return this.access;
  }

  async call<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    try {
      return await this.client.raw<T>(method, path, body, {
        ...headers,
        authorization: `Bearer ${await this.token()}`,
      });
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401) throw err;
      await this.refresh();
      return this.client.raw<T>(method, path, body, { ...headers, authorization: `Bearer ${this.access}` });
    }
  }

  async me(): Promise<{ user: { id: string }; memberships: Array<{ orgId: string; role: string; orgName: string }> }> {
    const me = await this.call<{
      user: { id: string };
      memberships: Array<{ orgId: string; role: string; orgName: string }>;
    }>('GET', '/me');
    this.userId = me.user.id;
    return me;
  }
}

class Client {
  readonly api: string;
  messages: string[] = [];
  constructor(
    readonly root: string,
    readonly store: SessionStore,
  ) {
    this.api = `${root}/api/v1`;
  }

  note(line: string): void {
    this.messages.push(`${new Date().toISOString().slice(11, 19)} ${line}`);
    if (this.messages.length > 5) this.messages.shift();
  }

  async raw<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<T> {
    const res = await fetch(this.api + path, {
      method,
      headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const json = text ? (JSON.parse(text) as { data?: T; error?: { code: string; message: string } }) : {};
    if (!res.ok) {
      throw new ApiError(
        res.status,
        json.error?.code ?? String(res.status),
        `${method} ${path}: ${res.status} ${json.error?.code ?? ''} ${json.error?.message ?? ''}`.trim(),
        Number(res.headers.get('retry-after') ?? 0),
      );
    }
    return json.data as T;
  }
}

interface Stats {
  pings: number;
  osmand: number;
  rejected: number;
  offline: number;
  tripsDone: number;
  scans: number;
  messages: number;
  invoices: number;
  errors: number;
  byStatus: Record<string, number>;
}

interface World {
  a: Session;
  b: Session;
  orgA: string;
  orgB: string;
  accountId: string;
}

/** One demo truck and its driver, looping over trips. */
class Truck {
  status = 'IDLE';
  tripId = '';
  private motion: TruckMotion | null = null;
  private buffer: Fix[] = [];
  private bufferTimes: number[] = [];
  private offlineUntil = 0;
  private lastPost = 0;
  private threadId = '';
  private tagCode = '';
  private trips = 0;
  private halfwaySaid = false;

  constructor(
    readonly index: number,
    readonly number: string,
    readonly truckId: string,
    readonly driverId: string,
    readonly driver: Session,
    readonly trackerToken: string | null,
    private route: [City, City],
    private readonly world: World,
    private readonly client: Client,
    private readonly stats: Stats,
    private readonly random: () => number,
    private readonly opts: { speedup: number; intervalMs: number; headStart: number },
  ) {}

  get label(): string {
    return `${this.number} ${this.route[0].name}→${this.route[1].name}`;
  }

  /** Finishes or cancels a trip a previous run left active, so the driver and truck are free. */
  async clearLeftovers(): Promise<void> {
    const trips = await this.world.a.call<Array<{ id: string; status: string }>>(
      'GET',
      `/trips?orgId=${this.world.orgA}&driverId=${this.driverId}&limit=20&fields=id,status`,
    );
    for (const t of trips) {
      if (t.status === 'ARRIVED') await this.setStatus(t.id, 'COMPLETED', this.world.a);
      else if (['PLANNED', 'LOADING', 'IN_TRANSIT'].includes(t.status))
        await this.setStatus(t.id, 'CANCELLED', this.world.a, 'demo restarted');
    }
  }

  private async setStatus(tripId: string, status: string, by: Session, note?: string): Promise<void> {
    try {
      await by.call('POST', `/trips/${tripId}/status`, note ? { status, note } : { status });
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 409 || err.code !== 'ILLEGAL_TRANSITION') throw err;
      // The server got there first (its arrival detector moves a trip to ARRIVED near the destination).
      const trip = await by.call<{ status: string }>('GET', `/trips/${tripId}?fields=status`);
      if (trip.status !== status) throw err;
    }
    if (tripId === this.tripId) this.status = status;
  }

  private async say(body: string, by: Session = this.driver): Promise<void> {
    if (!this.threadId) return;
    await by.call('POST', `/chat/threads/${this.threadId}/messages`, { body, clientMessageId: randomUUID() });
    this.stats.messages += 1;
  }

  private async scan(action: 'LOAD' | 'UNLOAD'): Promise<void> {
    if (!this.tagCode || !this.motion) return;
    const at = this.motion.fix();
    await this.driver.call('POST', '/qr/scan', {
      code: this.tagCode,
      action,
      tripId: this.tripId,
      lat: at.lat,
      lng: at.lng,
    });
    this.stats.scans += 1;
  }

  /** A new trip on the current route: created by the source org, with its thread and a cargo tag. */
  private async startTrip(): Promise<void> {
    const [from, to] = this.route;
    const trip = await this.world.a.call<{ id: string }>('POST', '/trips', {
      sourceOrgId: this.world.orgA,
      destinationOrgId: this.world.orgB,
      truckId: this.truckId,
      driverId: this.driverId,
      startPoint: { name: from.name, lat: from.lat, lng: from.lng },
      endPoint: { name: to.name, lat: to.lat, lng: to.lng },
      estimatedArrival: new Date(
        Date.now() + ((haversineM(from, to) * 1.2) / (CRUISE_MPS * this.opts.speedup)) * 1000,
      ).toISOString(),
    });
    this.tripId = trip.id;
    this.status = 'PLANNED';
    this.halfwaySaid = false;
    // The first trip of a run starts somewhere along its road, so that the map is busy at once.
    const startShare = this.trips === 0 ? this.random() * this.opts.headStart : 0;
    this.motion = new TruckMotion(
      from,
      to,
      (this.random() - 0.5) * 0.25,
      CRUISE_MPS,
      this.opts.speedup,
      this.random,
      startShare,
    );
    this.trips += 1;
    const thread = await this.world.a.call<{ id: string }>('POST', '/chat/threads', { tripId: trip.id });
    this.threadId = thread.id;
    const tag = await this.world.a.call<{ code: string }>('POST', '/qr/tags', {
      orgId: this.world.orgA,
      entityType: 'CARGO',
      entityId: trip.id,
      title: `Cargo ${from.name} to ${to.name}`,
    });
    this.tagCode = tag.code;
    await this.say(`Trip ${from.name} to ${to.name} planned for ${this.number}.`, this.world.a);
  }

  /** One step of the truck's life, called about once a second. */
  async tick(now: number): Promise<void> {
    switch (this.status) {
      case 'IDLE':
      case 'COMPLETED':
        await this.startTrip();
        return;
      case 'PLANNED':
        await this.setStatus(this.tripId, 'LOADING', this.driver);
        await this.scan('LOAD');
        await this.say(`Loading at ${this.route[0].name}.`);
        this.sample(now, 0);
        return;
      case 'LOADING':
        this.sample(now, 0);
        await this.flush(now, false);
        if (this.random() < 0.15) {
          await this.flush(now, true);
          await this.setStatus(this.tripId, 'IN_TRANSIT', this.driver);
          await this.say(`Loaded, leaving ${this.route[0].name}.`);
        }
        return;
      case 'IN_TRANSIT': {
        this.sample(now, 1);
        if (!this.halfwaySaid && this.motion!.share > 0.5) {
          this.halfwaySaid = true;
          await this.say(`Half way, ${Math.round(this.motion!.remainingM / 1000)} km to go.`).catch(() => undefined);
        }
        if (now > this.offlineUntil && this.offlineUntil > 0) this.offlineUntil = 0;
        if (!this.offlineUntil && this.random() < 0.004) {
          // No signal for a while (a ghat, a stretch of highway): fixes pile up, sent later as a backlog.
          this.offlineUntil = now + (20 + this.random() * 60) * 1000;
          this.client.note(`${this.number} lost signal`);
        }
        await this.flush(now, false);
        if (this.motion!.arrived) {
          this.offlineUntil = 0;
          await this.flush(now, true);
          await this.setStatus(this.tripId, 'ARRIVED', this.driver);
          await this.deliver();
        }
        return;
      }
      case 'ARRIVED':
        this.sample(now, 0);
        await this.flush(now, false);
        if (this.random() < 0.1) {
          await this.flush(now, true);
          await this.setStatus(this.tripId, 'COMPLETED', this.world.a);
          this.stats.tripsDone += 1;
          this.route = [this.route[1], this.route[0]];
        }
        return;
      default:
        return;
    }
  }

  /** At the destination: unload scan, a word on the thread, the invoice and its payment. */
  private async deliver(): Promise<void> {
    await this.scan('UNLOAD');
    await this.say(`Reached ${this.route[1].name}, unloading.`);
    await this.say('Received in good condition, thanks.', this.world.b);
    const km = Math.round(this.motion!.lengthM / 1000);
    const amount = km * 40 * 100 + Math.round(this.random() * 500) * 100; // about ₹40 a km, in paise
    const invoice = await this.world.a.call<{ id: string }>(
      'POST',
      `/ledger/accounts/${this.world.accountId}/invoices`,
      { number: `DEMO-${this.tripId.slice(-12)}`, amount, tripId: this.tripId, memo: `Freight ${this.label}` },
      { 'idempotency-key': `demo-invoice-${this.tripId}` },
    );
    await this.world.b.call(
      'POST',
      `/ledger/accounts/${this.world.accountId}/payments`,
      { amount, method: 'UPI', invoiceId: invoice.id, reference: `UPI${Date.now()}` },
      { 'idempotency-key': `demo-payment-${this.tripId}` },
    );
    this.stats.invoices += 1;
  }

  private sample(now: number, moving: 0 | 1): void {
    if (!this.motion) return;
    const fix = moving ? this.motion.advance(1) : this.motion.fix();
    if (!moving) fix.speed = 0;
    this.buffer.push(fix);
    this.bufferTimes.push(now);
  }

  /** Posts the buffered fixes every few seconds (all of them, in order, once back online). */
  private async flush(now: number, force: boolean): Promise<void> {
    if (this.buffer.length === 0) return;
    if (!force && (now < this.offlineUntil || now - this.lastPost < this.opts.intervalMs)) return;
    if (this.offlineUntil && now < this.offlineUntil && !force) return;
    const fixes = this.buffer.splice(0);
    const times = this.bufferTimes.splice(0);
    if (fixes.length > 20) this.client.note(`${this.number} back online, sending ${fixes.length} fixes`);
    this.lastPost = now;
    try {
      if (this.trackerToken) await this.postOsmand(fixes, times);
      else {
        for (let i = 0; i < fixes.length; i += 1000) {
          const res = await this.driver.call<{ accepted: number; rejected: unknown[] }>('POST', '/tracking/ping', {
            tripId: this.tripId,
            locations: fixes.slice(i, i + 1000).map((f, j) => ({
              latitude: f.lat,
              longitude: f.lng,
              timestamp: new Date(times[i + j]).toISOString(),
              speed: f.speed,
              heading: f.heading,
              accuracy: f.accuracy,
            })),
          });
          this.stats.pings += res.accepted;
          this.stats.rejected += res.rejected.length;
        }
      }
    } catch (err) {
      // Keep them for the next flush, as a phone app would.
      this.buffer.unshift(...fixes);
      this.bufferTimes.unshift(...times);
      throw err;
    }
  }

  /** As Traccar Client sends them: one GET per fix, speed in knots, the tracker token as `id`. */
  private async postOsmand(fixes: Fix[], times: number[]): Promise<void> {
    for (let i = 0; i < fixes.length; i++) {
      const f = fixes[i];
      const q = new URLSearchParams({
        id: this.trackerToken!,
        lat: f.lat.toFixed(6),
        lon: f.lng.toFixed(6),
        timestamp: String(Math.floor(times[i] / 1000)),
        speed: (f.speed / 0.514444).toFixed(1),
        bearing: String(f.heading),
        accuracy: String(f.accuracy),
        altitude: '300',
        batt: String(60 + ((this.index * 7) % 40)),
      });
      const res = await fetch(`${this.client.api}/tracking/osmand?${q.toString()}`, { method: 'POST' });
      if (res.status === 200) this.stats.osmand += 1;
      else if (res.status === 429) {
        // The server keeps its own counter; the app keeps the fixes and retries.
        this.buffer.unshift(...fixes.slice(i));
        this.bufferTimes.unshift(...times.slice(i));
        return;
      } else this.stats.rejected += 1;
    }
  }
}

async function findOrCreateOrg(s: Session, name: string, city: string): Promise<string> {
  const me = await s.me();
  const mine = me.memberships.find((m) => m.orgName === name && m.role === 'OWNER');
  if (mine) return mine.orgId;
  return (await s.call<{ id: string }>('POST', '/orgs', { name, city })).id;
}

async function listAll<T>(s: Session, path: string): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | null = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const url = `${path}${sep}limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const res = await fetch(`${s.client.api}${url}`, {
      headers: { authorization: `Bearer ${await s.token()}` },
    });
    const body = (await res.json()) as { data: T[]; meta?: { nextCursor: string | null } };
    if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
    out.push(...body.data);
    cursor = body.meta?.nextCursor ?? null;
  } while (cursor);
  return out;
}

async function setUp(
  client: Client,
  count: number,
  seed: number,
  stats: Stats,
  opts: { speedup: number; intervalMs: number; headStart: number },
) {
  const a = new Session(client, OWNER_A.phone, OWNER_A.name);
  const b = new Session(client, OWNER_B.phone, OWNER_B.name);
  await a.start();
  await b.start();
  const orgA = await findOrCreateOrg(a, OWNER_A.org, OWNER_A.city);
  const orgB = await findOrCreateOrg(b, OWNER_B.org, OWNER_B.city);
  let accountId: string;
  try {
    accountId = (await a.call<{ id: string }>('POST', `/orgs/${orgA}/accounts`, { counterpartyOrgId: orgB })).id;
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 409) throw err;
    const accounts = await listAll<{ id: string; counterpartyOrgId?: string; orgAId?: string; orgBId?: string }>(
      a,
      `/orgs/${orgA}/accounts`,
    );
    const found = accounts.find((x) => [x.counterpartyOrgId, x.orgAId, x.orgBId].includes(orgB));
    if (!found) throw err;
    accountId = found.id;
  }
  const world: World = { a, b, orgA, orgB, accountId };

  const trucks = await listAll<{ id: string; number: string }>(a, `/orgs/${orgA}/trucks`);
  const drivers = await listAll<{ id: string; phone: string | null }>(a, `/orgs/${orgA}/drivers`);
  const routes = demoRoutes();
  const random = randomSource(seed);
  const fleet: Truck[] = [];
  for (let i = 0; i < count; i++) {
    const route = routes[(i * 7) % routes.length];
    const number = `${route[0].rto} DM ${String(1001 + i)}`;
    const truckId =
      trucks.find((t) => t.number === number)?.id ??
      (await a.call<{ id: string }>('POST', `/orgs/${orgA}/trucks`, { number, type: 'TRAILER', capacityKg: 25000 })).id;
    const phone = driverPhone(i);
    const driver = new Session(client, phone, `${FIRST_NAMES[i % FIRST_NAMES.length]} (demo driver ${i + 1})`);
    // Drivers log in one by one: a handful of logins per run at most, far under the per-address limit.
    await driver.start();
    let driverId = drivers.find((d) => d.phone === phone)?.id;
    let trackerToken: string | null = null;
    if (!driverId) {
      const created = await a.call<{ id: string; trackerToken: string }>('POST', `/orgs/${orgA}/drivers`, {
        phone,
        deviceId: `demo-phone-${i + 1}`,
        licenseNo: `${route[0].rto}-2019000${1000 + i}`,
      });
      driverId = created.id;
      trackerToken = created.trackerToken;
    }
    if (i % 3 === 2) {
      // An OsmAnd reporter: the token is shown only when issued, so issue one each run.
      trackerToken ??= (
        await a.call<{ trackerToken: string }>('POST', `/orgs/${orgA}/drivers/${driverId}/tracker-token`)
      ).trackerToken;
    } else trackerToken = null;
    const truck = new Truck(
      i,
      number,
      truckId,
      driverId,
      driver,
      trackerToken,
      route,
      world,
      client,
      stats,
      random,
      opts,
    );
    await truck.clearLeftovers();
    fleet.push(truck);
  }
  return { world, fleet };
}

function statusLine(stats: Stats, fleet: Truck[], started: number, client: Client): string {
  const by: Record<string, number> = {};
  for (const t of fleet) by[t.status] = (by[t.status] ?? 0) + 1;
  const elapsed = Math.round((Date.now() - started) / 1000);
  const parts = ['PLANNED', 'LOADING', 'IN_TRANSIT', 'ARRIVED'].map((s) => `${s.toLowerCase()} ${by[s] ?? 0}`);
  const last = client.messages[client.messages.length - 1] ?? '';
  return (
    `${elapsed}s | ${parts.join(' ')} | pings ${stats.pings} osmand ${stats.osmand} rejected ${stats.rejected} | ` +
    `trips done ${stats.tripsDone} scans ${stats.scans} chat ${stats.messages} invoices ${stats.invoices} errors ${stats.errors}` +
    (last ? ` | ${last}` : '')
  );
}

export interface DemoOptions {
  url: string;
  trucks: number;
  /** 1 is real speed; capped under the implied-speed filter. */
  speedup: number;
  maxImpliedSpeed: number;
  intervalSec: number;
  /** Seconds; 0 runs until `stop.requested`. */
  durationSec: number;
  headStart: number;
  seed: number;
  stateFile: string;
}

export interface DemoOutput {
  write(text: string): void;
  /** An updating status line (a terminal) rather than a line every 10 s. */
  tty: boolean;
  columns?: number;
}

/** Sets the fleet up and drives it until the duration ends or `stop.requested` is set; returns the counters. */
export async function runDemo(o: DemoOptions, out: DemoOutput, stop: { requested: boolean } = { requested: false }) {
  const url = o.url.replace(/\/+$/, '');
  const count = Math.max(1, o.trucks);
  const limit = maxSpeedup(CRUISE_MPS, o.maxImpliedSpeed);
  let speedup = o.speedup;
  if (speedup > limit) {
    out.write(
      `--speedup ${speedup} would put fixes over the server's implied-speed filter; using ${limit} (fixes carry real times)\n`,
    );
    speedup = limit;
  }
  const intervalMs = Math.max(1, o.intervalSec) * 1000;
  const client = new Client(url, new SessionStore(o.stateFile, url));
  const stats: Stats = {
    pings: 0,
    osmand: 0,
    rejected: 0,
    offline: 0,
    tripsDone: 0,
    scans: 0,
    messages: 0,
    invoices: 0,
    errors: 0,
    byStatus: {},
  };
  out.write(`setting up ${count} trucks on ${url} ...\n`);
  const headStart = Math.min(0.999, Math.max(0, o.headStart));
  const { fleet } = await setUp(client, count, o.seed, stats, { speedup, intervalMs, headStart });
  out.write(
    `driving ${count} trucks (speedup ${speedup}, pings every ${intervalMs / 1000} s; every third truck over OsmAnd).\n` +
      `watch: ${url}/live  (log in as ${OWNER_A.phone} or ${OWNER_B.phone}, password ${PASSWORD})\n`,
  );
  const started = Date.now();
  const until = o.durationSec ? started + o.durationSec * 1000 : Infinity;
  let lastLine = 0;
  while (!stop.requested && Date.now() < until) {
    const tickStart = Date.now();
    await Promise.all(
      fleet.map((t) =>
        t.tick(tickStart).catch((err: Error) => {
          stats.errors += 1;
          client.note(`${t.number}: ${err.message.slice(0, 120)}`);
        }),
      ),
    );
    if (out.tty) out.write(`\r\x1b[2K${statusLine(stats, fleet, started, client)}`.slice(0, (out.columns ?? 200) + 8));
    else if (Date.now() - lastLine > 10_000) {
      lastLine = Date.now();
      out.write(`${statusLine(stats, fleet, started, client)}\n`);
    }
    await sleep(Math.max(0, 1000 - (Date.now() - tickStart)));
  }
  out.write(`\n${statusLine(stats, fleet, started, client)}\n`);
  for (const m of client.messages) out.write(`  ${m}\n`);
  out.write('stopped; trips stay as they are (the next run finishes or cancels them).\n');
  return {
    stats,
    notes: [...client.messages],
    trucks: fleet.map((t) => ({ number: t.number, tripId: t.tripId, status: t.status })),
  };
}
