import { z } from 'zod';

/** Socket.IO payloads, validated like HTTP bodies (unknown keys rejected). */
export const subscribeSchema = z.strictObject({
  room: z.string().min(1).max(200),
  sinceSeq: z.number().int().min(0).optional(),
});

export const unsubscribeSchema = z.strictObject({
  room: z.string().min(1).max(200),
});

export const authSchema = z.strictObject({
  token: z.string().min(1).max(4096),
});

export type Ack =
  { ok: true; [key: string]: unknown } | { ok: false; error: { code: string; message: string; details?: unknown[] } };
