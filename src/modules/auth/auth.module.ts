import { Module } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { AuthController } from './auth.controller';
import { AuthRepository } from './auth.repository';
import { AuthService } from './auth.service';
import { PasswordHasher } from './password-hasher';

@Module({
  controllers: [AuthController],
  providers: [
    AuthService,
    AuthRepository,
    {
      provide: PasswordHasher,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => new PasswordHasher(config.passwordScrypt),
    },
  ],
  exports: [AuthService],
})
export class AuthModule {}
