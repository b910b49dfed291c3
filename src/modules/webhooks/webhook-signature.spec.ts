import { createHmac } from 'node:crypto';
import { deliveryHeaders, newWebhookSecret, signatureHeader, verifySignature } from './webhook-signature';

describe('webhook signature', () => {
  it('is v1= the hex HMAC-SHA256 of "<ts>.<body>" keyed with the secret string', () => {
    const body = '{"id":"e1"}';
    const expected = createHmac('sha256', 'whsec_abc').update(`1700000000.${body}`).digest('hex');
    expect(signatureHeader('whsec_abc', 1700000000, body)).toBe(`v1=${expected}`);
  });

  it('verifies its own signature and refuses a changed body, time or secret', () => {
    const secret = newWebhookSecret();
    const h = signatureHeader(secret, 10, 'x');
    expect(verifySignature(secret, 10, 'x', h)).toBe(true);
    expect(verifySignature(secret, 10, 'y', h)).toBe(false);
    expect(verifySignature(secret, 11, 'x', h)).toBe(false);
    expect(verifySignature(newWebhookSecret(), 10, 'x', h)).toBe(false);
  });

  it('sends the event id, timestamp and signature headers', () => {
    const h = deliveryHeaders('s', 'evt', 5, 'b');
    expect(h['waybill-event-id']).toBe('evt');
    expect(h['waybill-timestamp']).toBe('5');
    expect(h['waybill-signature']).toBe(signatureHeader('s', 5, 'b'));
    expect(h['content-type']).toBe('application/json');
  });
});
