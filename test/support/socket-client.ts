import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { freePort } from './net';
import { io, Socket } from 'socket.io-client';
import { createApp } from '../../src/app';
import { AppConfig } from '../../src/infra/config/config';
import { TestApp } from './test-app';

/** A received room event: the event name plus its envelope (payload, room, seq). */
export interface Received {
  event: string;
  room?: string;
  seq?: number;
  [key: string]: unknown;
}

/** A socket.io-client socket that records every event it receives. */
export class Watcher {
  readonly events: Received[] = [];
  private waiters: (() => void)[] = [];

  constructor(readonly socket: Socket) {
    socket.onAny((event: string, payload: Record<string, unknown>) => {
      this.events.push({ event, ...(payload ?? {}) });
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Room events of one room, in arrival order. */
  inRoom(room: string, event?: string): Received[] {
    return this.events.filter((e) => e.room === room && (!event || e.event === event));
  }

  /** Resolves once `predicate` holds; the timeout is only a guard against hanging. */
  async waitFor(predicate: (w: Watcher) => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.events.slice(-5))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 500));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** An acknowledged request (`subscribe`, `unsubscribe`, `auth`). */
  request<T = any>(event: string, payload?: unknown, timeoutMs = 10_000): Promise<T> {
    return (
      payload === undefined
        ? this.socket.timeout(timeoutMs).emitWithAck(event)
        : this.socket.timeout(timeoutMs).emitWithAck(event, payload)
    ) as Promise<T>;
  }

  close(): void {
    this.socket.disconnect();
  }
}

export interface ConnectOptions {
  transports?: ('polling' | 'websocket')[];
}

/** Connects to the app's Socket.IO; rejects with the server's `connect_error` (its `data` holds `{code, message}`). */
export function connectWatcher(url: string, token: string | undefined, opts: ConnectOptions = {}): Promise<Watcher> {
  const socket = io(url, {
    path: '/socket.io',
    auth: token === undefined ? {} : { token },
    transports: opts.transports ?? ['websocket'],
    reconnection: false,
    forceNew: true,
    timeout: 10_000,
  });
  const watcher = new Watcher(socket);
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(watcher));
    socket.once('connect_error', (err: Error & { data?: unknown }) => {
      socket.disconnect();
      reject(err);
    });
  });
}

/** The `connect_error` of a refused handshake. */
export async function refusal(
  url: string,
  token: string | undefined,
): Promise<{ message: string; data: { code: string; message: string } }> {
  try {
    const w = await connectWatcher(url, token);
    w.close();
  } catch (err) {
    return err as { message: string; data: { code: string; message: string } };
  }
  throw new Error('the connection was accepted');
}

export interface AppNode {
  app: NestFastifyApplication;
  url: string;
  close(): Promise<void>;
}

/** Another app node on the same database and Redis (key prefix) as `first`: a second server of the same deployment. */
export async function startAnotherNode(
  first: Pick<TestApp, 'config'>,
  overrides: Partial<AppConfig> = {},
): Promise<AppNode> {
  const app = await createApp({ ...first.config, ...overrides });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.getHttpServer().address() as { port: number };
  return { app, url: `http://127.0.0.1:${port}`, close: () => app.close() };
}

/** A private `redis-server` (no persistence) that a test may stop and start again on the same port. */
export class PrivateRedis {
  private proc: ChildProcess | null = null;
  private constructor(readonly port: number) {}

  static async start(): Promise<PrivateRedis> {
    const r = new PrivateRedis(await freePort());
    await r.start();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.proc) return;
    const proc = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    this.proc = proc;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('redis-server did not start')), 10_000);
      proc.stdout!.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        this.proc = null;
        reject(new Error(`redis-server exited with ${code}`));
      });
    });
    proc.stdout!.resume();
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    this.proc = null;
    proc.kill('SIGKILL');
    await once(proc, 'exit');
  }
}
