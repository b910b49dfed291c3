import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/**
 * A TCP port free on `host` (loopback) right now, for servers started as child processes. Only a hint:
 * another process may take it before the server binds it, so such a server retries on a conflict.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, host, () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** Polls `check` every 10 ms until it holds; fails after about `limitMs` (2 s) naming what it waited for. */
export async function until(what: string, check: () => Promise<boolean>, limitMs = 2000): Promise<void> {
  for (let i = 0; i < limitMs / 10; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Stops a child process with `signal`, then SIGKILL if it has not exited after `graceMs`. */
export async function stopChild(proc: ChildProcess, signal: NodeJS.Signals, graceMs = 5000): Promise<void> {
  const running = () => proc.exitCode === null && proc.signalCode === null;
  if (!running()) return;
  const gone = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill(signal);
  await Promise.race([gone, new Promise((r) => setTimeout(r, graceMs))]);
  if (running()) proc.kill('SIGKILL');
}
