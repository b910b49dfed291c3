#!/usr/bin/env node
// Runs every benchmark in test/bench (or those named on the command line), one
// after another, each in its own process. Each prints one JSON line of figures.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const dir = path.join(__dirname, '..', 'test', 'bench');
const wanted = process.argv.slice(2);
const benches = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)))
  .sort();
let failed = 0;
for (const file of benches) {
  process.stderr.write(`\n# ${file}\n`);
  const res = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(dir, file)], {
    stdio: 'inherit',
    env: { ...process.env, TS_NODE_PROJECT: path.join(__dirname, '..', 'tsconfig.json') },
  });
  if (res.status !== 0) failed += 1;
}
process.exit(failed ? 1 : 0);
