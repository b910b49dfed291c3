import { createZodValidationPipe } from 'nestjs-zod';
import { z, ZodError, ZodType } from 'zod';
import { ValidationError } from '../errors/domain-error';
import { zodDetails } from '../errors/error-response';

/**
 * The one validation pipe: every `@Body()`, `@Query()` and `@Param()` typed
 * with a `createZodDto` class is parsed by its schema; failures are 400
 * VALIDATION_FAILED naming each field.
 */
export const AppValidationPipe = createZodValidationPipe({
  createValidationException: (error: unknown) =>
    new ValidationError(error instanceof ZodError ? zodDetails(error) : [{ message: 'Invalid input' }]),
});

/** Parses input with a zod schema outside HTTP (Socket.IO payloads, jobs). */
export function parseWith<S extends ZodType>(schema: S, input: unknown): z.infer<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw new ValidationError(zodDetails(result.error));
  return result.data;
}

/** E.164 phone numbers: `+` and 8 to 15 digits. */
export const phoneSchema = z.string().regex(/^\+[1-9]\d{7,14}$/, 'must be an E.164 phone number such as +919812345678');

export const uuidSchema = z.uuid();
