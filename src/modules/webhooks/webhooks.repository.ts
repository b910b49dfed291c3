import { Injectable } from '@nestjs/common';
import { uuidv7 } from 'uuidv7';
import { keysetArgs, toPage } from '../../common/pagination/cursor';
import { Page } from '../../common/pagination/page';
import { Db, SqlTx } from '../../infra/db/db.service';
import { eventBody, fanOut, OutboxRow } from './webhook-events';
import type { WebhookAttemptView, WebhookView } from './webhooks.schemas';

const endpointSelect = {
  id: true,
  orgId: true,
  url: true,
  description: true,
  events: true,
  enabled: true,
  disabledAt: true,
  failingSince: true,
  createdAt: true,
} as const;

const attemptSelect = {
  id: true,
  eventId: true,
  eventType: true,
  attempt: true,
  statusCode: true,
  error: true,
  durationMs: true,
  createdAt: true,
  nextRetryAt: true,
  responseSnippet: true,
} as const;

/** A delivery claimed by a worker for one attempt. */
export interface ClaimedDelivery {
  id: string;
  endpointId: string;
  orgId: string;
  eventId: string;
  eventType: string;
  body: string;
  attempt: number;
  createdAt: Date;
  url: string;
  secretCiphertext: string;
  usable: boolean;
}

/** What one attempt produced, to be recorded. */
export interface AttemptOutcome {
  ok: boolean;
  statusCode: number | null;
  error: string | null;
  responseSnippet: string | null;
  durationMs: number;
  /** null: no retry (success, or the window is over). */
  nextRetryAt: Date | null;
}

@Injectable()
export class WebhooksRepository {
  constructor(private readonly db: Db) {}

  async create(data: {
    orgId: string;
    url: string;
    description: string | null;
    events: string[];
    secretCiphertext: string;
    createdById: string;
  }): Promise<WebhookView> {
    return this.db.write.webhookEndpoint.create({ data, select: endpointSelect });
  }

  async list(orgId: string, cursor: string | undefined, limit: number): Promise<Page<WebhookView>> {
    const k = keysetArgs(cursor);
    const rows = await this.db.read.webhookEndpoint.findMany({
      where: { orgId, deletedAt: null, ...k.where },
      orderBy: k.orderBy,
      take: limit + 1,
      select: endpointSelect,
    });
    return toPage(rows, limit);
  }

  async find(orgId: string, id: string): Promise<(WebhookView & { secretCiphertext: string }) | null> {
    return this.db.primary.webhookEndpoint.findFirst({
      where: { id, orgId, deletedAt: null },
      select: { ...endpointSelect, secretCiphertext: true },
    });
  }

  /** Marks the endpoint deleted; false when it is unknown or already deleted. */
  async softDelete(orgId: string, id: string): Promise<boolean> {
    const r = await this.db.write.webhookEndpoint.updateMany({
      where: { id, orgId, deletedAt: null },
      data: { deletedAt: new Date(), enabled: false },
    });
    return r.count === 1;
  }

  /** Whether the endpoint exists in the org (deleted ones too: their log stays readable until then). */
  async exists(orgId: string, id: string): Promise<boolean> {
    const row = await this.db.read.webhookEndpoint.findFirst({
      where: { id, orgId, deletedAt: null },
      select: { id: true },
    });
    return row !== null;
  }

  async listAttempts(endpointId: string, cursor: string | undefined, limit: number): Promise<Page<WebhookAttemptView>> {
    const k = keysetArgs(cursor);
    const rows = await this.db.read.webhookAttempt.findMany({
      where: { endpointId, ...k.where },
      orderBy: k.orderBy,
      take: limit + 1,
      select: attemptSelect,
    });
    return toPage(rows, limit);
  }

  /** A delivery of one event to one endpoint outside the outbox (the test event). */
  async createDirectDelivery(endpointId: string, row: OutboxRow): Promise<string> {
    const id = uuidv7();
    await this.db.write.webhookDelivery.create({
      data: { id, endpointId, eventId: row.id, eventType: row.type, body: eventBody(row) },
    });
    return id;
  }

