import { newUser } from '../support/factories';
import { Api, startTestApp } from '../support/test-app';

describe('graceful shutdown', () => {
  it('finishes every request that arrived before closing, then refuses new ones', async () => {
    let arrived = 0;
    const t = await startTestApp({}, (app) => {
      app
        .getHttpAdapter()
        .getInstance()
        .addHook('onRequest', (_req, _reply, done) => {
          arrived += 1;
          done();
        });
    });
    const u = await newUser(t.api);
    const before = arrived;
    // Logins are slow on purpose (scrypt): most are still running when the close starts.
    const inFlight = Array.from({ length: 12 }, () =>
      t.api.post('/auth/login', { phone: u.phone, password: u.password }),
    );
    while (arrived < before + 12) await new Promise((r) => setTimeout(r, 2));
    const closing = t.close();
    const results = await Promise.all(inFlight);
    await closing;
    expect(results.map((r) => r.status)).toEqual(Array(12).fill(200));
    await expect(new Api(t.url).get('/health/live')).rejects.toThrow();
  });
});
