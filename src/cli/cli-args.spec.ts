import { parseFlags } from './cli-args';

describe('parseFlags', () => {
  const spec = { orgs: 'int', speedup: 'number', url: 'string' } as const;

  it('reads --name value and --name=value, with underscores in numbers', () => {
    expect(parseFlags(['--orgs', '1_000', '--speedup=2.5', '--url', 'http://x:1'], spec)).toEqual({
      orgs: 1000,
      speedup: 2.5,
      url: 'http://x:1',
    });
    expect(parseFlags([], spec)).toEqual({});
  });

  it('refuses unknown flags, missing and bad values, naming the flag', () => {
    expect(() => parseFlags(['--org', '3'], spec)).toThrow(/unknown flag --org/);
    expect(() => parseFlags(['--orgs'], spec)).toThrow(/--orgs needs a value/);
    expect(() => parseFlags(['--orgs', '2.5'], spec)).toThrow(/--orgs must be a non-negative integer/);
    expect(() => parseFlags(['--orgs', '-1'], spec)).toThrow(/--orgs must be/);
    expect(() => parseFlags(['--speedup', 'fast'], spec)).toThrow(/--speedup must be a number/);
    expect(() => parseFlags(['orgs'], spec)).toThrow(/unexpected argument/);
  });
});
