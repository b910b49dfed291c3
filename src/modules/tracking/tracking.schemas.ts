import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';
import { isoDateTimeSchema } from '../../common/validation/zod';

export const MAX_LOCATIONS = 1000;

export const pingSchema = z.strictObject({
  tripId: z.uuid(),
  locations: z
    .array(z.unknown())
    .min(1)
    .max(MAX_LOCATIONS)
    .describe(
      '{latitude, longitude, timestamp (ISO-8601 or epoch s/ms), accuracy?, speed? (m/s), heading?, altitude?, batchId?}; ' +
        'each is validated and filtered on its own: a bad one is listed in `rejected` and the rest are stored',
    ),
});
export class PingDto extends createZodDto(pingSchema) {}

export const historyQuerySchema = z
  .strictObject({
    from: isoDateTimeSchema.optional(),
    to: isoDateTimeSchema.optional(),
    cursor: z.string().max(200).optional(),
    limit: z.coerce.number().int().min(1).max(5000).default(1000),
    format: z.enum(['json', 'geojson']).default('json'),
  })
  .refine((q) => !q.from || !q.to || Date.parse(q.from) <= Date.parse(q.to), {
    message: 'from must not be after to',
    path: ['from'],
  });
export class HistoryQuery extends createZodDto(historyQuerySchema) {}

export const tripIdParamSchema = z.strictObject({ tripId: z.uuid() });
export class TrackingTripParam extends createZodDto(tripIdParamSchema) {}
