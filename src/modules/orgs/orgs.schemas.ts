import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';
import { pageQuerySchema } from '../../common/pagination/cursor';
import { phoneSchema } from '../../common/validation/zod';
import { ORG_ROLE_NAMES, OrgRole } from './org-roles';

export const orgIdParamSchema = z.strictObject({ orgId: z.uuid() });
export class OrgIdParam extends createZodDto(orgIdParamSchema) {}

export const driverParamSchema = z.strictObject({ orgId: z.uuid(), driverId: z.uuid() });
export class DriverParam extends createZodDto(driverParamSchema) {}

export const memberParamSchema = z.strictObject({ orgId: z.uuid(), userId: z.uuid() });
export class MemberParam extends createZodDto(memberParamSchema) {}

export class PageQueryDto extends createZodDto(pageQuerySchema) {}

export const createOrgSchema = z.strictObject({
  name: z.string().trim().min(1).max(200),
  city: z.string().trim().min(1).max(120).optional(),
});
export class CreateOrgDto extends createZodDto(createOrgSchema) {}

export const updateOrgSchema = z
  .strictObject({
    name: z.string().trim().min(1).max(200).optional(),
    city: z.string().trim().min(1).max(120).nullable().optional(),
  })
  .refine((v) => v.name !== undefined || v.city !== undefined, { message: 'name or city is required' });
export class UpdateOrgDto extends createZodDto(updateOrgSchema) {}

export const addMemberSchema = z.strictObject({ phone: phoneSchema, role: z.enum(ORG_ROLE_NAMES) });
export class AddMemberDto extends createZodDto(addMemberSchema) {}

export const updateMemberSchema = z.strictObject({ role: z.enum(ORG_ROLE_NAMES) });
export class UpdateMemberDto extends createZodDto(updateMemberSchema) {}

/** Registration numbers are compared upper-case with single spaces: "mh12  ab 1234" = "MH12 AB 1234". */
const truckNumber = z
  .string()
  .trim()
  .min(1)
  .max(32)
  .transform((s) => s.toUpperCase().replace(/\s+/g, ' '));

export const createTruckSchema = z.strictObject({
  number: truckNumber,
  type: z.string().trim().min(1).max(60).optional(),
  capacityKg: z.number().int().positive().max(1_000_000).optional(),
});
export class CreateTruckDto extends createZodDto(createTruckSchema) {}

export const createDriverSchema = z.strictObject({
  phone: phoneSchema,
  licenseNo: z.string().trim().min(1).max(40).optional(),
  deviceId: z.string().trim().min(1).max(128).optional(),
});
export class CreateDriverDto extends createZodDto(createDriverSchema) {}

/** The answer of POST /orgs/:orgId/drivers/:driverId/tracker-token (OpenAPI). */
export const trackerTokenSchema = z.strictObject({
  trackerToken: z.string().describe('The new token (base64url, 192 random bits): shown only in this answer'),
});
export class TrackerTokenDto extends createZodDto(trackerTokenSchema) {}

export interface OrgView {
  id: string;
  name: string;
  city: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface MemberView {
  id: string;
  orgId: string;
  userId: string;
  role: OrgRole;
  user: { id: string; name: string; phone: string | null };
  createdAt: Date;
}

export interface TruckView {
  id: string;
  orgId: string;
  number: string;
  type: string | null;
  capacityKg: number | null;
  createdAt: Date;
}

export interface DriverView {
  id: string;
  orgId: string;
  userId: string;
  name: string;
  phone: string | null;
  licenseNo: string | null;
  deviceId: string | null;
  createdAt: Date;
}
