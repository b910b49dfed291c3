import { QrPngRenderer } from '../../src/modules/qr/qr-png-renderer';
import { newOrg } from '../support/factories';
import { until } from '../support/net';
import { startTestApp, TestApp } from '../support/test-app';

/** A big QR PNG renders on a worker thread: the node answers other requests meanwhile. */
describe('QR image rendering', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('answers other requests while a 2,000 px PNG renders, then serves the image', async () => {
    const org = await newOrg(t.api);
    const auth = { authorization: `Bearer ${org.owner.accessToken}` };
    const tag = await t.api.post(
      '/qr/tags',
      { orgId: org.id, entityType: 'CARGO', entityId: 'crate-1', title: 'Crate' },
      { token: org.owner.accessToken },
    );
    const order: string[] = [];
    const image = fetch(`${t.url}/api/v1/qr/tags/${tag.body.data.id}/image?format=png&size=2000&margin=3`, {
      headers: auth,
    }).then(async (res) => {
      order.push('image');
      return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()) };
    });
    // Sent once the render is on the worker; answered before it ends.
    const renderer = t.app.get(QrPngRenderer);
    await until('the render on the worker', async () => renderer.inFlight > 0 || order.length > 0, 10_000);
    expect(order).toEqual([]);
    const health = await t.root.get('/health/live');
    order.push('health');
    const img = await image;
    expect(health.status).toBe(200);
    expect(order).toEqual(['health', 'image']);
    expect(img.status).toBe(200);
    // A PNG whose IHDR says 2000 px wide.
    expect(img.bytes.subarray(1, 4).toString()).toBe('PNG');
    expect(img.bytes.readUInt32BE(16)).toBe(2000);
  });
});
