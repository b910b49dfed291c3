import { InjectQueue } from '@nestjs/bull';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Queue } from 'bull';
import QRCode from 'qrcode';
import { Principal } from '../../common/auth/principal';
import { DomainError, NotFoundError, ValidationError } from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { Page } from '../../common/pagination/page';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { closeQuietlyAtShutdown, QUEUES } from '../../infra/queue/queue.module';
import { orgRoom, RealtimePublisher } from '../../infra/realtime/realtime-publisher';
import { Cache, NamedCache } from '../../infra/cache/cache';
import { strongEtag } from '../../common/http/etag';
import { OutboxWriter } from '../../infra/outbox/outbox-writer';
import { ORG_ROLES, roleIn } from '../orgs/org-roles';
import { OrgsService } from '../orgs/orgs.service';
import { TripsService } from '../trips/trips.service';
import { ByteLruCache } from './image-cache';
import { QrPngRenderer } from './qr-png-renderer';
import { PublicPage, renderPublicPage } from './qr-public-page';
import { isWellFormedTagCode, newTagCode, scanRefusal, tagStatus, tagUrl, TRIP_EVENT_ACTIONS } from './qr-rules';
import { QrRepository, TagRecord } from './qr.repository';
import {
  AnalyticsFilter,
  AnalyticsView,
  BatchItem,
  BatchView,
  CreateTagInput,
  ImageOptions,
  ListTagsFilter,
  PublicTagSummary,
  ScanInput,
  ScanView,
  TAG_FIELDS,
  TagField,
  TagView,
} from './qr.schemas';

/** Who may create and disable an org's tags: the roles that run its trips. Every member reads them. */
const MANAGE_TAGS = ORG_ROLES.operate;

export const QR_BATCH_JOB = 'create-batch';
const DAY_MS = 86_400_000;
/**
 * What the public page of a code shows, as cached: a public tag that was
 * active when read (its expiry is checked at each read; the org's name is
 * asked of OrgsService, whose org cache a rename invalidates), or `shown:
 * false` for anything else (unknown, private, disabled), so that unknown
 * codes cost no query either. Codes are random: none is read before it is
 * issued, so creating a tag has no entry to drop.
 */
type PublicEntry =
  | {
      shown: true;
      orgId: string;
      code: string;
      entityType: PublicTagSummary['entityType'];
      title: string;
      expiresAt: string | null;
    }
  | { shown: false };

/**
 * What a scan needs of a tag before it counts it, cached by code (`qr_tag`):
 * what never changes after creation. Its state (disabled, expired, full) is
 * checked by the counting statement itself; the entry is still dropped on
 * disable. Unknown codes are not kept.
 */
interface ScanTarget {
  id: string;
  orgId: string;
  code: string;
  isPublic: boolean;
}

/** A tag as its public page shows it (the page is served for active tags only). */
function publicView(tag: Pick<PublicTagSummary, 'code' | 'entityType' | 'title'>, orgName: string): PublicTagSummary {
  return { code: tag.code, entityType: tag.entityType, title: tag.title, orgName, status: 'ACTIVE' };
}

/** A rendered image and its strong ETag. */
export interface RenderedImage {
  body: Buffer;
  contentType: string;
  etag: string;
}

@Injectable()
export class QrService {
  private readonly logger = new Logger(QrService.name);
  private readonly images: ByteLruCache;
  private readonly publicTags: NamedCache<PublicEntry>;
  /** Finished answers by the cached entry they were made from (the per-node cache tier hands out the same object). */
  private readonly publicPages = new WeakMap<PublicEntry, PublicPage>();
  private readonly scanTargets: NamedCache<ScanTarget>;

  constructor(
    private readonly repo: QrRepository,
    private readonly orgs: OrgsService,
    private readonly trips: TripsService,
    private readonly realtime: RealtimePublisher,
    cache: Cache,
    @InjectQueue(QUEUES.qr) private readonly queue: Queue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly png: QrPngRenderer,
    private readonly outbox: OutboxWriter,
  ) {
    this.images = new ByteLruCache(config.qrImageCacheBytes);
    this.publicTags = cache.define<PublicEntry>({ name: 'qr_public', ttlSeconds: config.qrPublicCacheTtlSeconds });
    this.scanTargets = cache.define<ScanTarget>({ name: 'qr_tag' });
    closeQuietlyAtShutdown(queue, this.logger);
  }

