import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';
import { pageQuerySchema } from '../../common/pagination/cursor';
import { isoDateTimeSchema } from '../../common/validation/zod';
import { SCAN_FUTURE_TOLERANCE_MS, type TagStatus } from './qr-rules';

export const ENTITY_TYPES = ['TRUCK', 'CARGO', 'TRIP', 'DOCUMENT'] as const;
export type EntityType = (typeof ENTITY_TYPES)[number];
export const SCAN_ACTIONS = ['VIEW', 'CHECK_IN', 'LOAD', 'UNLOAD', 'DELIVER'] as const;
export type ScanAction = (typeof SCAN_ACTIONS)[number];
export const TAG_STATUSES = ['ACTIVE', 'DISABLED', 'EXPIRED'] as const;

/** The fields `?fields=` may name on tags. */
export const TAG_FIELDS = [
  'id',
  'orgId',
  'entityType',
  'entityId',
  'title',
  'code',
  'url',
  'isPublic',
  'status',
  'expiresAt',
  'maxScans',
  'scanCount',
  'createdAt',
] as const;
export type TagField = (typeof TAG_FIELDS)[number];

const title = z.string().trim().min(1).max(200);
const entityId = z.string().trim().min(1).max(200);

export const createTagSchema = z.strictObject({
  orgId: z.uuid(),
  entityType: z.enum(ENTITY_TYPES),
  entityId,
  title,
  isPublic: z.boolean().default(true),
  expiresAt: isoDateTimeSchema
    .refine((s) => Date.parse(s) > Date.now(), 'must be in the future')
    .transform((s) => new Date(s))
    .optional(),
  maxScans: z.number().int().min(1).max(2_000_000_000).optional(),
});
export class CreateTagDto extends createZodDto(createTagSchema) {}
export type CreateTagInput = z.infer<typeof createTagSchema>;

const fieldsParam = z.string().max(500).optional();

export const listTagsQuerySchema = pageQuerySchema.extend({
  orgId: z.uuid().optional(),
  entityType: z.enum(ENTITY_TYPES).optional(),
  status: z.enum(TAG_STATUSES).optional(),
  fields: fieldsParam,
});
export class ListTagsQuery extends createZodDto(listTagsQuerySchema) {}
export type ListTagsFilter = z.infer<typeof listTagsQuerySchema>;

export const tagParamSchema = z.strictObject({ tagId: z.uuid() });
export class TagParam extends createZodDto(tagParamSchema) {}
export const fieldsQuerySchema = z.strictObject({ fields: fieldsParam });
export class FieldsQuery extends createZodDto(fieldsQuerySchema) {}
export class TagPageQuery extends createZodDto(pageQuerySchema) {}

export const IMAGE_LIMITS = { minSize: 64, maxSize: 2000, defaultSize: 300, maxMargin: 16, defaultMargin: 4 };
export const imageQuerySchema = z.strictObject({
  format: z.enum(['png', 'svg']).default('png'),
  size: z.coerce.number().int().min(IMAGE_LIMITS.minSize).max(IMAGE_LIMITS.maxSize).default(IMAGE_LIMITS.defaultSize),
  margin: z.coerce.number().int().min(0).max(IMAGE_LIMITS.maxMargin).default(IMAGE_LIMITS.defaultMargin),
  ecl: z.enum(['L', 'M', 'Q', 'H']).default('M'),
});
export class ImageQuery extends createZodDto(imageQuerySchema) {}
export type ImageOptions = z.infer<typeof imageQuerySchema>;

export const scanSchema = z.strictObject({
  code: z.string().min(1).max(200),
  action: z.enum(SCAN_ACTIONS),
  lat: z.number().min(-90).max(90).optional(),
  lng: z.number().min(-180).max(180).optional(),
  tripId: z.uuid().optional(),
  scannedAt: isoDateTimeSchema
    .refine((s) => Date.parse(s) <= Date.now() + SCAN_FUTURE_TOLERANCE_MS, 'must not be more than 5 minutes ahead')
    .transform((s) => new Date(s))
    .optional(),
});
export class ScanDto extends createZodDto(scanSchema) {}
export type ScanInput = z.infer<typeof scanSchema>;

export const analyticsQuerySchema = z
  .strictObject({
    orgId: z.uuid(),
    from: isoDateTimeSchema.optional(),
    to: isoDateTimeSchema.optional(),
    groupBy: z.enum(['day', 'entity', 'action']).default('day'),
  })
  .refine((q) => !q.from || !q.to || Date.parse(q.from) <= Date.parse(q.to), {
    message: 'from must not be after to',
    path: ['from'],
  });
export class AnalyticsQuery extends createZodDto(analyticsQuerySchema) {}
export type AnalyticsFilter = z.infer<typeof analyticsQuerySchema>;

export const batchItemSchema = z.strictObject({ entityType: z.enum(ENTITY_TYPES), entityId, title });
export type BatchItem = z.infer<typeof batchItemSchema>;
/** The item count is checked by the service against QR_BATCH_MAX_ITEMS (configurable), naming the limit. */
export const createBatchSchema = z.strictObject({ orgId: z.uuid(), items: z.array(batchItemSchema).min(1) });
export class CreateBatchDto extends createZodDto(createBatchSchema) {}

export const batchParamSchema = z.strictObject({ batchId: z.uuid() });
export class BatchParam extends createZodDto(batchParamSchema) {}

export interface TagView {
  id: string;
  orgId: string;
  entityType: EntityType;
  entityId: string;
  title: string;
  code: string;
  url: string;
  isPublic: boolean;
  status: TagStatus;
  expiresAt: Date | null;
  maxScans: number | null;
  scanCount: number;
  createdAt: Date;
}

export interface ScanView {
  id: string;
  tagId: string;
  action: ScanAction;
  scannerUserId: string;
  tripId: string | null;
  lat: number | null;
  lng: number | null;
  scannedAt: Date;
  createdAt: Date;
}

export interface PublicTagSummary {
  code: string;
  entityType: EntityType;
  title: string;
  orgName: string;
  status: 'ACTIVE';
}

export interface AnalyticsView {
  total: number;
  uniqueScanners: number;
  groups: { key: string; count: number; uniqueScanners: number }[];
}

export interface BatchView {
  id: string;
  orgId: string;
  status: 'PENDING' | 'RUNNING' | 'DONE' | 'FAILED';
  total: number;
  done: number;
  failed: number;
  createdAt: Date;
}
