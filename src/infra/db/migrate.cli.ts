import { join } from 'node:path';
import { loadConfig } from '../config/config';
import { migrate } from './migration-runner';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  if (config.databaseTransactionPooler) {
    // The runner holds a session advisory lock across its transactions: a transaction pooler would lose it.
    throw new Error(
      'DATABASE_URL has pgbouncer=true: run migrations against the primary directly (docs/deployment.md)',
    );
  }
  const dir = join(__dirname, '..', '..', '..', 'prisma', 'migrations');
  const report = await migrate(config.databaseUrl, dir);
  const list = report.applied.length ? `: ${report.applied.join(', ')}` : '';
  process.stdout.write(
    `migrations: ${report.applied.length} applied, ${report.alreadyApplied} already up to date${list}\n`,
  );
}

main().catch((err: Error) => {
  process.stderr.write(`migration failed: ${err.message}\n`);
  process.exit(1);
});
