import { InjectQueue } from '@nestjs/bull';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Queue } from 'bull';
import { uuidv7 } from 'uuidv7';
import { Principal } from '../../common/auth/principal';
import { NotFoundError, ValidationError } from '../../common/errors/domain-error';
import { Page } from '../../common/pagination/page';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import { webhookDeliveries, webhookDeliverySeconds } from '../../infra/observability/metrics';
import { withTimeout } from '../../infra/observability/with-timeout';
import { OutboxWriter } from '../../infra/outbox/outbox-writer';
import { closeQuietlyAtShutdown, QUEUES } from '../../infra/queue/queue.module';
import { UserRateLimits } from '../../common/rate-limit/user-rate-limits';
import { orgRoom, RealtimePublisher } from '../../infra/realtime/realtime-publisher';
import { ORG_ROLES } from '../orgs/org-roles';
import { OrgsService } from '../orgs/orgs.service';
import { checkWebhookUrl } from './webhook-address';
import { nextRetryAt } from './webhook-backoff';
import { isSuccess, TEST_EVENT_TYPE } from './webhook-events';
import { openSecret, sealSecret } from './webhook-secret-box';
import { resolvesToPublic, sendWebhook } from './webhook-sender';
import { deliveryHeaders, newWebhookSecret } from './webhook-signature';
import { WebhooksRepository } from './webhooks.repository';
import type { CreatedWebhookView, CreateWebhookInput, WebhookAttemptView, WebhookView } from './webhooks.schemas';

export const DELIVER_JOB = 'deliver';
const ENQUEUE_TIMEOUT_MS = 5_000;
const MANAGE_WEBHOOKS = ORG_ROLES.manage;

/** Endpoints, their delivery log, and one delivery attempt (the worker's step). */
@Injectable()
export class WebhooksService {
  private readonly logger = new Logger(WebhooksService.name);

  constructor(
    private readonly repo: WebhooksRepository,
    private readonly orgs: OrgsService,
    private readonly outbox: OutboxWriter,
    private readonly realtime: RealtimePublisher,
    @InjectQueue(QUEUES.webhooks) private readonly queue: Queue,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly limits: UserRateLimits,
  ) {
    closeQuietlyAtShutdown(queue, this.logger);
  }

  async create(principal: Principal, orgId: string, input: CreateWebhookInput): Promise<CreatedWebhookView> {
    await this.orgs.requireRole(principal, orgId, MANAGE_WEBHOOKS);
    const { allowPrivate } = this.config.webhooks;
    const check = checkWebhookUrl(input.url, allowPrivate);
    if (!check.ok) throw new ValidationError([{ path: 'url', message: check.reason }]);
    if (!allowPrivate && !check.literalIp) {
      const resolved = await resolvesToPublic(check.url.hostname);
      if (!resolved.ok) throw new ValidationError([{ path: 'url', message: resolved.error ?? 'refused' }]);
    }
    const secret = newWebhookSecret();
    const view = await this.repo.create({
      orgId,
      url: check.url.toString(),
      description: input.description || null,
      events: input.events,
      secretCiphertext: sealSecret(this.config.webhooks.secretKey, secret),
      createdById: principal.userId,
    });
    return { ...view, secret };
  }

  async list(
    principal: Principal,
    orgId: string,
    cursor: string | undefined,
    limit: number,
  ): Promise<Page<WebhookView>> {
    await this.orgs.requireRole(principal, orgId, MANAGE_WEBHOOKS);
    return this.repo.list(orgId, cursor, limit);
  }

  async remove(principal: Principal, orgId: string, webhookId: string): Promise<void> {
    await this.orgs.requireRole(principal, orgId, MANAGE_WEBHOOKS);
    if (!(await this.repo.softDelete(orgId, webhookId))) throw new NotFoundError('Webhook');
  }

  async deliveries(
    principal: Principal,
    orgId: string,
    webhookId: string,
    cursor: string | undefined,
    limit: number,
  ): Promise<Page<Omit<WebhookAttemptView, 'responseSnippet'> & { responseSnippet: string | null }>> {
    await this.orgs.requireRole(principal, orgId, MANAGE_WEBHOOKS);
    if (!(await this.repo.exists(orgId, webhookId))) throw new NotFoundError('Webhook');
    return this.repo.listAttempts(webhookId, cursor, limit);
  }

