import { Injectable } from '@nestjs/common';
import { uuidv7 } from 'uuidv7';
import { keysetArgs, toPage } from '../../common/pagination/cursor';
import { Page } from '../../common/pagination/page';
import { Db } from '../../infra/db/db.service';
import type { StoredTagStatus } from './qr-rules';
import type { AnalyticsView, BatchItem, BatchView, EntityType, ScanAction, ScanView } from './qr.schemas';

/** A tag row as stored (status ACTIVE|DISABLED; EXPIRED is derived). */
export interface TagRecord {
  id: string;
  orgId: string;
  entityType: EntityType;
  entityId: string;
  title: string;
  code: string;
  isPublic: boolean;
  status: StoredTagStatus;
  expiresAt: Date | null;
  maxScans: number | null;
  scanCount: number;
  disabledAt: Date | null;
  createdAt: Date;
}

const tagSelect = {
  id: true,
  orgId: true,
  entityType: true,
  entityId: true,
  title: true,
  code: true,
  isPublic: true,
  status: true,
  expiresAt: true,
  maxScans: true,
  scanCount: true,
  disabledAt: true,
  createdAt: true,
} as const;

const TAG_COLUMNS = `id::text, org_id::text AS "orgId", entity_type AS "entityType", entity_id AS "entityId", title, code,
  is_public AS "isPublic", status, expires_at AS "expiresAt", max_scans AS "maxScans", scan_count AS "scanCount",
  disabled_at AS "disabledAt", created_at AS "createdAt"`;

const scanSelect = {
  id: true,
  tagId: true,
  action: true,
  scannerUserId: true,
  tripId: true,
  lat: true,
  lng: true,
  scannedAt: true,
  createdAt: true,
} as const;

const batchSelect = {
  id: true,
  orgId: true,
  status: true,
  total: true,
  done: true,
  failed: true,
  createdAt: true,
} as const;

/** A timestamp as JSON.stringify writes a Date (the columns hold milliseconds). */
const iso = (col: string) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * The scan: count it, log it, and write its outbox event (the row
 * OutboxWriter writes: id, type, org_id, data, created_at), all or nothing.
 * $1 tag, $2 scan id, $3-$8 the scan, $9 event id, $10 the tag's url, $11 event time.
 */
const SCAN = `WITH t AS (
    UPDATE qr_tags SET scan_count = scan_count + 1
    WHERE id = $1::uuid AND status = 'ACTIVE' AND (expires_at IS NULL OR expires_at > now())
      AND (max_scans IS NULL OR scan_count < max_scans)
    RETURNING *
  ), s AS (
    INSERT INTO qr_scans (id, tag_id, org_id, action, scanner_user_id, trip_id, lat, lng, scanned_at)
    SELECT $2::uuid, t.id, t.org_id, $3::qr_scan_action, $4::uuid, $5::uuid, $6::float8, $7::float8,
           COALESCE($8::timestamptz, now())
    FROM t
    RETURNING *
  ), o AS (
    INSERT INTO outbox_events (id, type, org_id, data, created_at)
    SELECT $9::uuid, 'qr.scan', t.org_id, jsonb_build_object(
      'tag', jsonb_build_object('id', t.id, 'orgId', t.org_id, 'entityType', t.entity_type, 'entityId', t.entity_id,
        'title', t.title, 'code', t.code, 'url', $10::text, 'isPublic', t.is_public, 'status', 'ACTIVE',
        'expiresAt', ${iso('t.expires_at')}, 'maxScans', t.max_scans, 'scanCount', t.scan_count,
        'createdAt', ${iso('t.created_at')}),
      'scan', jsonb_build_object('id', s.id, 'tagId', s.tag_id, 'action', s.action, 'scannerUserId', s.scanner_user_id,
        'tripId', s.trip_id, 'lat', s.lat, 'lng', s.lng, 'scannedAt', ${iso('s.scanned_at')},
        'createdAt', ${iso('s.created_at')})), $11::timestamptz
    FROM t, s
  )
  SELECT t.id::text, t.org_id::text AS "orgId", t.entity_type AS "entityType", t.entity_id AS "entityId", t.title, t.code,
    t.is_public AS "isPublic", t.status, t.expires_at AS "expiresAt", t.max_scans AS "maxScans",
    t.scan_count AS "scanCount", t.disabled_at AS "disabledAt", t.created_at AS "createdAt",
    s.id::text AS "scanId", s.action AS "scanAction", s.scanner_user_id::text AS "scanScannerUserId",
    s.trip_id::text AS "scanTripId", s.lat AS "scanLat", s.lng AS "scanLng", s.scanned_at AS "scanScannedAt",
    s.created_at AS "scanCreatedAt"
  FROM t, s`;

type ScanRow = TagRecord & {
  scanId: string;
  scanAction: ScanAction;
  scanScannerUserId: string;
  scanTripId: string | null;
  scanLat: number | null;
  scanLng: number | null;
  scanScannedAt: Date;
  scanCreatedAt: Date;
};

