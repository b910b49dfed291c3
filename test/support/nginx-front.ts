import { ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, stopChild, until } from './net';

/** Debian's nginx (override with NGINX_BIN). */
export const NGINX_BIN = process.env.NGINX_BIN ?? '/usr/sbin/nginx';
const CONF = join(__dirname, '..', '..', 'deploy', 'nginx', 'nginx.conf');

/**
 * The production front, `deploy/nginx/nginx.conf` as compose mounts it, run by
 * a real nginx on a free loopback port: only what a machine without the
 * compose network needs is rewritten (its upstream servers become the given
 * app nodes, its paths a temporary directory, one worker, in the foreground).
 */
export class NginxFront {
  private output = '';

  private constructor(
    private readonly dir: string,
    private readonly proc: ChildProcess,
    readonly url: string,
  ) {
    proc.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
  }

  private get exited(): boolean {
    return this.proc.exitCode !== null || this.proc.signalCode !== null;
  }

  /** The production config with `app-N:port` replaced by `nodes[N-1]` (host:port) and its paths under `dir`. */
  static rewrite(conf: string, nodes: string[], dir: string, port: number): string {
    let n = 0;
    const out = conf
      .replace(/^worker_processes .*;$/m, `daemon off;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log warn;\nworker_processes 1;`)
      .replace(/server app-\d+:\d+/g, () => `server ${nodes[n++ % nodes.length]}`)
      .replace(/proxy_cache_path \/var\/cache\/nginx\//g, `proxy_cache_path ${dir}/cache/`)
      .replace(/^(\s*)listen 80;$/m, `$1listen 127.0.0.1:${port};`)
      .replace(
        /^http \{$/m,
        `http {\n  ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${dir}/${t};`).join('\n  ')}`,
      );
    if (n === 0) throw new Error('no app-N upstream server found in the config');
    return out;
  }

  static async start(nodes: string[]): Promise<NginxFront> {
    const dir = await mkdtemp(join(tmpdir(), 'waybill-nginx-'));
    // nginx's workers drop root for an unprivileged user: they must write the cache and temporary files.
    await chmod(dir, 0o777);
    await mkdir(join(dir, 'cache'), { mode: 0o777 });
    const conf = await readFile(CONF, 'utf8');
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const file = join(dir, 'nginx.conf');
      await writeFile(file, NginxFront.rewrite(conf, nodes, dir, port), { mode: 0o644 });
      const proc = spawn(NGINX_BIN, ['-p', dir, '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
      const front = new NginxFront(dir, proc, `http://127.0.0.1:${port}`);
      try {
        await until(
          'nginx to listen',
          async () => {
            if (front.exited) throw new Error(`nginx exited: ${front.output}`);
            return fetch(`${front.url}/health/live`).then(
              () => true,
              () => false,
            );
          },
          10_000,
        );
        return front;
      } catch (err) {
        await front.stop(false);
        if (attempt >= 3) {
          await rm(dir, { recursive: true, force: true });
          throw new Error(`nginx did not start: ${(err as Error).message}\n${front.output}`);
        }
      }
    }
  }

  /** The nginx master's process id (its workers are its children). */
  get pid(): number {
    return this.proc.pid!;
  }

  async stop(removeDir = true): Promise<void> {
    // SIGQUIT: nginx's graceful stop.
    await stopChild(this.proc, 'SIGQUIT');
    if (removeDir) await rm(this.dir, { recursive: true, force: true });
  }
}
