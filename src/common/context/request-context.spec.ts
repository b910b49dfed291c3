import { requestContext } from './request-context';

describe('requestContext', () => {
  it('is visible inside run, and hidden from shared work started there with outside', async () => {
    const ctx = { requestId: 'r1', wrote: false, pinnedToPrimary: false };
    await requestContext.run(ctx, async () => {
      expect(requestContext.current()).toBe(ctx);
      await new Promise((r) => setTimeout(r, 1));
      expect(requestContext.current()).toBe(ctx);
      const seen = await requestContext.outside(async () => {
        await new Promise((r) => setTimeout(r, 1));
        return requestContext.current();
      });
      expect(seen).toBeUndefined();
      expect(requestContext.current()).toBe(ctx);
    });
    expect(requestContext.current()).toBeUndefined();
  });
});
