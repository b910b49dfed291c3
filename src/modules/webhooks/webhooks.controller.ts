import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentUser } from '../../common/auth/decorators';
import { Principal } from '../../common/auth/principal';
import { CreateWebhookDto, WebhookOrgParam, WebhookPageQuery, WebhookParam } from './webhooks.schemas';
import { WebhooksService } from './webhooks.service';

@ApiTags('webhooks')
@ApiBearerAuth()
@Controller('orgs/:orgId/webhooks')
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  @Post()
  @ApiOperation({ summary: 'Add a webhook endpoint (OWNER/ADMIN); its signing `secret` is in this answer only' })
  create(@CurrentUser() me: Principal, @Param() p: WebhookOrgParam, @Body() body: CreateWebhookDto) {
    return this.webhooks.create(me, p.orgId, body);
  }

  @Get()
  @ApiOperation({ summary: 'The org’s webhook endpoints, newest first (never their secrets)' })
  list(@CurrentUser() me: Principal, @Param() p: WebhookOrgParam, @Query() q: WebhookPageQuery) {
    return this.webhooks.list(me, p.orgId, q.cursor, q.limit);
  }

  @Delete(':webhookId')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete an endpoint (an unknown or already deleted one is 404)' })
  async remove(@CurrentUser() me: Principal, @Param() p: WebhookParam): Promise<void> {
    await this.webhooks.remove(me, p.orgId, p.webhookId);
  }

  @Get(':webhookId/deliveries')
  @ApiOperation({ summary: 'Delivery attempts to this endpoint, newest first (one item per attempt)' })
  deliveries(@CurrentUser() me: Principal, @Param() p: WebhookParam, @Query() q: WebhookPageQuery) {
    return this.webhooks.deliveries(me, p.orgId, p.webhookId, q.cursor, q.limit);
  }

  @Post(':webhookId/test')
  @HttpCode(202)
  @ApiOperation({
    summary: 'Send a `webhook.test` event to this endpoint (rate-limited per org: WEBHOOK_TEST_RATE_LIMIT_PER_MINUTE)',
  })
  test(@CurrentUser() me: Principal, @Param() p: WebhookParam) {
    return this.webhooks.sendTest(me, p.orgId, p.webhookId);
  }
}
