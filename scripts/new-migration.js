#!/usr/bin/env node
// Creates prisma/migrations/<UTC timestamp>_<name>/migration.sql, to be filled
// with the SQL that brings the database to the new schema.prisma.
const fs = require('node:fs');
const path = require('node:path');

const name = (process.argv[2] || '')
  .trim()
  .toLowerCase()
  .replace(/[^a-z0-9]+/g, '_')
  .replace(/^_|_$/g, '');
if (!name) {
  process.stderr.write('usage: npm run db:new-migration -- <what_it_does, e.g. added_trip_indexes>\n');
  process.exit(2);
}
const stamp = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
const dir = path.join(__dirname, '..', 'prisma', 'migrations', `${stamp}_${name}`);
fs.mkdirSync(dir, { recursive: true });
fs.writeFileSync(path.join(dir, 'migration.sql'), `-- ${name.replace(/_/g, ' ')}\n`);
process.stdout.write(`${path.relative(process.cwd(), dir)}/migration.sql\n`);
