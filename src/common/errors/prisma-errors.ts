/** True when a Prisma error is a unique-constraint violation (P2002), optionally on a given field. */
export function isUniqueViolation(err: unknown, field?: string): boolean {
  const e = err as { code?: string; meta?: Record<string, unknown> };
  if (e?.code !== 'P2002') return false;
  if (!field) return true;
  // The pg adapter names the index (`driver_profiles_device_id_key`) rather than its columns.
  return uniqueViolationFields(err).some((f) => f === field || f.includes(`_${field}_`));
}

/** The fields of the violated constraint, as the classic engine or the pg adapter reports them. */
export function uniqueViolationFields(err: unknown): string[] {
  const meta = (err as { meta?: Record<string, unknown> })?.meta ?? {};
  const target = meta.target;
  if (Array.isArray(target)) return target.map(String);
  if (typeof target === 'string') return [target];
  const cause = (meta.driverAdapterError as { cause?: { constraint?: { fields?: string[]; index?: string } } })?.cause;
  const constraint = cause?.constraint;
  if (constraint?.fields) return constraint.fields.map((f) => f.replace(/"/g, ''));
  if (constraint?.index) return [constraint.index];
  return [];
}
