#!/usr/bin/env node
/* global fetch */
// Creates the world a load test runs against, through the public API, and
// writes what the virtual users need into CSV payloads (tmp/load/*.csv):
//
//   node scripts/load-setup.js --url http://127.0.0.1:3000 [--orgs 10] [--drivers-per-org 10] [--out tmp/load]
//
// Per org: an OWNER (the merchant), an ACCOUNTANT, a STAFF scanner, drivers
// with a truck and an IN_TRANSIT trip each (source: this org, destination:
// the next org), an account with the next org holding invoices and payments,
// and public QR tags on its trucks. Registrations are many logins from one
// address: run the server with AUTH_RATE_LIMIT_PER_MINUTE raised (see
// docs/load-test.md). Sessions resume with the access token written here
// (keep JWT_ACCESS_TTL_SECONDS above the length of the run: the setup's
// tokens must outlive it); a share of them log in with the phone/password.
const { mkdirSync, writeFileSync } = require('node:fs');
const { join, resolve } = require('node:path');
const { randomBytes } = require('node:crypto');

const PASSWORD = 'load-test-password';

function args(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith('--')) out[argv[i].slice(2)] = argv[i + 1];
  }
  return out;
}

async function call(url, method, path, body, token, headers = {}) {
  const res = await fetch(`${url}/api/v1${path}`, {
    method,
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text).data : undefined;
}

const run = randomBytes(3).toString('hex');
let phoneSeq = 0;
/** A phone unique to this setup run: +91 7 <6 hex digits as decimal> <4-digit sequence>. */
const nextPhone = () => `+917${String(parseInt(run, 16) % 1e5).padStart(5, '0')}${String(++phoneSeq).padStart(4, '0')}`;

async function register(url, name) {
  const phone = nextPhone();
  const r = await call(url, 'POST', '/auth/register', { phone, name, password: PASSWORD });
  return { phone, token: r.accessToken, id: r.user.id };
}

/** Runs `fn(i)` for i < n, `width` at a time. */
async function pool(n, width, fn) {
  const out = [];
  for (let i = 0; i < n; i += width) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(width, n - i) }, (_, j) => fn(i + j)))));
  }
  return out;
}

function csv(file, header, rows) {
  writeFileSync(file, [header.join(','), ...rows.map((r) => r.join(','))].join('\n') + '\n');
}

