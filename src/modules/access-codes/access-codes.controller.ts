import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentUser, Public } from '../../common/auth/decorators';
import { Principal } from '../../common/auth/principal';
import {
  AccessCodeOrgParam,
  AccessCodePageQuery,
  AccessCodeParam,
  CodeLoginDto,
  CodeLogoutDto,
  CreateAccessCodeDto,
} from './access-codes.schemas';
import { AccessCodesService } from './access-codes.service';

@ApiTags('access-codes')
@Controller()
export class AccessCodesController {
  constructor(private readonly codes: AccessCodesService) {}

  @ApiBearerAuth()
  @Post('orgs/:orgId/access-codes')
  @ApiOperation({ summary: 'Issue a bulk access code (OWNER/ADMIN); the secret `code` is in this answer only' })
  create(@CurrentUser() me: Principal, @Param() p: AccessCodeOrgParam, @Body() body: CreateAccessCodeDto) {
    return this.codes.create(me, p.orgId, body);
  }

  @ApiBearerAuth()
  @Get('orgs/:orgId/access-codes')
  list(@CurrentUser() me: Principal, @Param() p: AccessCodeOrgParam, @Query() q: AccessCodePageQuery) {
    return this.codes.list(me, p.orgId, q.cursor, q.limit);
  }

  @ApiBearerAuth()
  @Post('orgs/:orgId/access-codes/:codeId/disable')
  @HttpCode(200)
  @ApiOperation({ summary: 'Disable a code: its sessions end at once on every node (again: 200, nothing changes)' })
  disable(@CurrentUser() me: Principal, @Param() p: AccessCodeParam) {
    return this.codes.disable(me, p.orgId, p.codeId);
  }

  @Public()
  @Post('auth/code-login')
  @ApiOperation({
    summary: 'Log in with an access code',
    description:
      'The session is a member of the code’s org with the code’s role; 401 INVALID_CODE, 410 CODE_EXPIRED or ' +
      'CODE_DISABLED, 409 CODE_CAPACITY_REACHED when every seat is taken.',
  })
  login(@Body() body: CodeLoginDto) {
    return this.codes.login(body);
  }

  @Public()
  @Post('auth/code-logout')
  @HttpCode(204)
  @ApiOperation({ summary: 'End a code session and free its seat (idempotent: a second call frees nothing)' })
  async logout(@Body() body: CodeLogoutDto): Promise<void> {
    await this.codes.logout(body.refreshToken);
  }
}
