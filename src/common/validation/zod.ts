import { ArgumentMetadata, Injectable } from '@nestjs/common';
import { createZodValidationPipe } from 'nestjs-zod';
import { z, ZodError, ZodType } from 'zod';
import { ValidationError } from '../errors/domain-error';
import { zodDetails } from '../errors/error-response';
import { unicodeTextSchema } from './unicode-text';

const ZodPipe = createZodValidationPipe({
  createValidationException: (error: unknown) =>
    new ValidationError(error instanceof ZodError ? zodDetails(error) : [{ message: 'Invalid input' }]),
});

/** Throws VALIDATION_FAILED naming each string (value or key) of `input` that is not Unicode text. */
export function assertUnicodeText(input: unknown, name?: string): void {
  const result = unicodeTextSchema.safeParse(input);
  if (result.success) return;
  const details = zodDetails(result.error);
  if (name) for (const d of details) d.path = d.path ? `${name}.${d.path}` : name;
  throw new ValidationError(details);
}

/**
 * The one validation pipe: every `@Body()`, `@Query()` and `@Param()` typed
 * with a `createZodDto` class is parsed by its schema; failures are 400
 * VALIDATION_FAILED naming each field. Before any schema, every string of a
 * body, query string or params (typed or not, keys too) must be Unicode text.
 */
@Injectable()
export class AppValidationPipe extends ZodPipe {
  override transform(value: unknown, metadata: ArgumentMetadata): unknown {
    if (metadata.type !== 'custom')
      assertUnicodeText(value, typeof value === 'string' ? (metadata.data ?? metadata.type) : undefined);
    return super.transform(value, metadata);
  }
}

/** Parses input with a zod schema outside HTTP (Socket.IO payloads, jobs), text checked first like HTTP input. */
export function parseWith<S extends ZodType>(schema: S, input: unknown): z.infer<S> {
  assertUnicodeText(input);
  const result = schema.safeParse(input);
  if (!result.success) throw new ValidationError(zodDetails(result.error));
  return result.data;
}

/** E.164 phone numbers: `+` and 8 to 15 digits. */
export const phoneSchema = z.string().regex(/^\+[1-9]\d{7,14}$/, 'must be an E.164 phone number such as +919812345678');

export const uuidSchema = z.uuid();

/** The instants every timestamptz and date column takes here: years 0001 to 9999 (PostgreSQL has no year 0). */
const EARLIEST_MS = Date.parse('0001-01-01T00:00:00Z');
const LATEST_MS = Date.parse('9999-12-31T23:59:59.999Z');
const OUT_OF_RANGE = 'must be between the years 0001 and 9999 (UTC)';

export const isStorableTime = (ms: number): boolean => ms >= EARLIEST_MS && ms <= LATEST_MS;

/** An ISO-8601 date-time with `Z` or an offset, within the years PostgreSQL stores. */
export const isoDateTimeSchema = z.iso
  .datetime({ offset: true })
  .refine((s) => isStorableTime(Date.parse(s)), OUT_OF_RANGE);

/** An ISO-8601 calendar date (YYYY-MM-DD), within the years PostgreSQL stores. */
export const isoDateSchema = z.iso.date().refine((s) => !s.startsWith('0000'), OUT_OF_RANGE);
