import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import { Observable, map } from 'rxjs';
import { Page } from '../pagination/page';

/** Marks a handler whose reply is not JSON (a file, a stream, an empty 204). */
export const RAW_RESPONSE = Symbol('RAW_RESPONSE');

/** Wraps handler results in `{success: true, data}` (lists add `meta.nextCursor`). */
@Injectable()
export class EnvelopeInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    return next.handle().pipe(
      map((result: unknown) => {
        if (result === undefined || (result as { [RAW_RESPONSE]?: true })?.[RAW_RESPONSE]) return result;
        if (result instanceof Page) {
          return { success: true, data: result.items, meta: { nextCursor: result.nextCursor } };
        }
        return { success: true, data: result };
      }),
    );
  }
}
