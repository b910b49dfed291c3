import { Readable } from 'node:stream';
import { S3_PART_BYTES, S3Storage } from './s3-storage';

/** A stand-in for the SDK client's `send`: records the commands, answers like S3 (no network). */
function fakeClient(fail?: (name: string) => Error | undefined) {
  const sent: { name: string; input: Record<string, unknown> }[] = [];
  const objects = new Map<string, Buffer>();
  const send = jest.fn((cmd: { constructor: { name: string }; input: Record<string, unknown> }) => {
    const name = cmd.constructor.name;
    sent.push({ name, input: cmd.input });
    const err = fail?.(name);
    if (err) return Promise.reject(err);
    const key = cmd.input.Key as string;
    switch (name) {
      case 'PutObjectCommand':
        objects.set(key, cmd.input.Body as Buffer);
        return Promise.resolve({});
      case 'HeadObjectCommand':
      case 'GetObjectCommand': {
        const obj = objects.get(key);
        if (!obj) return Promise.reject(Object.assign(new Error('nf'), { name: 'NotFound' }));
        return Promise.resolve(
          name === 'HeadObjectCommand' ? { ContentLength: obj.length } : { Body: Readable.from([obj]) },
        );
      }
      case 'DeleteObjectCommand':
        objects.delete(key);
        return Promise.resolve({});
      case 'CreateMultipartUploadCommand':
        return Promise.resolve({ UploadId: 'u1' });
      case 'UploadPartCommand':
        return Promise.resolve({ ETag: `"e${String(cmd.input.PartNumber)}"` });
      default:
        return Promise.resolve({});
    }
  });
  return { client: { send } as never, sent, objects };
}

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('S3Storage (against the Storage port, SDK send replaced)', () => {
  it('puts a small object in one PutObject, then heads, gets and deletes it', async () => {
    const { client, sent } = fakeClient();
    const s = new S3Storage(client, 'bucket');
    const bytes = Buffer.from('hello world');
    expect(await s.put(Readable.from([bytes.subarray(0, 3), bytes.subarray(3)]), 'a/b')).toEqual({ size: 11 });
    expect(sent[0]).toMatchObject({ name: 'PutObjectCommand', input: { Bucket: 'bucket', Key: 'a/b' } });
    expect(await s.head('a/b')).toEqual({ size: 11 });
    expect((await readAll((await s.get('a/b'))!)).toString()).toBe('hello world');
    await s.delete('a/b');
    expect(await s.head('a/b')).toBeNull();
    expect(await s.get('a/b')).toBeNull();
  });

  it('sends a large object as a multipart upload in parts of the S3 minimum', async () => {
    const { client, sent } = fakeClient();
    const s = new S3Storage(client, 'bucket');
    const total = S3_PART_BYTES * 2 + 10;
    const chunk = Buffer.alloc(1024 * 1024, 1);
    const chunks: Buffer[] = [];
    for (let left = total; left > 0; left -= chunk.length) chunks.push(chunk.subarray(0, Math.min(left, chunk.length)));
    expect(await s.put(Readable.from(chunks), 'big')).toEqual({ size: total });
    const names = sent.map((c) => c.name);
    expect(names).toEqual([
      'CreateMultipartUploadCommand',
      'UploadPartCommand',
      'UploadPartCommand',
      'UploadPartCommand',
      'CompleteMultipartUploadCommand',
    ]);
    const sizes = sent.filter((c) => c.name === 'UploadPartCommand').map((c) => (c.input.Body as Buffer).length);
    expect(sizes).toEqual([S3_PART_BYTES, S3_PART_BYTES, 10]);
    expect(sent[4].input.MultipartUpload).toEqual({
      Parts: [
        { ETag: '"e1"', PartNumber: 1 },
        { ETag: '"e2"', PartNumber: 2 },
        { ETag: '"e3"', PartNumber: 3 },
      ],
    });
  });

  it('aborts the multipart upload when the stream fails, and passes the error on', async () => {
    const { client, sent } = fakeClient();
    const s = new S3Storage(client, 'bucket');
    async function* failing() {
      yield Buffer.alloc(S3_PART_BYTES);
      yield Buffer.alloc(S3_PART_BYTES);
      throw new Error('too large');
    }
    await expect(s.put(Readable.from(failing()), 'x')).rejects.toThrow('too large');
    expect(sent.map((c) => c.name)).toContain('AbortMultipartUploadCommand');
    expect(sent.map((c) => c.name)).not.toContain('CompleteMultipartUploadCommand');
  });

  it('passes on a failure of S3 itself', async () => {
    const { client } = fakeClient(() => new Error('connect ECONNREFUSED'));
    const s = new S3Storage(client, 'bucket');
    await expect(s.put(Readable.from([Buffer.from('x')]), 'k')).rejects.toThrow('ECONNREFUSED');
  });

  it('refuses keys that could leave the prefix', async () => {
    const { client } = fakeClient();
    const s = new S3Storage(client, 'bucket');
    await expect(s.head('../etc')).rejects.toThrow('invalid storage key');
  });
});
