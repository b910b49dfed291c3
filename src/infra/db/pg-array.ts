/**
 * PostgreSQL array literals for bind parameters, built with one `join`.
 * pg converts a JS array element by element (prepare, escape, concatenate),
 * which on the ping flush's nine arrays was the largest single source of
 * garbage per point (docs/performance-tracking.md, "Steady state, and the
 * framework's own costs").
 */

/** `{1.5,NULL,-3}`: numbers as PostgreSQL reads them (float8 takes JS's `1e-7`, `Infinity`, `NaN`). */
export function numberArray(values: readonly (number | null | undefined)[]): string {
  return `{${values.map((v) => (v === null || v === undefined ? 'NULL' : String(v))).join(',')}}`;
}

/** `{"a","b \"c\"",NULL}`: every element quoted, backslashes and double quotes escaped. */
export function textArray(values: readonly (string | null | undefined)[]): string {
  return `{${values.map((v) => (v === null || v === undefined ? 'NULL' : `"${v.replace(/[\\"]/g, '\\$&')}"`)).join(',')}}`;
}
