import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiHeader, ApiProduces, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CurrentUser } from '../../common/auth/decorators';
import { Principal } from '../../common/auth/principal';
import { ValidationError } from '../../common/errors/domain-error';
import { RAW_RESPONSE } from '../../common/http/envelope';
import { emptyBody, notModified } from '../../common/http/etag';
import { Idempotent } from '../../common/idempotency/idempotency.interceptor';
import {
  AccountIdParam,
  AccountsPageQueryDto,
  CreateAccountDto,
  CreateInvoiceDto,
  CreatePaymentDto,
  EntriesQueryDto,
  EntryIdParam,
  LedgerOrgIdParam,
  ReverseDto,
  SideQueryDto,
  StatementQueryDto,
} from './ledger.schemas';
import { LedgerStatementsService } from './ledger-statements.service';
import { LedgerService, PostingResult } from './ledger.service';

/** The client's retry key for a posting: stored with the posting, in its transaction. */
function postingKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const key = Array.isArray(header) ? header[0] : header;
  if (!key || key.length > 255) {
    throw new ValidationError([{ path: 'Idempotency-Key', message: 'must be 1 to 255 characters' }]);
  }
  return key;
}

const PostingKeyHeader = () =>
  ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description:
      'Retry key, recorded in the posting transaction: the same key and body return the first response (Idempotent-Replayed: true), another body is 409',
  });

function reply<T>(res: FastifyReply, result: PostingResult<T>): T {
  if (result.replayed) void res.header('Idempotent-Replayed', 'true');
  return result.body;
}

@ApiTags('ledger')
@ApiBearerAuth()
@Controller('orgs')
export class LedgerOrgsController {
  constructor(private readonly ledger: LedgerService) {}

  @Post(':orgId/accounts')
  @Idempotent()
  createAccount(@CurrentUser() me: Principal, @Param() p: LedgerOrgIdParam, @Body() body: CreateAccountDto) {
    return this.ledger.createAccount(me, p.orgId, body);
  }

  @Get(':orgId/accounts')
  listAccounts(@CurrentUser() me: Principal, @Param() p: LedgerOrgIdParam, @Query() q: AccountsPageQueryDto) {
    return this.ledger.listAccounts(me, p.orgId, q.cursor, q.limit);
  }
}

@ApiTags('ledger')
@ApiBearerAuth()
@ApiQuery({ name: 'asOrgId', required: false, description: 'The side to act as, when you belong to both orgs' })
@Controller('ledger')
export class LedgerController {
  constructor(
    private readonly ledger: LedgerService,
    private readonly statements: LedgerStatementsService,
  ) {}

  @Get('accounts/:accountId')
  getAccount(@CurrentUser() me: Principal, @Param() p: AccountIdParam, @Query() q: SideQueryDto) {
    return this.ledger.getAccount(me, p.accountId, q.asOrgId);
  }

  @Post('accounts/:accountId/invoices')
  @HttpCode(201)
  @PostingKeyHeader()
  async createInvoice(
    @CurrentUser() me: Principal,
    @Param() p: AccountIdParam,
    @Query() q: SideQueryDto,
    @Body() body: CreateInvoiceDto,
    @Headers('idempotency-key') key: string | undefined,
    @Res({ passthrough: true }) res: FastifyReply,
  ) {
    return reply(res, await this.ledger.createInvoice(me, p.accountId, q.asOrgId, body, postingKey(key)));
  }

  @Post('accounts/:accountId/payments')
  @HttpCode(201)
  @PostingKeyHeader()
  async createPayment(
    @CurrentUser() me: Principal,
    @Param() p: AccountIdParam,
    @Query() q: SideQueryDto,
    @Body() body: CreatePaymentDto,
    @Headers('idempotency-key') key: string | undefined,
    @Res({ passthrough: true }) res: FastifyReply,
  ) {
    return reply(res, await this.ledger.createPayment(me, p.accountId, q.asOrgId, body, postingKey(key)));
  }

  @Get('accounts/:accountId/entries')
  entries(@CurrentUser() me: Principal, @Param() p: AccountIdParam, @Query() q: EntriesQueryDto) {
    return this.statements.listEntries(me, p.accountId, q);
  }

  @Get('accounts/:accountId/statement')
  @ApiProduces('application/json', 'text/csv')
  async statement(
    @CurrentUser() me: Principal,
    @Param() p: AccountIdParam,
    @Query() q: StatementQueryDto,
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) res: FastifyReply,
  ) {
    if (q.format === 'json') {
      // A past range: strong ETag, If-None-Match → 304 after reading only the bounds.
      const { etag, statement } = await this.statements.statementIfChanged(
        me,
        p.accountId,
        q,
        req.headers['if-none-match'],
      );
      if (etag !== null && notModified(req, res, etag)) return emptyBody();
      return statement;
    }
    const { head, stream } = await this.statements.statementCsv(me, p.accountId, q);
    void res
      .header('content-type', 'text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="statement-${head.accountId}.csv"`)
      .header('x-opening-balance', String(head.openingBalance))
      .header('x-closing-balance', String(head.closingBalance))
      .header('x-entry-count', String(head.entryCount));
    return Object.assign(stream, { [RAW_RESPONSE]: true });
  }

  @Post('entries/:entryId/reverse')
  @HttpCode(201)
  @PostingKeyHeader()
  async reverse(
    @CurrentUser() me: Principal,
    @Param() p: EntryIdParam,
    @Query() q: SideQueryDto,
    @Body() body: ReverseDto,
    @Headers('idempotency-key') key: string | undefined,
    @Res({ passthrough: true }) res: FastifyReply,
  ) {
    return reply(res, await this.ledger.reverse(me, p.entryId, q.asOrgId, body.reason, postingKey(key)));
  }
}
