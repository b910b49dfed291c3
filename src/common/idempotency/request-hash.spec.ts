import { canonicalJson, requestHash } from './request-hash';

describe('request hashing', () => {
  it('ignores key order and undefined values, not content', () => {
    expect(canonicalJson({ b: 1, a: [{ y: 2, x: 1 }], u: undefined })).toBe('{"a":[{"x":1,"y":2}],"b":1}');
    expect(requestHash('POST', '/x', { a: 1, b: 2 })).toBe(requestHash('POST', '/x', { b: 2, a: 1 }));
    expect(requestHash('POST', '/x', { a: 1 })).not.toBe(requestHash('POST', '/x', { a: 2 }));
    expect(requestHash('POST', '/x', { a: 1 })).not.toBe(requestHash('POST', '/y', { a: 1 }));
    expect(requestHash('POST', '/x', { a: '1' })).not.toBe(requestHash('POST', '/x', { a: 1 }));
  });
});
