import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';
import { phoneSchema } from '../../common/validation/zod';

export const registerSchema = z.strictObject({
  phone: phoneSchema,
  name: z.string().trim().min(1).max(120),
  password: z.string().min(8, 'must be at least 8 characters').max(200),
});
export class RegisterDto extends createZodDto(registerSchema) {}

export const loginSchema = z.strictObject({
  phone: phoneSchema,
  password: z.string().min(1).max(200),
});
export class LoginDto extends createZodDto(loginSchema) {}

export const refreshSchema = z.strictObject({ refreshToken: z.string().min(1).max(200) });
export class RefreshDto extends createZodDto(refreshSchema) {}

export interface UserView {
  id: string;
  phone: string | null;
  name: string;
  createdAt: Date;
}

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  /** Seconds until the access token expires. */
  expiresIn: number;
}
