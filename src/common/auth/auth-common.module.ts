import { Global, Module } from '@nestjs/common';
import { AccessTokenService } from './access-token.service';
import { SessionRevocations } from './session-revocations';
import { UserRateLimits } from '../rate-limit/user-rate-limits';

@Global()
@Module({
  providers: [AccessTokenService, SessionRevocations, UserRateLimits],
  exports: [AccessTokenService, SessionRevocations, UserRateLimits],
})
export class AuthCommonModule {}
