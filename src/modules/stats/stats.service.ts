import { Injectable } from '@nestjs/common';
import { Principal } from '../../common/auth/principal';
import { ORG_ROLES, roleIn } from '../orgs/org-roles';
import { OrgsService } from '../orgs/orgs.service';
import { StatsRepository } from './stats.repository';

export interface OrgStatsView {
  orgId: string;
  tripsByStatus: Record<string, number>;
  pingsToday: number;
  /** What counterparties owe this org, per currency, in minor units (ledger roles only, else null). */
  receivables: Record<string, number> | null;
  /** What this org owes, per currency (ledger roles only, else null). */
  payables: Record<string, number> | null;
  refreshedAt: string | null;
  /** Seconds since the figures were computed. */
  ageSeconds: number | null;
}

function numbers(o: Record<string, number | string>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Number(v)]));
}

@Injectable()
export class StatsService {
  constructor(
    private readonly repo: StatsRepository,
    private readonly orgs: OrgsService,
  ) {}

  async orgStats(principal: Principal, orgId: string): Promise<OrgStatsView> {
    const role = await this.orgs.requireRole(principal, orgId);
    const seesMoney = roleIn(role, ORG_ROLES.ledger);
    const row = await this.repo.findOrgStats(orgId);
    const refreshedAt = row?.refreshedAt ?? (await this.repo.lastRefreshedAt());
    return {
      orgId,
      tripsByStatus: row ? numbers(row.tripsByStatus) : {},
      pingsToday: row ? Number(row.pingsToday) : 0,
      receivables: seesMoney ? numbers(row?.receivables ?? {}) : null,
      payables: seesMoney ? numbers(row?.payables ?? {}) : null,
      refreshedAt: refreshedAt?.toISOString() ?? null,
      ageSeconds: refreshedAt ? Math.max(0, Math.round((Date.now() - refreshedAt.getTime()) / 100) / 10) : null,
    };
  }

  refresh(): Promise<void> {
    return this.repo.refresh();
  }
}
