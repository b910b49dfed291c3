import { Readable } from 'node:stream';

/** What a stored object is, as `head` answers it. */
export interface StoredObjectInfo {
  size: number;
}

/**
 * Where attachment bytes live: a port with two adapters (`LocalDiskStorage`,
 * `S3Storage`), chosen by STORAGE_DRIVER. Keys are opaque strings made by the
 * caller (letters, digits, dashes and slashes). Adapters throw plain errors on
 * any failure; `StorageService` puts its breaker in front of them.
 */
export abstract class Storage {
  /** Stores the stream's bytes under `key`; the object appears only once it is complete. Rejects with the stream's error. */
  abstract put(stream: Readable, key: string): Promise<StoredObjectInfo>;
  /** The object's bytes, or null when there is no such object. */
  abstract get(key: string): Promise<Readable | null>;
  /** The object's size, or null when there is no such object. */
  abstract head(key: string): Promise<StoredObjectInfo | null>;
  /** Removes the object; no error when it does not exist. */
  abstract delete(key: string): Promise<void>;
}

const KEY = /^[A-Za-z0-9][A-Za-z0-9/_-]*$/;

/** Keys never climb out of their folder or bucket prefix. */
export function assertStorageKey(key: string): void {
  if (!KEY.test(key) || key.includes('//')) throw new Error(`invalid storage key ${JSON.stringify(key)}`);
}
