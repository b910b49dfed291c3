import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** `v1=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`, keyed with the secret string as returned at creation. */
export function signatureHeader(secret: string, timestampSeconds: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex')}`;
}

/** What a receiver does (and the docs show): recompute and compare in constant time. */
export function verifySignature(secret: string, timestampSeconds: number, body: string, header: string): boolean {
  const expected = Buffer.from(signatureHeader(secret, timestampSeconds, body));
  const given = Buffer.from(header);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** The headers of one delivery attempt. */
export function deliveryHeaders(
  secret: string,
  eventId: string,
  timestampSeconds: number,
  body: string,
): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': 'Waybill-Webhooks/1',
    'waybill-event-id': eventId,
    'waybill-timestamp': String(timestampSeconds),
    'waybill-signature': signatureHeader(secret, timestampSeconds, body),
  };
}

/** A new endpoint's signing secret: 32 random bytes. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}
