#!/usr/bin/env node
/* global fetch, URL, setTimeout */
// Runs the Artillery load test (artillery.yml) end to end:
//
//   npm run load                      # full profile (about 4 minutes of load)
//   npm run load:smoke                # short profile (under a minute); exits 1 on any error
//   npm run load -- --url http://127.0.0.1:3000   # against a running server instead
//
// Without --url it does what `npm start` does, on a database of its own
// (waybill_load_<time>, created, migrated and dropped afterwards unless
// --keep-db): starts `node dist/main.js` (compiling dist/ first only when it
// is missing or older than src/) on a free loopback port, with every rate
// limit the config knows raised to its maximum (the test logs in from one
// address, many sessions per user). Then it creates the world
// (scripts/load-setup.js), runs Artillery with --output, prints a per-scenario
// p50/p95/p99 table and exits non-zero when any request failed (an error, a
// 4xx or 5xx), any virtual user failed, a ping point was rejected, or a
// scenario never ran.
//
// Options: --smoke, --url <base>, --output <report.json> (default
// tmp/load/report-<profile>.json), --orgs <n>, --drivers-per-org <n>, --keep-db.
const { spawn, spawnSync } = require('node:child_process');
const { existsSync, readFileSync, readdirSync, statSync, mkdirSync } = require('node:fs');
const { createServer } = require('node:net');
const { join, resolve, dirname } = require('node:path');
const { setup } = require('./load-setup');

const ROOT = join(__dirname, '..');
const SCENARIOS = ['driver', 'merchant', 'watcher', 'accountant', 'scanner'];

function parseArgs(argv) {
  const out = { smoke: false, keepDb: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--smoke') out.smoke = true;
    else if (a === '--keep-db') out.keepDb = true;
    else if (a.startsWith('--')) out[a.slice(2)] = argv[++i];
  }
  return out;
}

const log = (m) => process.stdout.write(`load: ${m}\n`);

/**
 * Every rate limit and per-user cap in src/infra/config/config.ts (names with
 * RATE_LIMIT, _PER_MINUTE, _PER_SECOND or _PER_USER declared with int(min, max)),
 * set to its maximum; plus access tokens that outlive the run.
 */
function raisedLimits() {
  const text = readFileSync(join(ROOT, 'src', 'infra', 'config', 'config.ts'), 'utf8');
  const env = {};
  const re = /^\s*([A-Z][A-Z0-9_]*):\s*int\(\s*[^,]+,\s*([0-9_*\s]+)\)/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const [, name, maxExpr] = m;
    if (!/RATE_LIMIT|_PER_MINUTE|_PER_SECOND|_PER_USER/.test(name) || /FALLBACK_MAX_KEYS/.test(name)) continue;
    const max = maxExpr
      .replace(/_/g, '')
      .split('*')
      .reduce((acc, f) => acc * Number(f.trim()), 1);
    if (Number.isFinite(max)) env[name] = String(max);
  }
  env.JWT_ACCESS_TTL_SECONDS = '3600';
  return env;
}

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

function ensureBuilt() {
  const main = join(ROOT, 'dist', 'main.js');
  if (existsSync(main) && statSync(main).mtimeMs >= newestMtime(join(ROOT, 'src'))) return;
  log('dist/ is missing or older than src/: compiling (tsc -p tsconfig.build.json)');
  const res = spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: ROOT,
      stdio: 'inherit',
    },
  );
  if (res.status !== 0) throw new Error('compiling the app failed');
}

function freePort() {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolvePort(port));
    });
  });
}