  view(t: TagRecord, now = new Date()): TagView {
    return {
      id: t.id,
      orgId: t.orgId,
      entityType: t.entityType,
      entityId: t.entityId,
      title: t.title,
      code: t.code,
      url: tagUrl(this.config.publicBaseUrl, t.code),
      isPublic: t.isPublic,
      status: tagStatus(t.status, t.expiresAt, now),
      expiresAt: t.expiresAt,
      maxScans: t.maxScans,
      scanCount: t.scanCount,
      createdAt: t.createdAt,
    };
  }

  async create(principal: Principal, input: CreateTagInput): Promise<TagView> {
    await this.orgs.requireRole(principal, input.orgId, MANAGE_TAGS);
    const row = await this.repo.create({
      orgId: input.orgId,
      entityType: input.entityType,
      entityId: input.entityId,
      title: input.title,
      code: newTagCode(),
      isPublic: input.isPublic,
      expiresAt: input.expiresAt ?? null,
      maxScans: input.maxScans ?? null,
      createdById: principal.userId,
    });
    return this.view(row);
  }

  /** Tags of one org (`orgId`) or of every org the caller belongs to. */
  async list(principal: Principal, q: ListTagsFilter): Promise<Page<Record<string, unknown>>> {
    const fields = parseTagFields(q.fields);
    let orgIds: string[];
    if (q.orgId) {
      await this.orgs.requireRole(principal, q.orgId);
      orgIds = [q.orgId];
    } else {
      orgIds = (await this.orgs.membershipsOf(principal.userId)).map((m) => m.orgId);
    }
    if (orgIds.length === 0) return new Page([], null);
    const page = await this.repo.list({ orgIds, entityType: q.entityType, status: q.status }, q.cursor, q.limit);
    const now = new Date();
    return new Page(
      page.items.map((t) => project(this.view(t, now), fields)),
      page.nextCursor,
    );
  }

  async get(principal: Principal, tagId: string, rawFields?: string): Promise<Record<string, unknown>> {
    const fields = parseTagFields(rawFields);
    return project(this.view(await this.requireReadable(principal, tagId)), fields);
  }

  async disable(principal: Principal, tagId: string): Promise<TagView> {
    const tag = await this.requireReadable(principal, tagId);
    await this.orgs.requireRole(principal, tag.orgId, MANAGE_TAGS);
    const done = await this.repo.disable(tagId);
    if (!done) throw new NotFoundError('Tag');
    if (done.changed) await Promise.all([this.forgetPublic(tag.code), this.scanTargets.invalidate(tag.code)]);
    return this.view(done.tag);
  }

  /**
   * One scan. Who may: members of the tag's org, or (with a `tripId`) anyone
   * who sees that trip, with any action; anyone signed in may VIEW a public
   * tag; anyone else gets the 404 of an unknown code. Counted by one
   * conditional UPDATE (maxScans is exact); a refusal is explained from the
   * tag as read after it.
   */
  async scan(principal: Principal, input: ScanInput): Promise<{ tag: TagView | PublicTagSummary; scan: ScanView }> {
    const found = isWellFormedTagCode(input.code) ? await this.scanTarget(input.code) : null;
    if (!found) throw new NotFoundError('Tag');
    const member = (await this.orgs.rolesOf(principal.userId, [found.orgId])).has(found.orgId);
    let tripVisible = false;
    if (input.tripId) {
      // A trip named in the body must be one the scanner sees (else 404, as for any invisible trip).
      await this.trips.requireVisible(principal, input.tripId);
      tripVisible = true;
    }
    const allowed = member || tripVisible || (found.isPublic && input.action === 'VIEW');
    if (!allowed) throw new NotFoundError('Tag');

    const event = this.outbox.newEvent();
    const done = await this.repo.scan(
      found.id,
      {
        action: input.action,
        scannerUserId: principal.userId,
        tripId: input.tripId ?? null,
        lat: input.lat ?? null,
        lng: input.lng ?? null,
        scannedAt: input.scannedAt ?? null,
      },
      // The webhook event, in the scan's statement: {tag, scan} as this answer carries them.
      { ...event, url: tagUrl(this.config.publicBaseUrl, found.code) },
    );
    if (!done) {
      const now = await this.repo.findById(found.id);
      throw refusal((now && scanRefusal(now)) ?? 'FULL');
    }
    this.outbox.written();
    const at = done.scan.scannedAt;
    this.realtime.publish(orgRoom(done.tag.orgId), 'qr.scan', {
      tagId: done.tag.id,
      action: done.scan.action,
      at: at.toISOString(),
    });
    if (input.tripId && TRIP_EVENT_ACTIONS.has(input.action)) {
      await this.trips.appendEvent(input.tripId, {
        type: 'SCAN',
        at,
        actorUserId: principal.userId,
        data: {
          tagId: done.tag.id,
          scanId: done.scan.id,
          action: done.scan.action,
          entityType: done.tag.entityType,
          entityId: done.tag.entityId,
        },
      });
    }
    if (member || tripVisible) return { tag: this.view(done.tag), scan: done.scan };
    // Anyone else VIEWs a public tag: they see what its public page shows, nothing more (not its org, entity,
    // counts or caps).
    return { tag: publicView(done.tag, (await this.orgs.orgName(done.tag.orgId)) ?? ''), scan: done.scan };
  }

