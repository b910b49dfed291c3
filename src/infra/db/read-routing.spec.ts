import { PinStore, ReadRouter, RoutedRequest } from './read-routing';

class MapStore implements PinStore {
  readonly pins = new Map<string, number>();
  failing = false;
  async isPinned(userId: string) {
    if (this.failing) throw new Error('down');
    return (this.pins.get(userId) ?? 0) > Date.now();
  }
  async pin(userId: string, ms: number) {
    if (this.failing) throw new Error('down');
    this.pins.set(userId, Date.now() + ms);
  }
}

const req = (userId?: string): RoutedRequest => ({ userId, wrote: false, pinnedToPrimary: false });

describe('ReadRouter', () => {
  it('without a replica every read goes to the primary and nothing is stored', async () => {
    const store = new MapStore();
    const router = new ReadRouter(store, 5000, false);
    const r = req('u1');
    r.wrote = true;
    await router.afterRequest(r);
    expect(store.pins.size).toBe(0);
    expect(router.readsFromPrimary(req('u1'))).toBe(true);
  });

  it('reads go to the replica until the same user writes, then to the primary for the window', async () => {
    const store = new MapStore();
    const router = new ReadRouter(store, 5000, true);
    const before = req('u1');
    await router.beforeRequest(before);
    expect(router.readsFromPrimary(before)).toBe(false);

    const write = req('u1');
    write.wrote = true;
    expect(router.readsFromPrimary(write)).toBe(true); // its own reads after its write
    await router.afterRequest(write);

    const after = req('u1');
    await router.beforeRequest(after);
    expect(router.readsFromPrimary(after)).toBe(true);

    const otherUser = req('u2');
    await router.beforeRequest(otherUser);
    expect(router.readsFromPrimary(otherUser)).toBe(false);
  });

  it('the window ends', async () => {
    const store = new MapStore();
    const router = new ReadRouter(store, 5000, true);
    store.pins.set('u1', Date.now() - 1);
    const r = req('u1');
    await router.beforeRequest(r);
    expect(router.readsFromPrimary(r)).toBe(false);
  });

  it('anonymous requests and requests outside HTTP read the replica', async () => {
    const router = new ReadRouter(new MapStore(), 5000, true);
    const anon = req();
    await router.beforeRequest(anon);
    expect(router.readsFromPrimary(anon)).toBe(false);
    expect(router.readsFromPrimary(undefined)).toBe(false);
  });

  it('when the store is unreachable, reads go to the primary', async () => {
    const store = new MapStore();
    store.failing = true;
    const router = new ReadRouter(store, 5000, true);
    const r = req('u1');
    await router.beforeRequest(r);
    expect(router.readsFromPrimary(r)).toBe(true);
    r.wrote = true;
    await expect(router.afterRequest(r)).resolves.toBeUndefined();
  });
});
