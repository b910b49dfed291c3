import 'reflect-metadata';
import { ConfigError, loadConfig } from './infra/config/config';
import { createApp } from './app';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78);
    }
    throw err;
  }
  const app = await createApp(config);
  // Nest closes the app on SIGTERM/SIGINT (draining in-flight requests); if
  // that takes longer than allowed, leave anyway.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      setTimeout(() => {
        process.stderr.write(`shutdown took longer than ${config.shutdownTimeoutMs} ms; exiting\n`);
        process.exit(1);
      }, config.shutdownTimeoutMs).unref();
    });
  }
  await app.listen({ port: config.port, host: config.host });
  app
    .getHttpAdapter()
    .getInstance()
    .log.info(`Waybill listening on ${await app.getUrl()}`);
}

void main().catch((err: Error) => {
  process.stderr.write(`Waybill failed to start: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
