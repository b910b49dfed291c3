import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { requestContext } from '../context/request-context';
import { UnauthenticatedError } from '../errors/domain-error';
import { AccessTokenService } from './access-token.service';
import { AuthedRequest, IS_PUBLIC } from './decorators';
import { SessionRevocations } from './session-revocations';
import { ErrorCode } from '../errors/error-codes';
import { USER_RATE_LIMIT, UserLimitClass, UserRateLimits } from '../rate-limit/user-rate-limits';

/**
 * Global guard: every route needs a valid access token unless marked
 * `@Public()`. Once the caller is known, the request counts against the
 * caller's per-user rate limit (`UserRateLimits`): here, where the token is
 * verified anyway, rather than in a hook that would verify it again.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly tokens: AccessTokenService,
    private readonly revocations: SessionRevocations,
    private readonly limits: UserRateLimits,
  ) {}

  /** Per handler: `@Public()` is read once, not on every request. */
  private readonly publicHandlers = new WeakMap<object, boolean>();

  private isPublic(context: ExecutionContext): boolean {
    const handler = context.getHandler();
    let known = this.publicHandlers.get(handler);
    if (known === undefined) {
      known = !!this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [handler, context.getClass()]);
      this.publicHandlers.set(handler, known);
    }
    return known;
  }

  /** Per handler: its per-user limit class (null: none), worked out once. */
  private readonly limitClasses = new WeakMap<object, UserLimitClass | null>();

  private limitClassOf(context: ExecutionContext, method: string): UserLimitClass | null {
    const handler = context.getHandler();
    let known = this.limitClasses.get(handler);
    if (known === undefined) {
      const declared = this.reflector.getAllAndOverride<UserLimitClass | null | undefined>(USER_RATE_LIMIT, [
        handler,
        context.getClass(),
      ]);
      // A GET route also answers HEAD: both are reads.
      known = declared !== undefined ? declared : method === 'GET' || method === 'HEAD' ? 'read-user' : null;
      this.limitClasses.set(handler, known);
    }
    return known;
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    if (this.isPublic(context)) return true;
    const request = context.switchToHttp().getRequest<AuthedRequest>();
    const token = AccessTokenService.fromHeader(request.headers.authorization);
    if (!token) throw new UnauthenticatedError();
    const principal = this.tokens.verify(token);
    if (await this.revocations.isRevoked(principal.sessionId)) {
      throw new UnauthenticatedError(ErrorCode.INVALID_TOKEN, 'This session has ended');
    }
    request.principal = principal;
    const ctx = requestContext.current();
    if (ctx) ctx.userId = principal.userId;
    const limitClass = this.limitClassOf(context, request.method);
    if (limitClass) await this.limits.check(limitClass, principal.userId);
    return true;
  }
}