  async scans(principal: Principal, tagId: string, cursor: string | undefined, limit: number): Promise<Page<ScanView>> {
    await this.requireReadable(principal, tagId);
    return this.repo.listScans(tagId, cursor, limit);
  }

  async analytics(principal: Principal, q: AnalyticsFilter): Promise<AnalyticsView> {
    await this.orgs.requireRole(principal, q.orgId);
    const to = q.to ? new Date(q.to) : new Date();
    const from = q.from ? new Date(q.from) : new Date(to.getTime() - 30 * DAY_MS);
    return this.repo.analytics(q.orgId, from, to, q.groupBy);
  }

  // ---- image ----

  /** The image's strong ETag: it depends only on what the QR encodes and how it is drawn. */
  imageEtag(tag: TagView, o: ImageOptions): string {
    return strongEtag(JSON.stringify([tag.url, o.format, o.size, o.margin, o.ecl]));
  }

  async readableTag(principal: Principal, tagId: string): Promise<TagView> {
    return this.view(await this.requireReadable(principal, tagId));
  }

  async image(tag: TagView, o: ImageOptions): Promise<RenderedImage> {
    const etag = this.imageEtag(tag, o);
    const contentType = o.format === 'png' ? 'image/png' : 'image/svg+xml; charset=utf-8';
    const cached = this.images.get(etag);
    if (cached) return { body: cached, contentType, etag };
    const opts = { width: o.size, margin: o.margin, errorCorrectionLevel: o.ecl };
    const body =
      o.format === 'png'
        ? await this.png.render(tag.url, opts)
        : Buffer.from(await QRCode.toString(tag.url, { ...opts, type: 'svg' }), 'utf8');
    this.images.set(etag, body);
    return { body, contentType, etag };
  }

  // ---- public page ----

  /**
   * The public page of a public, active tag (its summary and both finished
   * answers), or null for anything else (private, disabled, expired, unknown:
   * all alike). The summary is cached (`qr_public`, QR_PUBLIC_CACHE_TTL_SECONDS
   * in Redis, briefly per node), dropped on every node on disable; a cached
   * summary still checks its expiry. The answers are made once per cached entry
   * and org name (`renderPublicPage`). Redis down: read the database.
   */
  async publicPage(code: string): Promise<PublicPage | null> {
    if (!isWellFormedTagCode(code)) return null;
    const entry = await this.publicTags.get(code, async (): Promise<PublicEntry> => {
      const tag = await this.repo.findByCode(code);
      if (!tag || !tag.isPublic || tagStatus(tag.status, tag.expiresAt) !== 'ACTIVE') return { shown: false };
      return {
        shown: true,
        orgId: tag.orgId,
        code: tag.code,
        entityType: tag.entityType,
        title: tag.title,
        expiresAt: tag.expiresAt?.toISOString() ?? null,
      };
    });
    if (!entry?.shown) return null;
    if (entry.expiresAt && Date.parse(entry.expiresAt) <= Date.now()) return null;
    const orgName = await this.orgs.orgName(entry.orgId);
    if (orgName === null) return null;
    const made = this.publicPages.get(entry);
    if (made && made.summary.orgName === orgName) return made;
    const page = renderPublicPage(publicView(entry, orgName));
    this.publicPages.set(entry, page);
    return page;
  }

  private scanTarget(code: string): Promise<ScanTarget | null> {
    return this.scanTargets.get(code, async () => {
      const tag = await this.repo.findByCode(code);
      return tag && { id: tag.id, orgId: tag.orgId, code: tag.code, isPublic: tag.isPublic };
    });
  }

