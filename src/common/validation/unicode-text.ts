import { z } from 'zod';

/** A NUL or any surrogate code unit: the only strings that need a closer look. */
// eslint-disable-next-line no-control-regex -- NUL is exactly what it looks for
const SUSPECT = /[\u0000\uD800-\uDFFF]/;

/** Why a string is not Unicode text that PostgreSQL can store (NUL, unpaired surrogate), or null when it is. */
export function textProblem(s: string): string | null {
  if (!SUSPECT.test(s)) return null;
  if (s.includes('\u0000')) return 'must not contain a NUL character';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    const next = s.charCodeAt(i + 1);
    if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) i++;
    else return 'must not contain an unpaired surrogate';
  }
  return null;
}

export interface TextIssue {
  path: PropertyKey[];
  message: string;
}

interface Frame {
  value: object;
  parent: Frame | null;
  key: PropertyKey | null;
}

const pathOf = (frame: Frame | null, last: PropertyKey[]): PropertyKey[] => {
  const up: PropertyKey[] = [];
  for (let f = frame; f && f.key !== null; f = f.parent) up.push(f.key);
  return up.reverse().concat(last);
};

/**
 * Every string (value or object key) of `value` that holds a NUL or an
 * unpaired surrogate, with its path; at most `max`. One pass, iterative (a
 * deeply nested body cannot overflow the stack); paths are only built for the
 * strings that fail.
 */
export function textIssues(value: unknown, max = 20): TextIssue[] {
  const issues: TextIssue[] = [];
  if (typeof value === 'string') {
    const problem = textProblem(value);
    if (problem) issues.push({ path: [], message: problem });
    return issues;
  }
  if (value === null || typeof value !== 'object') return issues;
  const stack: Frame[] = [{ value, parent: null, key: null }];
  while (stack.length && issues.length < max) {
    const frame = stack.pop()!;
    const obj = frame.value;
    if (Array.isArray(obj)) {
      for (let i = 0; i < obj.length; i++) {
        const v: unknown = obj[i];
        if (typeof v === 'string') {
          const problem = textProblem(v);
          if (problem) issues.push({ path: pathOf(frame, [i]), message: problem });
        } else if (v !== null && typeof v === 'object') stack.push({ value: v, parent: frame, key: i });
      }
      continue;
    }
    for (const key in obj) {
      if (!Object.prototype.hasOwnProperty.call(obj, key)) continue;
      const keyProblem = textProblem(key);
      if (keyProblem) issues.push({ path: pathOf(frame, [key]), message: `the key ${keyProblem}` });
      const v: unknown = (obj as Record<string, unknown>)[key];
      if (typeof v === 'string') {
        const problem = textProblem(v);
        if (problem) issues.push({ path: pathOf(frame, [key]), message: problem });
      } else if (v !== null && typeof v === 'object') stack.push({ value: v, parent: frame, key });
    }
  }
  return issues.slice(0, max);
}

/**
 * The one refinement every input passes before its own schema (HTTP bodies,
 * query strings and params in the validation pipe, Socket.IO payloads and jobs
 * in `parseWith`): text is Unicode text, so no string can make PostgreSQL
 * refuse a statement that other requests share.
 */
export const unicodeTextSchema = z.unknown().superRefine((value, ctx) => {
  for (const issue of textIssues(value)) {
    ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
  }
});
