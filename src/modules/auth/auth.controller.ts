import { Body, Controller, Get, HttpCode, Post } from '@nestjs/common';
import { RouteSchema } from '@nestjs/platform-fastify';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentUser, Public } from '../../common/auth/decorators';
import { Principal } from '../../common/auth/principal';
import { enveloped } from '../../common/http/envelope';
import { LoginDto, RefreshDto, RegisterDto } from './auth.schemas';
import { AuthService } from './auth.service';

/** GET /me's answer ({user: UserView, memberships}), written by a serializer compiled from this schema. */
const ME = enveloped({
  type: 'object',
  properties: {
    user: {
      type: 'object',
      properties: {
        id: { type: 'string' },
        phone: { type: ['string', 'null'] },
        name: { type: 'string' },
        createdAt: { type: 'string', format: 'date-time' },
      },
      required: ['id', 'phone', 'name', 'createdAt'],
      additionalProperties: false,
    },
    memberships: {
      type: 'array',
      items: {
        type: 'object',
        properties: { orgId: { type: 'string' }, role: { type: 'string' }, orgName: { type: 'string' } },
        required: ['orgId', 'role', 'orgName'],
        additionalProperties: false,
      },
    },
  },
  required: ['user', 'memberships'],
  additionalProperties: false,
});

@ApiTags('auth')
@Controller()
export class AuthController {
  constructor(private readonly auth: AuthService) {}

  @Public()
  @Post('auth/register')
  register(@Body() body: RegisterDto) {
    return this.auth.register(body);
  }

  @Public()
  @Post('auth/login')
  @HttpCode(200)
  login(@Body() body: LoginDto) {
    return this.auth.login(body);
  }

  @Public()
  @Post('auth/refresh')
  @HttpCode(200)
  refresh(@Body() body: RefreshDto) {
    return this.auth.refresh(body.refreshToken);
  }

  @Public()
  @Post('auth/logout')
  @HttpCode(204)
  @ApiOperation({
    summary: 'End the session of this refresh token (idempotent)',
    description:
      '503 DEPENDENCY_UNAVAILABLE when the session was ended in the database but could not yet be announced to every ' +
      'node (Redis down): the refresh token is already refused; retry the logout until it answers 204.',
  })
  async logout(@Body() body: RefreshDto): Promise<void> {
    await this.auth.logout(body.refreshToken);
  }

  @ApiBearerAuth()
  @Get('me')
  @RouteSchema({ response: { 200: ME } })
  me(@CurrentUser() principal: Principal) {
    return this.auth.me(principal);
  }
}