export interface TagListFilter {
  orgIds: string[];
  entityType?: EntityType;
  status?: 'ACTIVE' | 'DISABLED' | 'EXPIRED';
}

@Injectable()
export class QrRepository {
  constructor(private readonly db: Db) {}

  async create(data: {
    orgId: string;
    entityType: EntityType;
    entityId: string;
    title: string;
    code: string;
    isPublic: boolean;
    expiresAt: Date | null;
    maxScans: number | null;
    createdById: string;
  }): Promise<TagRecord> {
    return (await this.db.write.qrTag.create({ data, select: tagSelect })) as TagRecord;
  }

  /** A page of the orgs' tags, newest first; EXPIRED and ACTIVE are told apart by `expires_at` against now. */
  async list(f: TagListFilter, cursor: string | undefined, limit: number): Promise<Page<TagRecord>> {
    const k = keysetArgs(cursor);
    const now = new Date();
    const status =
      f.status === 'DISABLED'
        ? { status: 'DISABLED' as const }
        : f.status === 'EXPIRED'
          ? { status: 'ACTIVE' as const, expiresAt: { lte: now } }
          : f.status === 'ACTIVE'
            ? { status: 'ACTIVE' as const, OR: [{ expiresAt: null }, { expiresAt: { gt: now } }] }
            : {};
    const rows = await this.db.read.qrTag.findMany({
      where: {
        AND: [{ orgId: { in: f.orgIds } }, f.entityType ? { entityType: f.entityType } : {}, status, k.where],
      },
      orderBy: k.orderBy,
      take: limit + 1,
      select: tagSelect,
    });
    return toPage(rows as TagRecord[], limit);
  }

  async findById(tagId: string): Promise<TagRecord | null> {
    return (await this.db.primary.qrTag.findUnique({ where: { id: tagId }, select: tagSelect })) as TagRecord | null;
  }

  async findByCode(code: string): Promise<TagRecord | null> {
    const [row] = await this.db.sql<TagRecord>(
      `SELECT ${TAG_COLUMNS} FROM qr_tags WHERE code = $1`,
      [code],
      'qr-tag-by-code',
    );
    return row ?? null;
  }

  /** Disables the tag (idempotent: a disabled tag keeps its first `disabledAt`); `changed` false when it was already. */
  async disable(tagId: string): Promise<{ tag: TagRecord; changed: boolean } | null> {
    const [row] = await this.db.sql<TagRecord>(
      `UPDATE qr_tags SET status = 'DISABLED', disabled_at = now() WHERE id = $1::uuid AND status = 'ACTIVE'
       RETURNING ${TAG_COLUMNS}`,
      [tagId],
    );
    if (row) return { tag: row, changed: true };
    const tag = await this.findById(tagId);
    return tag ? { tag, changed: false } : null;
  }

  /**
   * One scan, in one statement (so in one transaction): the conditional
   * UPDATE that counts it (only an active, unexpired tag under its
   * `maxScans`; concurrent scans of one tag queue on its row and each
   * re-checks the count, so the count is exact), the log row, and the `qr.scan`
   * outbox event ({tag, scan} as the scan's answer carries them: `url` given,
   * dates as JSON.stringify writes them). Null when the tag would not take it.
   */
  async scan(
    tagId: string,
    scan: {
      action: ScanAction;
      scannerUserId: string;
      tripId: string | null;
      lat: number | null;
      lng: number | null;
      scannedAt: Date | null;
    },
    event: { id: string; createdAt: string; url: string },
  ): Promise<{ tag: TagRecord; scan: ScanView } | null> {
    const [row] = await this.db.sql<ScanRow>(
      SCAN,
      [
        tagId,
        uuidv7(),
        scan.action,
        scan.scannerUserId,
        scan.tripId,
        scan.lat,
        scan.lng,
        scan.scannedAt,
        event.id,
        event.url,
        event.createdAt,
      ],
      'qr-scan',
    );
    if (!row) return null;
    return {
      tag: {
        id: row.id,
        orgId: row.orgId,
        entityType: row.entityType,
        entityId: row.entityId,
        title: row.title,
        code: row.code,
        isPublic: row.isPublic,
        status: row.status,
        expiresAt: row.expiresAt,
        maxScans: row.maxScans,
        scanCount: row.scanCount,
        disabledAt: row.disabledAt,
        createdAt: row.createdAt,
      },
      scan: {
        id: row.scanId,
        tagId: row.id,
        action: row.scanAction,
        scannerUserId: row.scanScannerUserId,
        tripId: row.scanTripId,
        lat: row.scanLat,
        lng: row.scanLng,
        scannedAt: row.scanScannedAt,
        createdAt: row.scanCreatedAt,
      },
    };
  }

  async listScans(tagId: string, cursor: string | undefined, limit: number): Promise<Page<ScanView>> {
    const k = keysetArgs(cursor);
    const rows = await this.db.read.qrScan.findMany({
      where: { tagId, ...k.where },
      orderBy: k.orderBy,
      take: limit + 1,
      select: scanSelect,
    });
    return toPage(rows as ScanView[], limit);
  }

