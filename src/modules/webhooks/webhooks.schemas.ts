import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';
import { pageQuerySchema } from '../../common/pagination/cursor';
import { WEBHOOK_EVENT_TYPES } from './webhook-events';

export const webhookOrgParamSchema = z.strictObject({ orgId: z.uuid() });
export class WebhookOrgParam extends createZodDto(webhookOrgParamSchema) {}

export const webhookParamSchema = z.strictObject({ orgId: z.uuid(), webhookId: z.uuid() });
export class WebhookParam extends createZodDto(webhookParamSchema) {}

export class WebhookPageQuery extends createZodDto(pageQuerySchema) {}

export const createWebhookSchema = z.strictObject({
  url: z.string().trim().min(1).max(2048),
  events: z
    .array(z.enum(WEBHOOK_EVENT_TYPES))
    .min(1)
    .max(WEBHOOK_EVENT_TYPES.length * 4)
    .transform((events) => [...new Set(events)]),
  description: z.string().trim().max(500).optional(),
});
export class CreateWebhookDto extends createZodDto(createWebhookSchema) {}
export type CreateWebhookInput = z.infer<typeof createWebhookSchema>;

/** An endpoint as every read shows it (never its secret). */
export interface WebhookView {
  id: string;
  orgId: string;
  url: string;
  description: string | null;
  events: string[];
  enabled: boolean;
  disabledAt: Date | null;
  failingSince: Date | null;
  createdAt: Date;
}

/** The create answer: the endpoint with its signing secret, shown only here. */
export type CreatedWebhookView = WebhookView & { secret: string };

/** One delivery attempt. */
export interface WebhookAttemptView {
  id: string;
  eventId: string;
  eventType: string;
  attempt: number;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  createdAt: Date;
  nextRetryAt: Date | null;
  responseSnippet: string | null;
}
