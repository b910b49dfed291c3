import { Controller, Get, Param } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { CurrentUser } from '../../common/auth/decorators';
import { Principal } from '../../common/auth/principal';
import { LedgerOrgIdParam } from '../ledger/ledger.schemas';
import { StatsService } from './stats.service';

@ApiTags('stats')
@ApiBearerAuth()
@Controller('orgs')
export class StatsController {
  constructor(private readonly stats: StatsService) {}

  /** Precomputed figures (a materialized view) from the replica; `ageSeconds` says how old. */
  @Get(':orgId/stats')
  get(@CurrentUser() me: Principal, @Param() p: LedgerOrgIdParam) {
    return this.stats.orgStats(me, p.orgId);
  }
}