  private forgetPublic(code: string): Promise<void> {
    return this.publicTags.invalidate(code);
  }

  // ---- batches ----

  /** Validates the whole batch up front (the schema checked each item; the count is checked here), then queues it. */
  async createBatch(principal: Principal, orgId: string, items: BatchItem[]): Promise<{ batchId: string }> {
    if (items.length > this.config.qrBatchMaxItems)
      throw new ValidationError([
        { path: 'items', message: `at most ${this.config.qrBatchMaxItems} items per batch (got ${items.length})` },
      ]);
    await this.orgs.requireRole(principal, orgId, MANAGE_TAGS);
    const batch = await this.repo.createBatch(orgId, items, principal.userId);
    await this.queue.add(
      QR_BATCH_JOB,
      { batchId: batch.id },
      {
        jobId: `qr-batch:${batch.id}`,
        attempts: 5,
        backoff: { type: 'exponential', delay: 500 },
      },
    );
    return { batchId: batch.id };
  }

  async batch(principal: Principal, batchId: string): Promise<BatchView> {
    const batch = await this.repo.findBatch(batchId);
    if (!batch) throw new NotFoundError('Batch');
    const role = await this.orgs.roleOf(principal, batch.orgId);
    if (!role) throw new NotFoundError('Batch');
    return batch;
  }

  /**
   * The batch job: inserts the items in chunks of QR_BATCH_CHUNK, each item
   * once whatever the retries, reporting progress. Returns the count done.
   */
  async runBatch(batchId: string, progress: (done: number, total: number) => Promise<void>): Promise<number> {
    const work = await this.repo.batchWork(batchId);
    if (!work) return 0;
    const batch = { id: batchId, orgId: work.orgId, createdById: work.createdById };
    const chunk = this.config.qrBatchChunk;
    let done = 0;
    for (let start = 0; start < work.items.length; start += chunk) {
      const items = work.items.slice(start, start + chunk);
      done = await this.repo.insertBatchChunk(batch, start, items, items.map(newTagCode));
      await progress(done, work.items.length);
    }
    await this.repo.finishBatch(batchId, 'DONE');
    return done;
  }

  async failBatch(batchId: string): Promise<void> {
    await this.repo.finishBatch(batchId, 'FAILED');
  }

  /** A batch's tags in item order, page by page (the label sheet). */
  async *batchTags(principal: Principal, batchId: string): AsyncGenerator<TagView> {
    await this.batch(principal, batchId);
    let after = -1;
    for (;;) {
      const rows = await this.repo.batchTags(batchId, after, 500);
      for (const r of rows) yield this.view(r);
      if (rows.length < 500) return;
      after = rows[rows.length - 1].batchIndex;
    }
  }

  /** The tag, when the caller is a member of its org; else 404 (another org's tag looks unknown). */
  private async requireReadable(principal: Principal, tagId: string): Promise<TagRecord> {
    const tag = await this.repo.findById(tagId);
    if (!tag) throw new NotFoundError('Tag');
    const role = await this.orgs.roleOf(principal, tag.orgId);
    if (!roleIn(role, ORG_ROLES.any)) throw new NotFoundError('Tag');
    return tag;
  }
}

function parseTagFields(raw: string | undefined): readonly TagField[] | null {
  if (raw === undefined || raw.trim() === '') return null;
  const names = raw.split(',').map((s) => s.trim());
  const unknown = names.filter((n) => !(TAG_FIELDS as readonly string[]).includes(n));
  if (unknown.length > 0)
    throw new ValidationError([{ path: 'fields', message: `unknown fields: ${unknown.join(', ')}` }]);
  return names as TagField[];
}

function project(view: TagView, fields: readonly TagField[] | null): Record<string, unknown> {
  if (!fields) return view as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const f of fields) out[f] = view[f];
  return out;
}

function refusal(why: 'DISABLED' | 'EXPIRED' | 'FULL'): DomainError {
  if (why === 'DISABLED') return new DomainError(ErrorCode.TAG_DISABLED, 'This tag has been disabled');
  if (why === 'EXPIRED') return new DomainError(ErrorCode.TAG_EXPIRED, 'This tag has expired');
  return new DomainError(ErrorCode.TAG_SCAN_LIMIT_REACHED, 'This tag has reached its scan limit');
}
