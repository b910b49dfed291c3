import { createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { UnauthenticatedError } from '../errors/domain-error';
import { Principal } from './principal';

export const IS_PUBLIC = 'waybill:isPublic';

/** The route needs no access token. */
export const Public = () => SetMetadata(IS_PUBLIC, true);

export type AuthedRequest = FastifyRequest & { principal?: Principal };

/** The verified caller of this request. */
export const CurrentUser = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  const principal = ctx.switchToHttp().getRequest<AuthedRequest>().principal;
  if (!principal) throw new UnauthenticatedError();
  return principal;
});
