import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { requestContext } from '../context/request-context';
import { UnauthenticatedError } from '../errors/domain-error';
import { AccessTokenService } from './access-token.service';
import { AuthedRequest, IS_PUBLIC } from './decorators';
import { SessionRevocations } from './session-revocations';
import { ErrorCode } from '../errors/error-codes';

/** Global guard: every route needs a valid access token unless marked `@Public()`. */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly tokens: AccessTokenService,
    private readonly revocations: SessionRevocations,
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
    return true;
  }
}
