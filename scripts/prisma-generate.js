#!/usr/bin/env node
// Generates the Prisma client into src/generated/prisma. The CLI insists on a
// schema-engine binary even though `generate` never runs it; when none is
// installed, any existing file satisfies the check. Skips the work when the
// schema has not changed since the last generation.
const { execFileSync } = require('node:child_process');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const schema = fs.readFileSync(path.join(root, 'prisma/schema.prisma'));
const prismaPkg = require(path.join(root, 'node_modules/prisma/package.json'));
const stamp = createHash('sha256').update(schema).update(prismaPkg.version).digest('hex');
const out = path.join(root, 'src/generated/prisma');
const stampFile = path.join(out, '.schema-hash');

if (fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === stamp) process.exit(0);

const env = { ...process.env, PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' };
if (!env.PRISMA_SCHEMA_ENGINE_BINARY) env.PRISMA_SCHEMA_ENGINE_BINARY = process.execPath;
try {
  execFileSync(process.execPath, [path.join(root, 'node_modules/prisma/build/index.js'), 'generate'], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
} catch (err) {
  process.stderr.write(String(err.stdout || '') + String(err.stderr || ''));
  process.exit(1);
}
fs.writeFileSync(stampFile, stamp);
