import { ImmutableMemo } from './immutable-memo';

describe('ImmutableMemo', () => {
  it('loads a key once, keeps no miss, drops the oldest past its bound, and forgets on delete', async () => {
    const memo = new ImmutableMemo<string>('test_memo', 2);
    const loads: string[] = [];
    const load = (key: string, found = true) => async () => {
      loads.push(key);
      return found ? `v-${key}` : null;
    };
    expect(await memo.get('a', load('a'))).toBe('v-a');
    expect(await memo.get('a', load('a'))).toBe('v-a');
    expect(await memo.get('x', load('x', false))).toBeNull();
    expect(await memo.get('x', load('x', false))).toBeNull();
    expect(loads).toEqual(['a', 'x', 'x']);

    await memo.get('b', load('b'));
    await memo.get('c', load('c')); // the bound is 2: 'a' goes
    await memo.get('a', load('a'));
    expect(loads).toEqual(['a', 'x', 'x', 'b', 'c', 'a']);

    memo.delete('a');
    await memo.get('a', load('a'));
    expect(loads.filter((k) => k === 'a')).toHaveLength(3);
  });
});