  /** Scan counts of one org in [from, to), grouped; read from the replica (a report may lag a little). */
  async analytics(orgId: string, from: Date, to: Date, groupBy: 'day' | 'entity' | 'action'): Promise<AnalyticsView> {
    const key =
      groupBy === 'day'
        ? `to_char(s.scanned_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`
        : groupBy === 'action'
          ? `s.action::text`
          : `t.entity_type::text || ':' || t.entity_id`;
    const join = groupBy === 'entity' ? 'JOIN qr_tags t ON t.id = s.tag_id' : '';
    const where = `s.org_id = $1::uuid AND s.scanned_at >= $2 AND s.scanned_at < $3`;
    const [totals, groups] = await Promise.all([
      this.db.read.$queryRawUnsafe<{ total: number; unique: number }[]>(
        `SELECT count(*)::int AS total, count(DISTINCT s.scanner_user_id)::int AS unique FROM qr_scans s WHERE ${where}`,
        orgId,
        from,
        to,
      ),
      this.db.read.$queryRawUnsafe<{ key: string; count: number; unique: number }[]>(
        `SELECT ${key} AS key, count(*)::int AS count, count(DISTINCT s.scanner_user_id)::int AS unique
         FROM qr_scans s ${join} WHERE ${where} GROUP BY 1 ORDER BY 1`,
        orgId,
        from,
        to,
      ),
    ]);
    return {
      total: totals[0]?.total ?? 0,
      uniqueScanners: totals[0]?.unique ?? 0,
      groups: groups.map((g) => ({ key: g.key, count: g.count, uniqueScanners: g.unique })),
    };
  }

  // ---- batches ----

  async createBatch(orgId: string, items: BatchItem[], createdById: string): Promise<BatchView> {
    return (await this.db.write.qrBatch.create({
      data: { orgId, items, total: items.length, createdById },
      select: batchSelect,
    })) as BatchView;
  }

  async findBatch(batchId: string): Promise<BatchView | null> {
    return (await this.db.primary.qrBatch.findUnique({
      where: { id: batchId },
      select: batchSelect,
    })) as BatchView | null;
  }

  async batchWork(batchId: string): Promise<{ orgId: string; createdById: string; items: BatchItem[] } | null> {
    return (await this.db.primary.qrBatch.findUnique({
      where: { id: batchId },
      select: { orgId: true, createdById: true, items: true },
    })) as { orgId: string; createdById: string; items: BatchItem[] } | null;
  }

  /**
   * Inserts one chunk of a batch's items (index `start` on), each at most once
   * whatever the retries (unique on batch_id, batch_index), and records the
   * batch's progress: `done` is the count of its tags that exist.
   */
  async insertBatchChunk(
    batch: { id: string; orgId: string; createdById: string },
    start: number,
    items: BatchItem[],
    codes: string[],
  ): Promise<number> {
    return this.db.sqlTransaction(async (tx) => {
      await tx.query(
        `INSERT INTO qr_tags (id, org_id, entity_type, entity_id, title, code, batch_id, batch_index, created_by_id)
         SELECT u.id, $1::uuid, u.entity_type::qr_entity_type, u.entity_id, u.title, u.code, $2::uuid, u.idx, $3::uuid
         FROM unnest($4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[])
              AS u(id, entity_type, entity_id, title, code, idx)
         ON CONFLICT (batch_id, batch_index) DO NOTHING`,
        [
          batch.orgId,
          batch.id,
          batch.createdById,
          items.map(() => uuidv7()),
          items.map((i) => i.entityType),
          items.map((i) => i.entityId),
          items.map((i) => i.title),
          codes,
          items.map((_, n) => start + n),
        ],
      );
      const [row] = await tx.query<{ done: number }>(
        `UPDATE qr_batches SET status = 'RUNNING', updated_at = now(),
           done = (SELECT count(*)::int FROM qr_tags WHERE batch_id = $1::uuid)
         WHERE id = $1::uuid RETURNING done`,
        [batch.id],
      );
      return row.done;
    });
  }

  async finishBatch(batchId: string, status: 'DONE' | 'FAILED'): Promise<void> {
    await this.db.sql(
      `UPDATE qr_batches SET status = $2::qr_batch_status, updated_at = now(),
         done = (SELECT count(*)::int FROM qr_tags WHERE batch_id = $1::uuid),
         failed = total - (SELECT count(*)::int FROM qr_tags WHERE batch_id = $1::uuid)
       WHERE id = $1::uuid`,
      [batchId, status],
    );
  }

  /** A batch's tags in item order, `limit` from index `after` on (for the label sheet, read page by page). */
  async batchTags(batchId: string, after: number, limit: number): Promise<(TagRecord & { batchIndex: number })[]> {
    return this.db.sql<TagRecord & { batchIndex: number }>(
      `SELECT ${TAG_COLUMNS}, batch_index AS "batchIndex" FROM qr_tags
       WHERE batch_id = $1::uuid AND batch_index > $2 ORDER BY batch_index LIMIT $3`,
      [batchId, after, limit],
    );
  }
}
