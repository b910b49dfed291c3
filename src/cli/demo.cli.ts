import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFlags } from './cli-args';
import { runDemo } from './fleet-demo';

/**
 * `npm run demo`: the fleet simulator (`fleet-demo.ts`) against a running server.
 *
 *   npm run demo -- --url http://127.0.0.1:3000 --trucks 10 --speedup 2.5 --duration 600
 */
async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), {
    url: 'string',
    trucks: 'int',
    speedup: 'number',
    duration: 'int',
    interval: 'number',
    seed: 'int',
    'max-implied-speed': 'number',
    state: 'string',
    'head-start': 'number',
  });
  const stop = { requested: false };
  process.on('SIGINT', () => (stop.requested = true));
  process.on('SIGTERM', () => (stop.requested = true));
  await runDemo(
    {
      url: flags.url ?? 'http://127.0.0.1:3000',
      trucks: flags.trucks ?? 10,
      speedup: flags.speedup ?? 1,
      maxImpliedSpeed: flags['max-implied-speed'] ?? 70,
      intervalSec: flags.interval ?? 5,
      durationSec: flags.duration ?? 0,
      headStart: flags['head-start'] ?? 0.7,
      seed: flags.seed ?? 42,
      stateFile: flags.state ?? join(tmpdir(), 'waybill-demo', 'sessions.json'),
    },
    {
      write: (text) => process.stdout.write(text),
      tty: process.stdout.isTTY === true,
      columns: process.stdout.columns,
    },
    stop,
  );
}

main().catch((err: Error) => {
  process.stderr.write(`demo failed: ${err.message}\n`);
  process.exit(1);
});
