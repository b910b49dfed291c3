import { Global, Module } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../config/config';
import { LocalDiskStorage } from './local-disk-storage';
import { S3Storage } from './s3-storage';
import { Storage } from './storage';
import { StorageService } from './storage.service';

/** The `Storage` adapter named by STORAGE_DRIVER, and `StorageService` (the port behind its breaker). */
@Global()
@Module({
  providers: [
    {
      provide: Storage,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig): Storage =>
        config.storage.driver === 's3'
          ? S3Storage.fromOptions(config.storage.s3)
          : new LocalDiskStorage(config.storage.dir),
    },
    StorageService,
  ],
  exports: [StorageService],
})
export class StorageModule {}
