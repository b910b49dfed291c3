import { CanActivate, Controller, ExecutionContext, Get, Inject, Injectable, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import { AccessTokenService } from '../../common/auth/access-token.service';
import { Public } from '../../common/auth/decorators';
import { UnauthenticatedError } from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { APP_CONFIG, AppConfig } from '../config/config';
import { metricsRegistry } from './metrics';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** With METRICS_TOKEN set, the scrape must bring it as a bearer token; without, /metrics is open. */
@Injectable()
export class MetricsTokenGuard implements CanActivate {
  private readonly expected: Buffer | undefined;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.expected = config.metricsToken ? digest(config.metricsToken) : undefined;
  }

  canActivate(context: ExecutionContext): boolean {
    if (!this.expected) return true;
    const header = context.switchToHttp().getRequest<FastifyRequest>().headers.authorization;
    const token = AccessTokenService.fromHeader(header);
    if (!token) throw new UnauthenticatedError();
    // Digests of equal length, compared in constant time: the answer says nothing about how much matched.
    if (!timingSafeEqual(digest(token), this.expected))
      throw new UnauthenticatedError(ErrorCode.INVALID_TOKEN, 'The metrics token is not valid');
    return true;
  }
}

@ApiTags('operations')
@Public()
@Controller('metrics')
export class MetricsController {
  @Get()
  @UseGuards(MetricsTokenGuard)
  @ApiBearerAuth()
  @ApiProduces('text/plain')
  @ApiOperation({
    summary: 'Prometheus metrics of this process (text exposition format)',
    description:
      'Not enveloped. When METRICS_TOKEN is set it must be sent as `Authorization: Bearer <token>` (401 otherwise). ' +
      'Request latency by route pattern, pings accepted/duplicate/rejected, ping flush sizes and latency, ' +
      'websocket clients and broadcast latency, cache hits/misses, DB pool connections, queue depths, breaker states, ' +
      'and the Node.js process (event loop lag, GC, heap).',
  })
  async metrics(@Res() reply: FastifyReply): Promise<void> {
    const text = await metricsRegistry.metrics();
    void reply.header('content-type', metricsRegistry.contentType).header('cache-control', 'no-store').send(text);
  }
}
