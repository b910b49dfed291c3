import { Injectable } from '@nestjs/common';
import { Db } from '../../infra/db/db.service';
import { Prisma } from '../../generated/prisma/client';

export interface StoredKey {
  id: string;
  requestHash: string;
  responseStatus: number | null;
  responseBody: unknown;
  createdAt: Date;
}

@Injectable()
export class IdempotencyRepository {
  constructor(private readonly db: Db) {}

  /** Claims the key; returns null when it is already taken. */
  async claim(scope: string, key: string, requestHash: string): Promise<string | null> {
    const rows = await this.db.write.$queryRaw<{ id: string }[]>`
      INSERT INTO idempotency_keys (id, scope, key, request_hash, created_at)
      VALUES (gen_random_uuid(), ${scope}, ${key}, ${requestHash}, now())
      ON CONFLICT (scope, key) DO NOTHING
      RETURNING id`;
    return rows[0]?.id ?? null;
  }

  async find(scope: string, key: string): Promise<StoredKey | null> {
    return this.db.write.idempotencyKey.findUnique({
      where: { scope_key: { scope, key } },
      select: { id: true, requestHash: true, responseStatus: true, responseBody: true, createdAt: true },
    });
  }

  async complete(id: string, status: number, body: unknown): Promise<void> {
    await this.db.write.idempotencyKey.update({
      where: { id },
      data: { responseStatus: status, responseBody: (body ?? Prisma.JsonNull) as Prisma.InputJsonValue },
    });
  }

  /** Frees a key whose first request failed, so the client's retry runs again. */
  async release(id: string): Promise<void> {
    await this.db.write.idempotencyKey.deleteMany({ where: { id, responseStatus: null } });
  }

  /** Takes over a key whose request never finished (its node died), if it still looks abandoned. */
  async takeOver(id: string, staleBefore: Date): Promise<boolean> {
    const res = await this.db.write.idempotencyKey.updateMany({
      where: { id, responseStatus: null, createdAt: { lt: staleBefore } },
      data: { createdAt: new Date() },
    });
    return res.count === 1;
  }

  async purgeOlderThan(cutoff: Date): Promise<number> {
    const res = await this.db.write.idempotencyKey.deleteMany({ where: { createdAt: { lt: cutoff } } });
    return res.count;
  }
}