  /**
   * The relay's step: takes up to `limit` unpublished outbox rows (rows
   * another relay holds are skipped, so nodes never wait on each other),
   * creates one delivery per subscribed enabled endpoint of each row's org,
   * and marks the rows published, all in one transaction. Returns the new
   * deliveries (to be queued) and how many rows were taken.
   */
  async relayBatch(limit: number): Promise<{ taken: number; deliveries: { id: string; nextAttemptAt: Date }[] }> {
    return this.db.sqlTransaction(async (tx) => {
      const rows = (
        await tx.query<{ id: string; type: string; org_id: string; data: unknown; created_at: Date }>(
          `SELECT id::text, type, org_id::text, data, created_at FROM outbox_events
           WHERE published_at IS NULL ORDER BY published_at, created_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
          [limit],
        )
      ).map((r) => ({ id: r.id, type: r.type, orgId: r.org_id, data: r.data, createdAt: r.created_at }));
      if (rows.length === 0) return { taken: 0, deliveries: [] };
      const endpoints = await tx.query<{ id: string; org_id: string; events: string[] }>(
        `SELECT id::text, org_id::text, events FROM webhook_endpoints
         WHERE org_id = ANY($1::uuid[]) AND enabled AND deleted_at IS NULL`,
        [[...new Set(rows.map((r) => r.orgId))]],
      );
      const planned = fanOut(
        rows,
        endpoints.map((e) => ({ id: e.id, orgId: e.org_id, events: e.events })),
      );
      const deliveries = planned.length ? await this.insertDeliveries(tx, planned) : [];
      await tx.query(`UPDATE outbox_events SET published_at = now() WHERE id = ANY($1::uuid[])`, [
        rows.map((r) => r.id),
      ]);
      return { taken: rows.length, deliveries };
    });
  }

  private async insertDeliveries(
    tx: SqlTx,
    planned: { row: OutboxRow; endpointId: string }[],
  ): Promise<{ id: string; nextAttemptAt: Date }[]> {
    const rows = await tx.query<{ id: string; next_attempt_at: Date }>(
      `INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, body)
       SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[])
       ON CONFLICT (event_id, endpoint_id) DO NOTHING
       RETURNING id::text, next_attempt_at`,
      [
        planned.map(() => uuidv7()),
        planned.map((p) => p.endpointId),
        planned.map((p) => p.row.id),
        planned.map((p) => p.row.type),
        planned.map((p) => eventBody(p.row)),
      ],
    );
    return rows.map((r) => ({ id: r.id, nextAttemptAt: r.next_attempt_at }));
  }

  /** Pending deliveries due for a while that no worker holds: their job was lost (a crash between commit and queueing). */
  async staleDeliveries(olderThanMs: number, limit: number): Promise<{ id: string; nextAttemptAt: Date }[]> {
    const rows = await this.db.sql<{ id: string; next_attempt_at: Date }>(
      `SELECT id::text, next_attempt_at FROM webhook_deliveries
       WHERE status = 'PENDING' AND next_attempt_at < now() - $1 * interval '1 millisecond'
         AND (locked_until IS NULL OR locked_until < now())
       ORDER BY next_attempt_at LIMIT $2`,
      [olderThanMs, limit],
    );
    return rows.map((r) => ({ id: r.id, nextAttemptAt: r.next_attempt_at }));
  }

  /**
   * Claims a due pending delivery for one attempt (`holdMs`): a duplicate job,
   * or one that comes while another worker holds it, gets null.
   */
  async claim(deliveryId: string, holdMs: number): Promise<ClaimedDelivery | null> {
    const [row] = await this.db.sql<{
      id: string;
      endpoint_id: string;
      org_id: string;
      event_id: string;
      event_type: string;
      body: string;
      attempts: number;
      created_at: Date;
      url: string;
      secret_ciphertext: string;
      usable: boolean;
    }>(
      `UPDATE webhook_deliveries d
       SET locked_until = now() + $2 * interval '1 millisecond', attempts = d.attempts + 1
       FROM webhook_endpoints e
       WHERE d.id = $1::uuid AND e.id = d.endpoint_id AND d.status = 'PENDING'
         AND d.next_attempt_at <= now() + interval '2 seconds'
         AND (d.locked_until IS NULL OR d.locked_until < now())
       RETURNING d.id::text, d.endpoint_id::text, e.org_id::text, d.event_id::text, d.event_type, d.body, d.attempts,
                 d.created_at, e.url, e.secret_ciphertext, (e.enabled AND e.deleted_at IS NULL) AS usable`,
      [deliveryId, holdMs],
    );
    if (!row) return null;
    return {
      id: row.id,
      endpointId: row.endpoint_id,
      orgId: row.org_id,
      eventId: row.event_id,
      eventType: row.event_type,
      body: row.body,
      attempt: row.attempts,
      createdAt: row.created_at,
      url: row.url,
      secretCiphertext: row.secret_ciphertext,
      usable: row.usable,
    };
  }

  /** A claimed delivery whose endpoint was deleted or disabled: it ends, no attempt made. */
  async abandon(deliveryId: string): Promise<void> {
    await this.db.sql(
      `UPDATE webhook_deliveries SET status = 'FAILED', locked_until = NULL, attempts = attempts - 1 WHERE id = $1::uuid`,
      [deliveryId],
    );
  }

  /**
   * Records one attempt and its effect in one transaction: the attempt row, the
   * delivery's state, and the endpoint's failure streak. An endpoint failing
   * without a success for `disableAfterMs` is disabled here; `onDisabled`
   * runs inside the transaction (to write the `webhook.disabled` event).
   * Returns whether this attempt disabled the endpoint.
   */
  async recordAttempt(
    d: ClaimedDelivery,
    outcome: AttemptOutcome,
    disableAfterMs: number,
    onDisabled: (tx: SqlTx, endpoint: { id: string; orgId: string; url: string; disabledAt: Date }) => Promise<void>,
  ): Promise<boolean> {
    return this.db.sqlTransaction(async (tx) => {
      await tx.query(
        `INSERT INTO webhook_attempts (id, delivery_id, endpoint_id, event_id, event_type, attempt, status_code, error,
                                       response_snippet, duration_ms, next_retry_at)
         VALUES ($1::uuid, $2::uuid, $3::uuid, $4::uuid, $5, $6, $7, $8, $9, $10, $11)`,
        [
          uuidv7(),
          d.id,
          d.endpointId,
          d.eventId,
          d.eventType,
          d.attempt,
          outcome.statusCode,
          outcome.error,
          outcome.responseSnippet,
          outcome.durationMs,
          outcome.nextRetryAt,
        ],
      );
      const status = outcome.ok ? 'SUCCEEDED' : outcome.nextRetryAt ? 'PENDING' : 'FAILED';
      await tx.query(
        `UPDATE webhook_deliveries SET status = $2::webhook_delivery_status, locked_until = NULL,
           next_attempt_at = coalesce($3::timestamptz, next_attempt_at)
         WHERE id = $1::uuid`,
        [d.id, status, outcome.nextRetryAt],
      );
      if (outcome.ok) {
        await tx.query(
          `UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1::uuid AND failing_since IS NOT NULL`,
          [d.endpointId],
        );
        return false;
      }
      await tx.query(
        `UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, now()) WHERE id = $1::uuid`,
        [d.endpointId],
      );
      const [disabled] = await tx.query<{ id: string; org_id: string; url: string; disabled_at: Date }>(
        `UPDATE webhook_endpoints SET enabled = false, disabled_at = now()
         WHERE id = $1::uuid AND enabled AND failing_since <= now() - $2 * interval '1 millisecond'
         RETURNING id::text, org_id::text, url, disabled_at`,
        [d.endpointId, disableAfterMs],
      );
      if (!disabled) return false;
      // A disabled endpoint gets nothing more: its pending deliveries (this one included) end here.
      await tx.query(
        `UPDATE webhook_deliveries SET status = 'FAILED', locked_until = NULL
         WHERE endpoint_id = $1::uuid AND status = 'PENDING'`,
        [d.endpointId],
      );
      await onDisabled(tx, {
        id: disabled.id,
        orgId: disabled.org_id,
        url: disabled.url,
        disabledAt: disabled.disabled_at,
      });
      return true;
    });
  }
}
