import {
  CallHandler,
  ExecutionContext,
  Inject,
  Injectable,
  Logger,
  NestInterceptor,
  OnModuleDestroy,
  OnModuleInit,
  UseInterceptors,
  applyDecorators,
} from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Observable, catchError, from, mergeMap, of } from 'rxjs';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { AuthedRequest } from '../auth/decorators';
import { DomainError, ValidationError } from '../errors/domain-error';
import { ErrorCode } from '../errors/error-codes';
import { IdempotencyRepository } from './idempotency.repository';
import { requestHash } from './request-hash';

const WAIT_FOR_FIRST_MS = 5000;
const POLL_MS = 50;
/** A claimed key with no response after this long belongs to a request whose node died. */
const ABANDONED_AFTER_MS = 120_000;

type Claim = { kind: 'run'; id: string } | { kind: 'replay'; status: number; body: unknown };

/**
 * `Idempotency-Key` support: the first request with a key runs and its
 * response is stored; a retry with the same key and body gets that response
 * again; the same key with another body is 409 IDEMPOTENCY_KEY_REUSED. A retry
 * that arrives while the first is still running waits for its result.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor, OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(IdempotencyInterceptor.name);
  private purgeTimer?: NodeJS.Timeout;

  constructor(
    private readonly repo: IdempotencyRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    this.purgeTimer = setInterval(() => void this.purge(), 3600_000);
    this.purgeTimer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.purgeTimer);
  }

  async purge(): Promise<number> {
    const cutoff = new Date(Date.now() - this.config.idempotencyRetentionHours * 3600_000);
    const n = await this.repo.purgeOlderThan(cutoff).catch((err: Error) => {
      this.logger.warn(`purging idempotency keys failed: ${err.message}`);
      return 0;
    });
    return n;
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const request = context.switchToHttp().getRequest<AuthedRequest>();
    const reply = context.switchToHttp().getResponse<FastifyReply>();
    const header = request.headers['idempotency-key'];
    if (header === undefined) return next.handle();
    const key = Array.isArray(header) ? header[0] : header;
    if (!key || key.length > 255) {
      throw new ValidationError([{ path: 'Idempotency-Key', message: 'must be 1 to 255 characters' }]);
    }
    const path = request.url.split('?')[0];
    const scope = `${request.principal?.userId ?? 'anonymous'} ${request.method} ${path}`;
    const hash = requestHash(request.method, path, request.body);

    return from(this.claim(scope, key, hash)).pipe(
      mergeMap((claim) => {
        if (claim.kind === 'replay') {
          void reply.status(claim.status).header('Idempotent-Replayed', 'true');
          return of(claim.body);
        }
        return next.handle().pipe(
          mergeMap(async (result: unknown) => {
            const body = result === undefined ? null : JSON.parse(JSON.stringify(result));
            await this.repo.complete(claim.id, reply.statusCode, body);
            return result;
          }),
          catchError(async (err: unknown) => {
            await this.repo.release(claim.id).catch(() => undefined);
            throw err;
          }),
        );
      }),
    );
  }

  private async claim(scope: string, key: string, hash: string): Promise<Claim> {
    const deadline = Date.now() + WAIT_FOR_FIRST_MS;
    for (;;) {
      const id = await this.repo.claim(scope, key, hash);
      if (id) return { kind: 'run', id };
      const existing = await this.repo.find(scope, key);
      if (!existing) continue; // released between our insert and read: claim again
      if (existing.requestHash !== hash) {
        throw new DomainError(
          ErrorCode.IDEMPOTENCY_KEY_REUSED,
          'This Idempotency-Key was already used with a different request',
        );
      }
      if (existing.responseStatus !== null) {
        return { kind: 'replay', status: existing.responseStatus, body: existing.responseBody };
      }
      if (await this.repo.takeOver(existing.id, new Date(Date.now() - ABANDONED_AFTER_MS))) {
        return { kind: 'run', id: existing.id };
      }
      if (Date.now() > deadline) {
        throw new DomainError(
          ErrorCode.IDEMPOTENCY_IN_PROGRESS,
          'A request with this Idempotency-Key is still being processed; retry later',
        );
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
}

/** The route accepts `Idempotency-Key`. */
export const Idempotent = () =>
  applyDecorators(
    UseInterceptors(IdempotencyInterceptor),
    ApiHeader({
      name: 'Idempotency-Key',
      required: false,
      description: 'Retry key: same key + same body returns the first result',
    }),
  );
