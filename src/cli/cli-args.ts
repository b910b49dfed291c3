/**
 * `--name value` / `--name=value` flags of the command-line scripts, each
 * checked against its declared kind. Unknown flags and bad values throw, with
 * the flag's name.
 */
export type FlagKind = 'int' | 'number' | 'string';
export type FlagSpec = Record<string, FlagKind>;
export type Flags<S extends FlagSpec> = {
  [K in keyof S]?: S[K] extends 'string' ? string : number;
};

export function parseFlags<S extends FlagSpec>(argv: readonly string[], spec: S): Flags<S> {
  const out: Record<string, string | number> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error(`unexpected argument "${arg}"`);
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    const kind = spec[name];
    if (!kind)
      throw new Error(
        `unknown flag --${name} (known: ${Object.keys(spec)
          .map((k) => `--${k}`)
          .join(', ')})`,
      );
    let raw: string | undefined;
    if (eq > 0) raw = arg.slice(eq + 1);
    else {
      raw = argv[i + 1];
      i += 1;
    }
    if (raw === undefined || raw === '') throw new Error(`--${name} needs a value`);
    if (kind === 'string') {
      out[name] = raw;
      continue;
    }
    const value = Number(raw.replace(/_/g, ''));
    if (!Number.isFinite(value) || (kind === 'int' && (!Number.isInteger(value) || value < 0))) {
      throw new Error(`--${name} must be ${kind === 'int' ? 'a non-negative integer' : 'a number'}, got "${raw}"`);
    }
    out[name] = value;
  }
  return out as Flags<S>;
}
