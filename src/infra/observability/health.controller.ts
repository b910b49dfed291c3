import { Controller, Get, Inject } from '@nestjs/common';
import { RouteSchema } from '@nestjs/platform-fastify';
import { ApiTags } from '@nestjs/swagger';
import { Public } from '../../common/auth/decorators';
import { DomainError } from '../../common/errors/domain-error';
import { enveloped } from '../../common/http/envelope';
import { ErrorCode } from '../../common/errors/error-codes';
import { Db } from '../db/db.service';
import { REDIS, RedisClient } from '../redis/redis.module';
import { withTimeout } from './with-timeout';

const CHECK_TIMEOUT_MS = 2000;

@ApiTags('operations')
@Public()
@Controller('health')
export class HealthController {
  constructor(
    private readonly db: Db,
    @Inject(REDIS) private readonly redis: RedisClient,
  ) {}

  /** The process is up. */
  @Get('live')
  @RouteSchema({
    response: {
      200: enveloped({
        type: 'object',
        properties: { status: { type: 'string' } },
        required: ['status'],
        additionalProperties: false,
      }),
    },
  })
  live() {
    return { status: 'ok' };
  }

  /** The dependencies are reachable: 503 naming those that are not. */
  @Get('ready')
  async ready() {
    const checks: Record<string, () => Promise<unknown>> = {
      primary: () => this.db.ping('primary'),
      replica: () => this.db.ping('replica'),
      redis: () => this.redis.ping(),
    };
    const results = await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        try {
          await withTimeout(check(), CHECK_TIMEOUT_MS);
          return [name, 'up'] as const;
        } catch {
          return [name, 'down'] as const;
        }
      }),
    );
    const status = Object.fromEntries(results);
    const down = results.filter(([, s]) => s === 'down').map(([n]) => n);
    if (down.length > 0) {
      throw new DomainError(
        ErrorCode.SERVICE_UNAVAILABLE,
        `Not ready: ${down.join(', ')} down`,
        results.map(([path, state]) => ({ path, message: state })),
      );
    }
    return { status: 'ok', checks: status };
  }
}
