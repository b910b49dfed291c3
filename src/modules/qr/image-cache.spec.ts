import { ByteLruCache } from './image-cache';

describe('ByteLruCache', () => {
  const b = (n: number) => Buffer.alloc(n);
  it('evicts the least recently used entries to stay within its byte bound', () => {
    const c = new ByteLruCache(100);
    c.set('a', b(40));
    c.set('b', b(40));
    c.get('a');
    c.set('c', b(40));
    expect(c.get('b')).toBeUndefined();
    expect(c.get('a')).toBeDefined();
    expect(c.get('c')).toBeDefined();
    expect(c.bytes).toBe(80);
  });

  it('does not keep an entry larger than the bound, and replaces a key in place', () => {
    const c = new ByteLruCache(100);
    c.set('big', b(101));
    expect(c.size).toBe(0);
    c.set('a', b(10));
    c.set('a', b(30));
    expect(c.bytes).toBe(30);
    expect(c.size).toBe(1);
  });
});
