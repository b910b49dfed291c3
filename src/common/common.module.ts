import { Global, Module } from '@nestjs/common';
import { AuthCommonModule } from './auth/auth-common.module';
import { IdempotencyInterceptor } from './idempotency/idempotency.interceptor';
import { IdempotencyRepository } from './idempotency/idempotency.repository';

@Global()
@Module({
  imports: [AuthCommonModule],
  providers: [IdempotencyRepository, IdempotencyInterceptor],
  exports: [AuthCommonModule, IdempotencyRepository, IdempotencyInterceptor],
})
export class CommonModule {}
