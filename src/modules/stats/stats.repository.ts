import { Injectable } from '@nestjs/common';
import { Db } from '../../infra/db/db.service';

export interface OrgStatsRow {
  tripsByStatus: Record<string, number>;
  pingsToday: bigint;
  receivables: Record<string, number | string>;
  payables: Record<string, number | string>;
  refreshedAt: Date;
}

@Injectable()
export class StatsRepository {
  constructor(private readonly db: Db) {}

  /** Always from the replica when there is one: dashboards tolerate its lag, and the age is reported. */
  async findOrgStats(orgId: string): Promise<OrgStatsRow | null> {
    const client = this.db.replica ?? this.db.primary;
    const rows = await client.$queryRaw<OrgStatsRow[]>`
      SELECT trips_by_status AS "tripsByStatus", pings_today AS "pingsToday", receivables, payables,
             refreshed_at AS "refreshedAt"
      FROM org_stats WHERE org_id = ${orgId}::uuid`;
    return rows[0] ?? null;
  }

  /** When the view was last refreshed (for an org newer than that refresh). */
  async lastRefreshedAt(): Promise<Date | null> {
    const client = this.db.replica ?? this.db.primary;
    const rows = await client.$queryRaw<{ at: Date | null }[]>`SELECT max(refreshed_at) AS at FROM org_stats`;
    return rows[0]?.at ?? null;
  }

  /** Rebuilds the view without blocking its readers. */
  async refresh(): Promise<void> {
    await this.db.primary.$executeRawUnsafe('REFRESH MATERIALIZED VIEW CONCURRENTLY org_stats');
  }
}
