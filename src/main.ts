import 'reflect-metadata';
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { AppConfig, ConfigError, loadConfig } from './infra/config/config';
import { createApp } from './app';

/** Set in the environment of a worker the primary forks. */
const WORKER_ENV = 'WAYBILL_CLUSTER_WORKER';

function configOrExit(): AppConfig {
  try {
    return loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78);
    }
    throw err;
  }
}

/** Processes to run: WEB_CONCURRENCY, or one per core when it is 0. */
export function processCount(config: AppConfig): number {
  return config.webConcurrency > 0 ? config.webConcurrency : availableParallelism();
}

/** One node of the service in this process: what every worker (or the only process) runs. */
async function serve(config: AppConfig): Promise<void> {
  const app = await createApp(config, { clusterWorkers: cluster.isWorker ? processCount(config) : 1 });
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
  if (!cluster.isWorker || cluster.worker?.id === 1)
    app
      .getHttpAdapter()
      .getInstance()
      .log.info(`Waybill listening on ${await app.getUrl()}${cluster.isWorker ? ` (${processCount(config)} processes)` : ''}`);
}

/**
 * The cluster's primary: forks the workers, which share the port (the primary
 * hands out connections round-robin). Each worker is a node like any other
 * (its own pools, caches and cluster-bus subscription). A worker that dies
 * after it started is replaced; one that fails before it listens ends the
 * whole service with its exit code (a bad config or an unreachable database
 * would fail every fork alike). SIGTERM/SIGINT go to every worker, and the
 * primary leaves once they all have.
 */
function runPrimary(config: AppConfig, count: number): void {
  const listening = new Set<number>();
  let stopping = false;
  const fork = () => {
    const worker = cluster.fork({ [WORKER_ENV]: '1' });
    worker.once('listening', () => listening.add(worker.id));
    worker.once('exit', (code, signal) => {
      const started = listening.delete(worker.id);
      if (stopping) {
        if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
        return;
      }
      if (!started) {
        process.stderr.write(`Waybill worker failed to start (exit ${code ?? signal}); stopping\n`);
        stopping = true;
        for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGTERM');
        process.exitCode = code || 1;
        if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(process.exitCode);
        return;
      }
      process.stderr.write(`Waybill worker ${worker.process.pid} exited (${code ?? signal}); starting another\n`);
      fork();
    });
  };
  for (let i = 0; i < count; i++) fork();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal);
      // The workers keep their own shutdown deadline; this one only covers a worker that hangs past it.
      setTimeout(() => process.exit(1), config.shutdownTimeoutMs + 1000).unref();
    });
  }
}

async function main(): Promise<void> {
  const config = configOrExit();
  const count = processCount(config);
  if (cluster.isPrimary && count > 1 && !process.env[WORKER_ENV]) return runPrimary(config, count);
  await serve(config);
}

void main().catch((err: Error) => {
  process.stderr.write(`Waybill failed to start: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
