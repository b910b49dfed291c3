import { Module, OnModuleInit } from '@nestjs/common';
import { RoomAuthorizer } from '../../infra/realtime/room-authorizer';
import { OrgsModule } from '../orgs/orgs.module';
import { TripsController } from './trips.controller';
import { TripsRepository } from './trips.repository';
import { TripsService } from './trips.service';

@Module({
  imports: [OrgsModule],
  controllers: [TripsController],
  providers: [TripsService, TripsRepository],
  exports: [TripsService],
})
export class TripsModule implements OnModuleInit {
  constructor(
    private readonly rooms: RoomAuthorizer,
    private readonly trips: TripsService,
  ) {}

  /** `trip:<tripId>` rooms: whoever may read the trip (`GET /trips/:id`): either org's members and its driver. */
  onModuleInit(): void {
    this.rooms.register('trip', async (principal, tripId) => {
      await this.trips.requireVisible(principal, tripId);
    });
  }
}
