import { Global, Module } from '@nestjs/common';
import { Cache } from './cache';

/** The two-tier Cache (see cache.ts), one per process; features `define` their named caches from it. */
@Global()
@Module({ providers: [Cache], exports: [Cache] })
export class CacheModule {}