async function setup({ url, orgs: nOrgs = 10, driversPerOrg = 10, out = 'tmp/load', log = () => {} }) {
  const started = Date.now();
  const orgs = await pool(nOrgs, 5, async (o) => {
    const owner = await register(url, `Load Owner ${o}`);
    const org = await call(url, 'POST', '/orgs', { name: `Load Traders ${run} ${o}`, city: 'Indore' }, owner.token);
    const accountant = await register(url, `Load Accountant ${o}`);
    const scanner = await register(url, `Load Scanner ${o}`);
    await call(url, 'POST', `/orgs/${org.id}/members`, { phone: accountant.phone, role: 'ACCOUNTANT' }, owner.token);
    await call(url, 'POST', `/orgs/${org.id}/members`, { phone: scanner.phone, role: 'STAFF' }, owner.token);
    return { id: org.id, owner, accountant, scanner, drivers: [], tags: [] };
  });
  log(`setup: ${nOrgs} orgs with owner, accountant and scanner`);

  for (const [o, org] of orgs.entries()) {
    const dest = orgs[(o + 1) % nOrgs];
    org.drivers = await pool(driversPerOrg, 5, async (d) => {
      const user = await register(url, `Load Driver ${o}.${d}`);
      const profile = await call(
        url,
        'POST',
        `/orgs/${org.id}/drivers`,
        { phone: user.phone, deviceId: `load-${run}-${o}-${d}` },
        org.owner.token,
      );
      const truck = await call(
        url,
        'POST',
        `/orgs/${org.id}/trucks`,
        { number: `LD ${run} ${o}-${d}` },
        org.owner.token,
      );
      const trip = await call(
        url,
        'POST',
        '/trips',
        {
          sourceOrgId: org.id,
          destinationOrgId: dest.id,
          truckId: truck.id,
          driverId: profile.id,
          startPoint: { name: 'Indore', lat: 22.72, lng: 75.86 },
          endPoint: { name: 'Delhi', lat: 28.61, lng: 77.21 },
        },
        org.owner.token,
      );
      for (const status of ['LOADING', 'IN_TRANSIT'])
        await call(url, 'POST', `/trips/${trip.id}/status`, { status }, org.owner.token);
      const tag = await call(
        url,
        'POST',
        '/qr/tags',
        { orgId: org.id, entityType: 'TRUCK', entityId: truck.id, title: `Truck ${o}-${d}`, isPublic: true },
        org.owner.token,
      );
      org.tags.push(tag.code);
      return { phone: user.phone, token: user.token, tripId: trip.id };
    });
    log(`setup: org ${o + 1}/${nOrgs}: ${driversPerOrg} drivers, trucks, IN_TRANSIT trips, tags`);
  }

  for (const [o, org] of orgs.entries()) {
    const dest = orgs[(o + 1) % nOrgs];
    const account = await call(
      url,
      'POST',
      `/orgs/${org.id}/accounts`,
      { counterpartyOrgId: dest.id },
      org.owner.token,
    );
    org.accountId = account.id;
    for (let i = 0; i < 20; i++) {
      const key = { 'idempotency-key': `load-${run}-${o}-${i}` };
      if (i % 4 === 3) {
        await call(
          url,
          'POST',
          `/ledger/accounts/${account.id}/payments`,
          { amount: 150_000, method: 'UPI' },
          org.owner.token,
          key,
        );
      } else {
        await call(
          url,
          'POST',
          `/ledger/accounts/${account.id}/invoices`,
          { number: `INV-${run}-${o}-${i}`, amount: 100_000 + i * 1_000 },
          org.owner.token,
          key,
        );
      }
    }
  }
  log(`setup: ${nOrgs} accounts with 20 ledger postings each`);

  const dir = resolve(out);
  mkdirSync(dir, { recursive: true });
  // Fixes are placed by time along a line from this instant (see scripts/load-processor.js), so that
  // any two virtual users pinging the same trip send consistent positions.
  const worldStart = Date.now();
  csv(
    join(dir, 'drivers.csv'),
    ['driverPhone', 'driverPassword', 'driverToken', 'driverTripId', 'worldStart'],
    orgs.flatMap((org) => org.drivers.map((d) => [d.phone, PASSWORD, d.token, d.tripId, worldStart])),
  );
  csv(
    join(dir, 'merchants.csv'),
    ['merchantPhone', 'merchantPassword', 'merchantToken', 'merchantOrgId'],
    orgs.map((org) => [org.owner.phone, PASSWORD, org.owner.token, org.id]),
  );
  csv(
    join(dir, 'watchers.csv'),
    ['watcherToken', 'watchTripId', 'watchOrgId'],
    orgs.flatMap((org) => org.drivers.map((d) => [org.owner.token, d.tripId, org.id])),
  );
  csv(
    join(dir, 'accountants.csv'),
    ['accountantPhone', 'accountantPassword', 'accountantToken', 'accountantOrgId', 'accountId'],
    orgs.map((org) => [org.accountant.phone, PASSWORD, org.accountant.token, org.id, org.accountId]),
  );
  csv(
    join(dir, 'scanners.csv'),
    ['scannerToken', 'tagCode'],
    orgs.flatMap((org) => org.tags.map((code) => [org.scanner.token, code])),
  );
  log(`setup: done in ${((Date.now() - started) / 1000).toFixed(1)} s; payloads in ${dir}`);
  return { dir, orgs: nOrgs, drivers: nOrgs * driversPerOrg };
}

module.exports = { setup };

if (require.main === module) {
  const a = args(process.argv.slice(2));
  setup({
    url: (a.url || 'http://127.0.0.1:3000').replace(/\/+$/, ''),
    orgs: Number(a.orgs || 10),
    driversPerOrg: Number(a['drivers-per-org'] || 10),
    out: a.out || 'tmp/load',
    log: (m) => process.stdout.write(`${m}\n`),
  }).catch((err) => {
    process.stderr.write(`load setup failed: ${err.message}\n`);
    process.exit(1);
  });
}
