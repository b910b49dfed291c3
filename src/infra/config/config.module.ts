import { DynamicModule, Global, Module } from '@nestjs/common';
import { APP_CONFIG, AppConfig, loadConfig } from './config';

@Global()
@Module({})
export class ConfigModule {
  /** Uses the given config (tests) or parses the process environment once. */
  static forRoot(config?: AppConfig): DynamicModule {
    return {
      module: ConfigModule,
      providers: [{ provide: APP_CONFIG, useValue: config ?? loadConfig(process.env) }],
      exports: [APP_CONFIG],
    };
  }
}
