import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';
import { pageQuerySchema } from '../../common/pagination/cursor';
import { isoDateTimeSchema } from '../../common/validation/zod';
import type { TokenPair } from '../auth/auth.schemas';
import type { AccessCodeStatus } from './access-code-rules';

/** The roles a code may give: crews load and drive, they never manage or see money. */
export const CODE_ROLES = ['STAFF', 'DRIVER'] as const;
export type CodeRole = (typeof CODE_ROLES)[number];

export const orgIdParamSchema = z.strictObject({ orgId: z.uuid() });
export class AccessCodeOrgParam extends createZodDto(orgIdParamSchema) {}

export const codeParamSchema = z.strictObject({ orgId: z.uuid(), codeId: z.uuid() });
export class AccessCodeParam extends createZodDto(codeParamSchema) {}

export class AccessCodePageQuery extends createZodDto(pageQuerySchema) {}

export const createAccessCodeSchema = z.strictObject({
  label: z.string().trim().min(1).max(120),
  role: z.enum(CODE_ROLES),
  maxSessions: z.number().int().min(1).max(10_000),
  expiresAt: isoDateTimeSchema
    .refine((s) => Date.parse(s) > Date.now(), 'must be in the future')
    .transform((s) => new Date(s))
    .optional(),
});
export class CreateAccessCodeDto extends createZodDto(createAccessCodeSchema) {}

export const codeLoginSchema = z.strictObject({
  code: z.string().min(1).max(200),
  name: z.string().trim().min(1).max(120),
  deviceId: z.string().trim().min(1).max(128).optional(),
});
export class CodeLoginDto extends createZodDto(codeLoginSchema) {}

export const codeLogoutSchema = z.strictObject({ refreshToken: z.string().min(1).max(200) });
export class CodeLogoutDto extends createZodDto(codeLogoutSchema) {}

/** A code as every read shows it (never the secret). */
export interface AccessCodeView {
  id: string;
  orgId: string;
  label: string;
  role: CodeRole;
  maxSessions: number;
  activeSessions: number;
  expiresAt: Date | null;
  status: AccessCodeStatus;
  disabledAt: Date | null;
  createdAt: Date;
}

/** The create answer: the code with its secret, shown only here. */
export type CreatedAccessCodeView = AccessCodeView & { code: string };

/** One login with a code. */
export interface CodeSessionView {
  id: string;
  codeId: string;
  orgId: string;
  role: CodeRole;
  userId: string;
  name: string;
  deviceId: string | null;
  createdAt: Date;
}

export type CodeLoginResult = { session: CodeSessionView } & TokenPair;
