import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CurrentUser, Public } from '../../common/auth/decorators';
import { Principal } from '../../common/auth/principal';
import { RAW_RESPONSE } from '../../common/http/envelope';
import { emptyBody, notModified } from '../../common/http/etag';
import { Idempotent } from '../../common/idempotency/idempotency.interceptor';
import { NotFoundError } from '../../common/errors/domain-error';
import { wantsJson } from './qr-public-page';
import { labelSheet } from './qr-labels';
import {
  AnalyticsQuery,
  BatchParam,
  CreateBatchDto,
  CreateTagDto,
  FieldsQuery,
  ImageQuery,
  ListTagsQuery,
  ScanDto,
  TagPageQuery,
  TagParam,
} from './qr.schemas';
import { QrService } from './qr.service';

const raw = <T extends object>(body: T) => Object.assign(body, { [RAW_RESPONSE]: true as const });

@ApiTags('qr')
@ApiBearerAuth()
@Controller('qr')
export class QrController {
  constructor(private readonly qr: QrService) {}

  @Post('tags')
  @ApiOperation({ summary: 'Create a tag (OWNER/ADMIN/STAFF of the org); `url` is what the QR encodes' })
  create(@CurrentUser() me: Principal, @Body() body: CreateTagDto) {
    return this.qr.create(me, body);
  }

  @Get('tags')
  @ApiOperation({ summary: 'Tags of `orgId` (or of every org of the caller), newest first; any member reads' })
  list(@CurrentUser() me: Principal, @Query() q: ListTagsQuery) {
    return this.qr.list(me, q);
  }

  @Get('tags/:tagId')
  get(@CurrentUser() me: Principal, @Param() p: TagParam, @Query() q: FieldsQuery) {
    return this.qr.get(me, p.tagId, q.fields);
  }

  @Post('tags/:tagId/disable')
  @HttpCode(200)
  @ApiOperation({ summary: 'Disable a tag (OWNER/ADMIN/STAFF); again: 200, nothing changes' })
  disable(@CurrentUser() me: Principal, @Param() p: TagParam) {
    return this.qr.disable(me, p.tagId);
  }

  @Get('tags/:tagId/image')
  @ApiProduces('image/png', 'image/svg+xml')
  @ApiOperation({ summary: 'The QR image (strong ETag; If-None-Match → 304)' })
  async image(
    @CurrentUser() me: Principal,
    @Param() p: TagParam,
    @Query() q: ImageQuery,
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) res: FastifyReply,
  ) {
    const tag = await this.qr.readableTag(me, p.tagId);
    if (notModified(req, res, this.qr.imageEtag(tag, q), 'private, max-age=0, must-revalidate')) return emptyBody();
    const img = await this.qr.image(tag, q);
    void res.header('content-type', img.contentType).header('x-content-type-options', 'nosniff');
    return raw(img.body);
  }

  @Post('scan')
  @Idempotent()
  @ApiOperation({
    summary: 'Scan a tag',
    description: '409 TAG_EXPIRED, TAG_DISABLED or TAG_SCAN_LIMIT_REACHED; an unknown or unusable code is 404.',
  })
  scan(@CurrentUser() me: Principal, @Body() body: ScanDto) {
    return this.qr.scan(me, body);
  }

  @Get('tags/:tagId/scans')
  scans(@CurrentUser() me: Principal, @Param() p: TagParam, @Query() q: TagPageQuery) {
    return this.qr.scans(me, p.tagId, q.cursor, q.limit);
  }

  @Get('analytics')
  @ApiOperation({ summary: 'Scan counts of an org in [from, to) (default: the last 30 days), grouped' })
  analytics(@CurrentUser() me: Principal, @Query() q: AnalyticsQuery) {
    return this.qr.analytics(me, q);
  }

  @Post('batches')
  @HttpCode(202)
  @ApiOperation({ summary: 'Create up to QR_BATCH_MAX_ITEMS tags in the background; one bad item rejects the batch' })
  createBatch(@CurrentUser() me: Principal, @Body() body: CreateBatchDto) {
    return this.qr.createBatch(me, body.orgId, body.items);
  }

  @Get('batches/:batchId')
  async batch(@CurrentUser() me: Principal, @Param() p: BatchParam) {
    const b = await this.qr.batch(me, p.batchId);
    return { status: b.status, total: b.total, done: b.done, failed: b.failed };
  }

  @Get('batches/:batchId/labels.pdf')
  @ApiProduces('application/pdf')
  async labels(@CurrentUser() me: Principal, @Param() p: BatchParam, @Res({ passthrough: true }) res: FastifyReply) {
    await this.qr.batch(me, p.batchId);
    void res
      .header('content-type', 'application/pdf')
      .header('content-disposition', `attachment; filename="qr-labels-${p.batchId}.pdf"`)
      .header('cache-control', 'private, no-cache');
    return raw(labelSheet(this.qr.batchTags(me, p.batchId)));
  }
}

/** The page a scanned QR opens: `/q/:code`, outside `/api/v1`, no auth. */
@ApiTags('qr')
@Controller('q')
export class QrPublicController {
  constructor(private readonly qr: QrService) {}

  @Public()
  @Get(':code')
  @ApiProduces('application/json', 'text/html')
  @ApiOperation({
    summary: 'Public summary of a public tag',
    description:
      'JSON with `Accept: application/json`, else a small HTML page. Anything but a public active tag is the same 404 with Cache-Control: no-store.',
  })
  async page(
    // Read raw, not through the validation pipe: a code of any shape (even one with a NUL) is the same 404.
    @Req() req: FastifyRequest,
    @Headers('accept') accept: string | undefined,
    @Res({ passthrough: true }) res: FastifyReply,
  ) {
    const page = await this.qr.publicPage((req.params as { code: string }).code);
    void res.header('vary', 'Accept');
    if (!page) {
      void res.header('cache-control', 'no-store');
      throw new NotFoundError('Tag');
    }
    const answer = wantsJson(accept) ? page.json : page.html;
    void res.header('content-type', answer.contentType);
    if (notModified(req, res, answer.etag, 'public, s-maxage=60, stale-while-revalidate=300')) return emptyBody();
    return answer.body;
  }
}
