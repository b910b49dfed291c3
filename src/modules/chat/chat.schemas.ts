import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';
import { pageQuerySchema } from '../../common/pagination/cursor';

/** Most attachments one message carries. */
export const MESSAGE_MAX_ATTACHMENTS = 10;

export const threadIdParamSchema = z.strictObject({ threadId: z.uuid() });
export class ThreadIdParam extends createZodDto(threadIdParamSchema) {}

export const attachmentIdParamSchema = z.strictObject({ attachmentId: z.uuid() });
export class AttachmentIdParam extends createZodDto(attachmentIdParamSchema) {}

export const createThreadSchema = z
  .strictObject({
    tripId: z.uuid().optional(),
    accountId: z.uuid().optional(),
    title: z.string().trim().min(1).max(200).optional(),
  })
  .refine((b) => (b.tripId === undefined) !== (b.accountId === undefined), {
    message: 'give exactly one of tripId and accountId',
    path: ['tripId'],
  });
export class CreateThreadDto extends createZodDto(createThreadSchema) {}
export type CreateThreadInput = z.infer<typeof createThreadSchema>;

const fieldsSchema = z
  .string()
  .max(500)
  .optional()
  .describe('comma-separated thread fields: id,tripId,accountId,title,unreadCount,lastMessageAt,createdAt');

export const listThreadsQuerySchema = pageQuerySchema.extend({ fields: fieldsSchema });
export class ListThreadsQuery extends createZodDto(listThreadsQuerySchema) {}
export type ListThreadsInput = z.infer<typeof listThreadsQuerySchema>;

export const threadDetailQuerySchema = z.strictObject({ fields: fieldsSchema });
export class ThreadDetailQuery extends createZodDto(threadDetailQuerySchema) {}

export const listMessagesQuerySchema = pageQuerySchema;
export class ListMessagesQuery extends createZodDto(listMessagesQuerySchema) {}

export const sendMessageSchema = z.strictObject({
  body: z.string().max(20_000).describe('1..4000 characters after trimming; empty only with attachments'),
  clientMessageId: z
    .string()
    .min(1)
    .max(100)
    .describe('made by the client; the same id twice from the same user answers the first message (200)'),
  attachmentIds: z
    .array(z.uuid())
    .max(MESSAGE_MAX_ATTACHMENTS)
    .default([])
    .refine((ids) => new Set(ids).size === ids.length, 'must not repeat an id'),
});
export class SendMessageDto extends createZodDto(sendMessageSchema) {}
export type SendMessageInput = z.infer<typeof sendMessageSchema>;

export const markReadSchema = z.strictObject({ lastMessageId: z.uuid() });
export class MarkReadDto extends createZodDto(markReadSchema) {}

export interface ThreadView {
  id: string;
  tripId: string | null;
  accountId: string | null;
  title: string | null;
  unreadCount: number;
  lastMessageAt: string | null;
  createdAt: string;
}

export interface MessageView {
  id: string;
  threadId: string;
  senderId: string;
  body: string;
  clientMessageId: string;
  attachmentIds: string[];
  createdAt: string;
}

export interface AttachmentView {
  id: string;
  url: string;
  contentType: string;
  size: number;
  filename: string;
}
