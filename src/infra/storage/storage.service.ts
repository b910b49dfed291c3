import { Inject, Injectable, Logger } from '@nestjs/common';
import { Readable } from 'node:stream';
import { DomainError } from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { APP_CONFIG, AppConfig } from '../config/config';
import { CallBreaker, createCallBreaker, runThrough } from '../resilience/breaker';
import { Storage, StoredObjectInfo } from './storage';

/**
 * The storage port behind a breaker: a call slower than STORAGE_TIMEOUT_MS
 * fails, and once most calls fail the breaker opens and calls fail at once
 * (503 STORAGE_UNAVAILABLE) until a trial call after STORAGE_BREAKER_RESET_MS
 * succeeds. A DomainError raised by the caller's own stream (an upload too
 * large) is the client's fault: passed on, not counted against storage.
 */
@Injectable()
export class StorageService {
  private readonly logger = new Logger('Storage');
  private readonly breaker: CallBreaker;

  constructor(
    private readonly storage: Storage,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.breaker = createCallBreaker(
      {
        name: 'storage',
        timeoutMs: config.storage.timeoutMs,
        resetMs: config.storage.breakerResetMs,
        isAnswer: (err) => err instanceof DomainError,
        openMessage: 'Attachment storage unavailable: uploads and downloads fail until it is back',
        closeMessage: 'Attachment storage is back',
      },
      this.logger,
    );
  }

  get open(): boolean {
    return this.breaker.opened;
  }

  put(stream: Readable, key: string): Promise<StoredObjectInfo> {
    return this.run(() => this.storage.put(stream, key));
  }

  get(key: string): Promise<Readable | null> {
    return this.run(() => this.storage.get(key));
  }

  head(key: string): Promise<StoredObjectInfo | null> {
    return this.run(() => this.storage.head(key));
  }

  delete(key: string): Promise<void> {
    return this.run(() => this.storage.delete(key));
  }

  private async run<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await runThrough(this.breaker, call);
    } catch (err) {
      if (err instanceof DomainError) throw err;
      this.logger.warn(`storage call failed: ${(err as Error)?.message}`);
      throw new DomainError(ErrorCode.STORAGE_UNAVAILABLE, 'Attachment storage is unavailable, retry later');
    }
  }
}
