import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** The live page's files: `public/live` at the project root (beside `src/` and `dist/`). */
export const LIVE_PAGE_DIR = join(__dirname, '..', '..', '..', 'public', 'live');

/** Where the Socket.IO browser client is read from (the server itself does not serve it: `serveClient: false`). */
function socketIoClientPath(): string | null {
  try {
    // The package's exports do not name `dist/`: find it from the entry point (`<package>/build/cjs/index.js`).
    const file = join(dirname(require.resolve('socket.io-client')), '..', '..', 'dist', 'socket.io.min.js');
    return existsSync(file) ? file : null;
  } catch {
    return null;
  }
}

/**
 * `/live`: a static page that logs in, lists an org's trips and draws their
 * trucks as they move (Socket.IO rooms `trip:<id>` and `org:<id>`). Every
 * script and style is a file of its own, so helmet's default CSP
 * (`script-src 'self'`) holds for it as for the rest of the service; no CDN,
 * no map tiles. The Socket.IO client is served from `socket.io-client`.
 */
export async function registerLivePage(fastify: FastifyInstance): Promise<void> {
  if (!existsSync(LIVE_PAGE_DIR)) return;
  const clientPath = socketIoClientPath();
  let client: Buffer | null = null;
  fastify.get('/live/socket.io.min.js', async (_request, reply) => {
    if (!clientPath) return reply.code(404).type('text/plain').send('socket.io-client is not installed');
    client ??= await readFile(clientPath);
    return reply
      .type('application/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=3600')
      .send(client);
  });
  fastify.get('/live', async (_request, reply) => reply.redirect('/live/', 302));
  await fastify.register(fastifyStatic, {
    root: LIVE_PAGE_DIR,
    prefix: '/live/',
    index: ['index.html'],
    wildcard: false,
    cacheControl: true,
    maxAge: 60_000,
  });
}
