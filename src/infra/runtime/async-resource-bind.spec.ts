import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks';
import { installAsyncResourceBind } from './async-resource-bind';

describe('installAsyncResourceBind', () => {
  beforeAll(() => installAsyncResourceBind());

  it('leaves bound functions without the deprecated asyncResource property', () => {
    const bound = AsyncResource.bind(() => 1);
    expect(Object.prototype.hasOwnProperty.call(bound, 'asyncResource')).toBe(false);
    expect(installAsyncResourceBind()).toBe(false); // already in place: nothing to do
  });

  it('runs the function in the async context of the bind, not of the call', async () => {
    const als = new AsyncLocalStorage<string>();
    const bound = als.run('at bind', () => AsyncResource.bind(() => als.getStore()));
    expect(als.run('at call', () => bound())).toBe('at bind');
    const later = await als.run('at bind', () => new Promise((r) => setTimeout(() => r(bound), 1)));
    expect(als.run('elsewhere', () => (later as () => string)())).toBe('at bind');
  });

  it('keeps arguments, length and this: the caller’s, or the one given to bind', () => {
    function f(this: unknown, a: number, b: number) {
      return { self: this, sum: a + b };
    }
    const resource = new AsyncResource('test');
    const free = resource.bind(f);
    const receiver = { free };
    expect(free.length).toBe(2);
    expect(receiver.free(1, 2)).toEqual({ self: receiver, sum: 3 });
    const bindWith = resource.bind.bind(resource) as unknown as (fn: typeof f, thisArg: unknown) => typeof f;
    expect(bindWith(f, 'given').call('ignored', 1, 2).self).toBe('given');
    expect(() => resource.bind(42 as never)).toThrow(/must be of type function/);
  });
});
