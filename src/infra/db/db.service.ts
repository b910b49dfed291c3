import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../../generated/prisma/client';
import { requestContext } from '../../common/context/request-context';
import { APP_CONFIG, AppConfig } from '../config/config';
import { REDIS, RedisClient } from '../redis/redis.module';
import { PinStore, ReadRouter } from './read-routing';

export type DbClient = PrismaClient;
/** The client handed to the callback of an interactive transaction. */
export type DbTx = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];

function makeClient(url: string, max: number): PrismaClient {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: url, max }) });
}

class RedisPinStore implements PinStore {
  constructor(private readonly redis: RedisClient) {}
  async isPinned(userId: string): Promise<boolean> {
    return (await this.redis.exists(`ryw:${userId}`)) === 1;
  }
  async pin(userId: string, ms: number): Promise<void> {
    await this.redis.set(`ryw:${userId}`, '1', 'PX', ms);
  }
}

/**
 * The two database clients. Repositories write through `write` (the primary)
 * and read through `read`, which is the replica unless this request's user
 * wrote in the last few seconds (see ReadRouter).
 */
@Injectable()
export class Db implements OnApplicationShutdown {
  private readonly logger = new Logger(Db.name);
  readonly primary: PrismaClient;
  readonly replica: PrismaClient | undefined;
  readonly router: ReadRouter;

  constructor(@Inject(APP_CONFIG) config: AppConfig, @Inject(REDIS) redis: RedisClient) {
    this.primary = makeClient(config.databaseUrl, config.databasePoolMax);
    this.replica = config.databaseReplicaUrl
      ? makeClient(config.databaseReplicaUrl, config.databasePoolMax)
      : undefined;
    this.router = new ReadRouter(new RedisPinStore(redis), config.readYourWritesMs, !!this.replica);
  }

  get write(): PrismaClient {
    const ctx = requestContext.current();
    if (ctx) ctx.wrote = true;
    return this.primary;
  }

  get read(): PrismaClient {
    if (!this.replica || this.router.readsFromPrimary(requestContext.current())) return this.primary;
    return this.replica;
  }

  async ping(which: 'primary' | 'replica'): Promise<void> {
    const client = which === 'primary' ? this.primary : (this.replica ?? this.primary);
    await client.$queryRawUnsafe('SELECT 1');
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([this.primary.$disconnect(), this.replica?.$disconnect()]);
    this.logger.log('database clients closed');
  }
}
