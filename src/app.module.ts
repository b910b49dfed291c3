import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR, APP_PIPE } from '@nestjs/core';
import { AuthGuard } from './common/auth/auth.guard';
import { CommonModule } from './common/common.module';
import { AllExceptionsFilter } from './common/errors/all-exceptions.filter';
import { ReadRoutingInterceptor } from './common/http/read-routing.interceptor';
import { AppValidationPipe } from './common/validation/zod';
import { AppConfig, loadConfig } from './infra/config/config';
import { ConfigModule } from './infra/config/config.module';
import { DbModule } from './infra/db/db.module';
import { ObservabilityModule } from './infra/observability/observability.module';
import { RealtimeModule } from './infra/realtime/realtime.module';
import { RedisModule } from './infra/redis/redis.module';
import { CacheModule } from './infra/cache/cache.module';
import { AuthModule } from './modules/auth/auth.module';
import { OrgsModule } from './modules/orgs/orgs.module';
import { TrackingModule } from './modules/tracking/tracking.module';
import { TripsModule } from './modules/trips/trips.module';
import { LedgerModule } from './modules/ledger/ledger.module';
import { StatsModule } from './modules/stats/stats.module';
import { AccessCodesModule } from './modules/access-codes/access-codes.module';
import { QueueModule } from './infra/queue/queue.module';
import { StorageModule } from './infra/storage/storage.module';
import { ChatModule } from './modules/chat/chat.module';
import { QrModule } from './modules/qr/qr.module';
import { OutboxModule } from './infra/outbox/outbox-writer';
import { WebhooksModule } from './modules/webhooks/webhooks.module';

@Module({})
export class AppModule {
  static forRoot(given?: AppConfig): DynamicModule {
    const config = given ?? loadConfig(process.env);
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        RedisModule,
        CacheModule,
        QueueModule,
        DbModule,
        RealtimeModule,
        CommonModule,
        AuthModule,
        OrgsModule,
        TripsModule,
        TrackingModule,
        LedgerModule,
        StatsModule,
        StorageModule,
        ChatModule,
        AccessCodesModule,
        QrModule,
        OutboxModule,
        WebhooksModule,
        ObservabilityModule,
      ],
      providers: [
        { provide: APP_FILTER, useClass: AllExceptionsFilter },
        { provide: APP_PIPE, useClass: AppValidationPipe },
        { provide: APP_GUARD, useClass: AuthGuard },
        // Results get their envelope in EnvelopeFastifyAdapter. Read routing has work only with a replica;
        // without one, no global interceptor runs and Nest serves routes without RxJS.
        ...(config.databaseReplicaUrl ? [{ provide: APP_INTERCEPTOR, useClass: ReadRoutingInterceptor }] : []),
      ],
    };
  }
}