  /** Sends a `webhook.test` event to this endpoint alone (whatever it subscribed to). */
  async sendTest(
    principal: Principal,
    orgId: string,
    webhookId: string,
  ): Promise<{ eventId: string; deliveryId: string }> {
    await this.orgs.requireRole(principal, orgId, MANAGE_WEBHOOKS);
    const endpoint = await this.repo.find(orgId, webhookId);
    if (!endpoint) throw new NotFoundError('Webhook');
    // Counted only now: nobody outside the org spends its budget.
    await this.limits.check('webhook-test', orgId);
    const eventId = uuidv7();
    const deliveryId = await this.repo.createDirectDelivery(webhookId, {
      id: eventId,
      type: TEST_EVENT_TYPE,
      orgId,
      createdAt: new Date(),
      data: { webhookId, url: endpoint.url, message: 'A test event sent on request' },
    });
    // The delivery is committed: with Redis down the relay's sweep queues it later.
    await this.enqueue([{ id: deliveryId, nextAttemptAt: new Date() }]).catch((err: Error) =>
      this.logger.warn(`could not queue test delivery ${deliveryId} (the sweep will): ${err.message}`),
    );
    return { eventId, deliveryId };
  }

  /** Queues one job per delivery, due at its next attempt; a job id per schedule, so queueing twice adds one job. */
  async enqueue(deliveries: readonly { id: string; nextAttemptAt: Date }[]): Promise<void> {
    const now = Date.now();
    // Bounded: with Redis away the deliveries stay pending in the database, and the relay's sweep queues them later.
    await withTimeout(
      Promise.all(
        deliveries.map((d) =>
          this.queue.add(
            DELIVER_JOB,
            { deliveryId: d.id },
            { jobId: `${d.id}:${d.nextAttemptAt.getTime()}`, delay: Math.max(0, d.nextAttemptAt.getTime() - now) },
          ),
        ),
      ),
      ENQUEUE_TIMEOUT_MS,
    );
  }

  /**
   * One attempt of one delivery: claim it (a duplicate job finds it taken),
   * POST the signed body, record the attempt, and queue the retry when one
   * is due.
   */
  async deliver(deliveryId: string): Promise<'sent' | 'retry' | 'failed' | 'skipped'> {
    const { timeoutMs, allowPrivate, retryFirstDelayMs, retryWindowMs, disableAfterMs } = this.config.webhooks;
    const d = await this.repo.claim(deliveryId, timeoutMs + 30_000);
    if (!d) return 'skipped';
    if (!d.usable) {
      await this.repo.abandon(d.id);
      return 'skipped';
    }
    const secret = openSecret(this.config.webhooks.secretKey, d.secretCiphertext);
    const ts = Math.floor(Date.now() / 1000);
    const result = await sendWebhook(
      d.url,
      deliveryHeaders(secret, d.eventId, ts, d.body),
      d.body,
      timeoutMs,
      allowPrivate,
    );
    const ok = result.failure === null && isSuccess(result.statusCode ?? undefined);
    const outcome = ok
      ? 'success'
      : result.failure === 'timeout'
        ? 'timeout'
        : result.failure === 'refused'
          ? 'refused'
          : result.failure === 'network'
            ? 'network_error'
            : 'http_error';
    webhookDeliveries.inc({ outcome });
    webhookDeliverySeconds.observe(result.durationMs / 1000);
    const retryAt = ok
      ? null
      : nextRetryAt(
          d.attempt,
          d.createdAt,
          new Date(),
          { firstDelayMs: retryFirstDelayMs, windowMs: retryWindowMs },
          Math.random(),
        );
    const disabled = await this.repo.recordAttempt(
      d,
      {
        ok,
        statusCode: result.statusCode,
        error: ok ? null : (result.error ?? `HTTP ${result.statusCode}`),
        responseSnippet: result.responseSnippet,
        durationMs: result.durationMs,
        nextRetryAt: retryAt,
      },
      disableAfterMs,
      async (tx, endpoint) => {
        const data = { webhookId: endpoint.id, url: endpoint.url, disabledAt: endpoint.disabledAt, reason: 'FAILING' };
        await this.outbox.writeIn(tx, [{ type: 'webhook.disabled', orgId: endpoint.orgId, data }]);
        tx.afterCommit(() =>
          this.realtime.publish(orgRoom(endpoint.orgId), 'webhook.disabled', {
            ...data,
            disabledAt: endpoint.disabledAt.toISOString(),
          }),
        );
      },
    );
    if (disabled) this.logger.warn(`webhook ${d.endpointId} disabled: failing for ${disableAfterMs} ms`);
    if (ok) return 'sent';
    if (!retryAt || disabled) return 'failed';
    await this.enqueue([{ id: d.id, nextAttemptAt: retryAt }]).catch((err: Error) =>
      this.logger.warn(`could not queue the retry of delivery ${d.id} (the sweep will): ${err.message}`),
    );
    return 'retry';
  }
}
