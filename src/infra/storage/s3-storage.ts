import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { assertStorageKey, Storage, StoredObjectInfo } from './storage';

export interface S3StorageOptions {
  bucket: string;
  region: string;
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  forcePathStyle: boolean;
}

/** S3's smallest part but the last: an object is sent in parts of this size, so memory stays bounded. */
export const S3_PART_BYTES = 5 * 1024 * 1024;

const isMissing = (err: unknown) => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
};

/** Reads a stream as chunks of exactly `size` bytes (the last one shorter). */
async function* parts(stream: Readable, size: number): AsyncGenerator<Buffer> {
  let held: Buffer[] = [];
  let heldBytes = 0;
  for await (const chunk of stream) {
    let buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    while (heldBytes + buf.length >= size) {
      const take = size - heldBytes;
      held.push(buf.subarray(0, take));
      yield Buffer.concat(held);
      buf = buf.subarray(take);
      held = [];
      heldBytes = 0;
    }
    if (buf.length > 0) {
      held.push(buf);
      heldBytes += buf.length;
    }
  }
  if (heldBytes > 0 || held.length > 0) yield Buffer.concat(held);
}

/**
 * Objects in an S3-compatible bucket (AWS, MinIO, R2...). An object that fits
 * one part is one PutObject; a larger one a multipart upload, part by part,
 * aborted if the stream fails (nothing is left behind).
 */
export class S3Storage extends Storage {
  constructor(
    private readonly client: Pick<S3Client, 'send'>,
    private readonly bucket: string,
  ) {
    super();
  }

  static fromOptions(o: S3StorageOptions): S3Storage {
    const client = new S3Client({
      region: o.region,
      endpoint: o.endpoint || undefined,
      forcePathStyle: o.forcePathStyle,
      credentials: o.accessKeyId ? { accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey } : undefined,
    });
    return new S3Storage(client, o.bucket);
  }

  async put(stream: Readable, key: string): Promise<StoredObjectInfo> {
    assertStorageKey(key);
    const chunks = parts(stream, S3_PART_BYTES);
    const first = await chunks.next();
    const firstBuf = first.done ? Buffer.alloc(0) : first.value;
    const second = await chunks.next();
    if (second.done) {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: firstBuf }));
      return { size: firstBuf.length };
    }
    const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key }));
    const uploadId = created.UploadId!;
    const done: { ETag: string | undefined; PartNumber: number }[] = [];
    let size = 0;
    try {
      const send = async (body: Buffer) => {
        const PartNumber = done.length + 1;
        const r = await this.client.send(
          new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber, Body: body }),
        );
        done.push({ ETag: r.ETag, PartNumber });
        size += body.length;
      };
      await send(firstBuf);
      await send(second.value);
      for await (const part of chunks) await send(part);
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: done },
        }),
      );
    } catch (err) {
      await this.client
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }))
        .catch(() => undefined);
      throw err;
    }
    return { size };
  }

  async get(key: string): Promise<Readable | null> {
    assertStorageKey(key);
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return r.Body as Readable;
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  async head(key: string): Promise<StoredObjectInfo | null> {
    assertStorageKey(key);
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: Number(r.ContentLength ?? 0) };
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    assertStorageKey(key);
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }
}
