import { Global, Module } from '@nestjs/common';
import { AccessTokenService } from './access-token.service';
import { SessionRevocations } from './session-revocations';

@Global()
@Module({ providers: [AccessTokenService, SessionRevocations], exports: [AccessTokenService, SessionRevocations] })
export class AuthCommonModule {}
