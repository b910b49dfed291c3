import { ValidationError } from '../errors/domain-error';
import { textIssues, textProblem } from './unicode-text';
import { parseWith } from './zod';
import { z } from 'zod';

describe('Unicode text', () => {
  it('accepts text, pairs of surrogates (emoji) included', () => {
    expect(textProblem('Sharma Traders, Jaipur')).toBeNull();
    expect(textProblem('नमस्ते 🚚 😀')).toBeNull();
    expect(textProblem('')).toBeNull();
  });

  it('refuses a NUL and unpaired surrogates, high or low, anywhere', () => {
    expect(textProblem('a\u0000b')).toMatch(/NUL/);
    expect(textProblem('\ud800')).toMatch(/unpaired surrogate/);
    expect(textProblem('x\ud800y')).toMatch(/unpaired surrogate/);
    expect(textProblem('x\udc00')).toMatch(/unpaired surrogate/);
    expect(textProblem('\ud83d\ude00\ude00')).toMatch(/unpaired surrogate/);
  });

  it('names every bad string and key by its path, in arrays and nested objects', () => {
    const issues = textIssues({
      name: 'ok',
      locations: [{ batchId: 'ok' }, { batchId: 'b\u0000' }],
      deep: { ['k\ud800']: 'v', list: ['fine', 'x\udfff'] },
    });
    expect(issues.map((i) => i.path.join('.')).sort()).toEqual(['deep.k\ud800', 'deep.list.1', 'locations.1.batchId']);
  });

  it('walks a deeply nested value without overflowing the stack', () => {
    let v: unknown = 'bad\u0000';
    for (let i = 0; i < 50_000; i++) v = [v];
    expect(textIssues(v)).toHaveLength(1);
  });

  it('parseWith answers VALIDATION_FAILED naming the field before the schema runs', () => {
    const schema = z.strictObject({ room: z.string() });
    let caught: unknown;
    try {
      parseWith(schema, { room: 'trip:\u0000' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    expect((caught as ValidationError).details).toEqual([
      expect.objectContaining({ path: 'room', message: 'must not contain a NUL character' }),
    ]);
  });
});