function databaseUrl(name) {
  const url = new URL(process.env.DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/waybill');
  url.pathname = `/${name}`;
  return url.toString();
}

function migrate(url) {
  const res = spawnSync(process.execPath, [join(ROOT, 'dist', 'infra', 'db', 'migrate.cli.js')], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: url },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (res.status !== 0) throw new Error('migrating the load database failed');
}

async function dropDatabase(name) {
  const { Client } = require('pg');
  const admin = new Client({ connectionString: databaseUrl('postgres') });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.end();
}

/** Deletes the keys this run's server wrote under its own prefix (SCAN + DEL, nothing else). */
async function dropRedisPrefix(prefix) {
  const Redis = require('ioredis');
  const redis = new Redis(process.env.REDIS_URL || 'redis://127.0.0.1:6379', { lazyConnect: true });
  await redis.connect();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  await redis.quit();
}

async function startServer(dbUrl, limits) {
  const port = await freePort();
  const redisKeyPrefix = `load:${Date.now().toString(36)}:`;
  const env = {
    ...process.env,
    NODE_ENV: 'production',
    JWT_SECRET: process.env.JWT_SECRET || 'load-test-secret-load-test-secret',
    WEBHOOK_SECRET_KEY: process.env.WEBHOOK_SECRET_KEY || 'a1'.repeat(32),
    DATABASE_URL: dbUrl,
    DATABASE_REPLICA_URL: '',
    REDIS_KEY_PREFIX: redisKeyPrefix,
    LOG_LEVEL: 'error',
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
    ...limits,
  };
  const proc = spawn(process.execPath, [join(ROOT, 'dist', 'main.js')], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    if (proc.exitCode !== null) throw new Error(`the server exited with ${proc.exitCode}`);
    try {
      if ((await fetch(`${url}/health/live`)).ok) break;
    } catch {
      /* starting */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    stop: async () => {
      await new Promise((done) => {
        if (proc.exitCode !== null) return done();
        proc.once('exit', () => done());
        proc.kill('SIGTERM');
      });
      await dropRedisPrefix(redisKeyPrefix).catch((e) => log(`could not delete ${redisKeyPrefix}*: ${e.message}`));
    },
  };
}

function runArtillery(url, smoke, output) {
  const args = [join(ROOT, 'node_modules', 'artillery', 'bin', 'run'), 'run', '--target', url, '--output', output];
  args.push('-e', smoke ? 'smoke' : 'full');
  args.push(join(ROOT, 'artillery.yml'));
  return new Promise((done, reject) => {
    const proc = spawn(process.execPath, args, {
      cwd: ROOT,
      stdio: 'inherit',
      env: { ...process.env, ARTILLERY_DISABLE_TELEMETRY: 'true' },
    });
    proc.once('error', reject);
    proc.once('exit', (code) => done(code));
  });
}

const fmt = (x) => (x === undefined ? '-' : String(Math.round(x * 10) / 10));

/** The checks and the per-scenario table from Artillery's JSON report. */
function judge(report) {
  const c = report.aggregate.counters || {};
  const s = report.aggregate.summaries || {};
  const problems = [];
  for (const [k, v] of Object.entries(c)) {
    if (v > 0 && (k.startsWith('errors.') || /^http\.codes\.[45]\d\d$/.test(k) || k === 'vusers.failed')) {
      problems.push(`${k} = ${v}`);
    }
  }
  if (c['ping.points_rejected']) problems.push(`ping.points_rejected = ${c['ping.points_rejected']}`);
  for (const name of SCENARIOS) {
    if (!c[`vusers.created_by_name.${name}`]) problems.push(`scenario ${name} never ran`);
  }
  const rows = [];
  for (const [k, v] of Object.entries(s)) {
    const m = /^plugins\.metrics-by-endpoint\.response_time\.(.+)$/.exec(k);
    if (m) rows.push([m[1], v]);
  }
  for (const k of [
    'socketio.response_time',
    'watcher.location_lag_ms',
    'http.response_time',
    'vusers.session_length',
  ]) {
    if (s[k]) rows.push([k, s[k]]);
  }
  const lines = rows.map(
    ([name, v]) => `| ${name} | ${v.count} | ${fmt(v.median)} | ${fmt(v.p95)} | ${fmt(v.p99)} | ${fmt(v.max)} |`,
  );
  const table = ['| request | count | p50 ms | p95 ms | p99 ms | max ms |', '|---|---|---|---|---|---|', ...lines].join(
    '\n',
  );
  return { problems, table };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const profile = opts.smoke ? 'smoke' : 'full';
  const output = resolve(opts.output || join('tmp', 'load', `report-${profile}.json`));
  mkdirSync(dirname(output), { recursive: true });
  let server;
  let dbName;
  try {
    let url = opts.url && opts.url.replace(/\/+$/, '');
    if (!url) {
      ensureBuilt();
      dbName = `waybill_load_${Date.now()}`;
      const dbUrl = databaseUrl(dbName);
      migrate(dbUrl);
      const limits = raisedLimits();
      log(
        `server env: ${Object.entries(limits)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`,
      );
      server = await startServer(dbUrl, limits);
      url = server.url;
      log(`server at ${url}, database ${dbName}`);
    }
    const world = opts.smoke ? { orgs: 3, driversPerOrg: 4 } : { orgs: 10, driversPerOrg: 10 };
    await setup({
      url,
      orgs: Number(opts.orgs || world.orgs),
      driversPerOrg: Number(opts['drivers-per-org'] || world.driversPerOrg),
      out: join(ROOT, 'tmp', 'load'),
      log,
    });
    log(`artillery run -e ${profile} --target ${url} --output ${output} artillery.yml`);
    const code = await runArtillery(url, opts.smoke, output);
    const { problems, table } = judge(JSON.parse(readFileSync(output, 'utf8')));
    process.stdout.write(`\nPer request (Artillery's report ${output}):\n${table}\n\n`);
    if (code !== 0) problems.push(`artillery exited with ${code}`);
    if (problems.length) {
      log(`FAILED: ${problems.join('; ')}`);
      process.exitCode = 1;
    } else {
      log('OK: no errors, no 4xx/5xx, no rejected point, every scenario ran and no virtual user failed');
    }
  } finally {
    if (server) await server.stop();
    if (dbName && !opts.keepDb) await dropDatabase(dbName).catch((e) => log(`could not drop ${dbName}: ${e.message}`));
  }
}

main().catch((err) => {
  process.stderr.write(`load: ${err.stack || err.message}\n`);
  process.exit(1);
});
