import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import { Observable, from, mergeMap } from 'rxjs';
import { Db } from '../../infra/db/db.service';
import { requestContext } from '../context/request-context';

/** Applies read-your-writes routing around each HTTP request (see ReadRouter). */
@Injectable()
export class ReadRoutingInterceptor implements NestInterceptor {
  constructor(private readonly db: Db) {}

  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const ctx = requestContext.current();
    if (!ctx || !this.db.replica) return next.handle();
    return from(this.db.router.beforeRequest(ctx)).pipe(
      mergeMap(() => next.handle()),
      mergeMap(async (result: unknown) => {
        await this.db.router.afterRequest(ctx);
        return result;
      }),
    );
  }
}
