import { INestApplicationContext, Logger } from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import Redis from 'ioredis';
import type { Server, ServerOptions } from 'socket.io';
import { AppConfig } from '../config/config';

/**
 * Socket.IO on the app's own HTTP server (same Fastify port), path
 * `/socket.io`, websocket and long-polling, with the Redis adapter so that
 * nodes share rooms. `sharded` (default) uses Redis 7 sharded pub/sub
 * (SPUBLISH/SSUBSCRIBE), `classic` the original PUBLISH/PSUBSCRIBE adapter.
 * Its two Redis connections are its own and closed with the server.
 */
export class RedisIoAdapter extends IoAdapter {
  private readonly logger = new Logger('RedisIoAdapter');
  private readonly clients: Redis[] = [];

  constructor(
    app: INestApplicationContext,
    private readonly config: AppConfig,
    /** Websocket only: behind node:cluster, long-polling's requests could land on a process that does not know the session. */
    private readonly websocketOnly = false,
  ) {
    super(app);
  }

  override createIOServer(port: number, options?: Partial<ServerOptions>): Server {
    const server = super.createIOServer(port, {
      ...options,
      path: '/socket.io',
      serveClient: false,
      transports: this.websocketOnly ? ['websocket'] : ['polling', 'websocket'],
      // Clients send small control messages only.
      maxHttpBufferSize: 64 * 1024,
      // Browsers on other origins only when configured (CORS_ORIGINS); clients authenticate with a token, not cookies.
      cors: { origin: this.config.corsOrigins, credentials: false },
    }) as Server;
    // While Redis is down, publishing fails at once instead of piling up stale events;
    // the subscriber's (re)subscriptions wait for Redis however long it takes.
    // Publishes of one turn of the event loop (the room events of a burst of sends) go out in one write.
    const pub = new Redis(this.config.redisUrl, {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      enableAutoPipelining: true,
    });
    const sub = new Redis(this.config.redisUrl, { maxRetriesPerRequest: null });
    for (const client of [pub, sub]) {
      client.on('error', () => undefined); // the breaker and RedisModule already report outages
      this.clients.push(client);
    }
    const prefix = `${this.config.redisKeyPrefix}socket.io`;
    server.adapter(
      this.config.realtimeRedisAdapter === 'sharded'
        ? createShardedAdapter(pub, sub, { channelPrefix: prefix, subscriptionMode: 'static' })
        : createAdapter(pub, sub, { key: prefix }),
    );
    this.logger.log(`Socket.IO on /socket.io with the ${this.config.realtimeRedisAdapter} Redis adapter`);
    return server;
  }

  /**
   * Closes the sockets and engine.io, then the adapter's connections, but not
   * the HTTP server: Socket.IO's own `close()` would close it under Fastify,
   * which drains its in-flight requests itself when the app closes.
   */
  override async close(server: Server): Promise<void> {
    server.disconnectSockets(true);
    server.engine?.close();
    await this.quitClients();
  }

  override async dispose(): Promise<void> {
    await this.quitClients();
  }

  private async quitClients(): Promise<void> {
    const clients = this.clients.splice(0);
    await Promise.all(
      clients.map((c) => (c.status === 'ready' ? c.quit().catch(() => c.disconnect()) : c.disconnect())),
    );
  }
}
