import { AsyncResource } from 'node:async_hooks';

type Bind = (
  this: AsyncResource,
  fn: (...args: never[]) => unknown,
  thisArg?: unknown,
) => (...args: unknown[]) => unknown;

/**
 * `AsyncResource#bind` without the deprecated `asyncResource` accessor.
 *
 * Fastify and Nest bind a few callbacks per request to the caller's async
 * context (`AsyncResource.bind`). On Node 20 every such call also defines an
 * `asyncResource` getter and setter on the bound function, each wrapped by
 * `util.deprecate` (DEP0172): about 5% of the app's CPU on the ping path
 * (docs/performance-tracking.md, "CPU per point"). Newer Node releases drop
 * that property (nodejs/node#58618); this installs the same method as they
 * have (same async context, same `this`, same `length`) where the runtime
 * still carries it, and does nothing elsewhere.
 */
export function installAsyncResourceBind(): boolean {
  const probe = new AsyncResource('waybill-probe').bind(() => undefined);
  if (!Object.prototype.hasOwnProperty.call(probe, 'asyncResource')) return false;
  const bind: Bind = function (fn, thisArg) {
    if (typeof fn !== 'function') throw new TypeError('The "fn" argument must be of type function');
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const resource = this;
    const bound =
      thisArg === undefined
        ? function (this: unknown, ...args: unknown[]) {
            return resource.runInAsyncScope(fn as (...a: unknown[]) => unknown, this, ...args);
          }
        : (...args: unknown[]) => resource.runInAsyncScope(fn as (...a: unknown[]) => unknown, thisArg, ...args);
    Object.defineProperty(bound, 'length', {
      configurable: true,
      enumerable: false,
      writable: false,
      value: fn.length,
    });
    return bound;
  };
  Object.defineProperty(AsyncResource.prototype, 'bind', { configurable: true, writable: true, value: bind });
  return true;
}
