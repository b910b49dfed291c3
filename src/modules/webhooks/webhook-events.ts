/** The event types an endpoint may subscribe to. */
export const WEBHOOK_EVENT_TYPES = [
  'trip.status',
  'trip.arrived',
  'ledger.invoice',
  'ledger.payment',
  'qr.scan',
  'access_code.login',
  'webhook.disabled',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** Sent by `POST .../test` to one endpoint, whatever it subscribed to. */
export const TEST_EVENT_TYPE = 'webhook.test';

/** An outbox row as the relay reads it. */
export interface OutboxRow {
  id: string;
  type: string;
  orgId: string;
  data: unknown;
  createdAt: Date;
}

/** An endpoint as the fan-out sees it. */
export interface FanoutEndpoint {
  id: string;
  orgId: string;
  events: readonly string[];
}

/** The body of every attempt of one event to one org: `{id, type, createdAt, orgId, data}`. */
export function eventBody(row: OutboxRow): string {
  return JSON.stringify({
    id: row.id,
    type: row.type,
    createdAt: row.createdAt.toISOString(),
    orgId: row.orgId,
    data: row.data,
  });
}

/**
 * The fan-out: each outbox row (already one per receiving org) goes to every
 * given (enabled) endpoint of that org subscribed to its type.
 */
export function fanOut(
  rows: readonly OutboxRow[],
  endpoints: readonly FanoutEndpoint[],
): { row: OutboxRow; endpointId: string }[] {
  const byOrg = new Map<string, FanoutEndpoint[]>();
  for (const e of endpoints) byOrg.set(e.orgId, [...(byOrg.get(e.orgId) ?? []), e]);
  const out: { row: OutboxRow; endpointId: string }[] = [];
  for (const row of rows) {
    for (const e of byOrg.get(row.orgId) ?? []) if (e.events.includes(row.type)) out.push({ row, endpointId: e.id });
  }
  return out;
}

/** The attempt's outcome from an HTTP status (undefined: no answer). */
export function isSuccess(statusCode: number | undefined): boolean {
  return statusCode !== undefined && statusCode >= 200 && statusCode < 300;
}
