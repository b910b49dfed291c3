import { Module, OnModuleInit } from '@nestjs/common';
import { RoomAuthorizer } from '../../infra/realtime/room-authorizer';
import { AuthModule } from '../auth/auth.module';
import { ORG_ROLES } from './org-roles';
import { OrgsController } from './orgs.controller';
import { OrgsRepository } from './orgs.repository';
import { OrgsService } from './orgs.service';

@Module({
  imports: [AuthModule],
  controllers: [OrgsController],
  providers: [OrgsService, OrgsRepository],
  exports: [OrgsService],
})
export class OrgsModule implements OnModuleInit {
  constructor(
    private readonly rooms: RoomAuthorizer,
    private readonly orgs: OrgsService,
  ) {}

  /**
   * `org:<orgId>` rooms: the org's members except DRIVERs (they see only their
   * own trips, and the org room carries the status of every trip of the org).
   */
  onModuleInit(): void {
    this.rooms.register('org', async (principal, orgId) => {
      await this.orgs.requireRole(principal, orgId, ORG_ROLES.staff);
    });
  }
}
