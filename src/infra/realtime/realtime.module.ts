import { Global, Module } from '@nestjs/common';
import { OrgsModule } from '../../modules/orgs/orgs.module';
import { TripsModule } from '../../modules/trips/trips.module';
import { RealtimeHub } from './realtime-hub';
import { InProcessRealtimePublisher, RealtimePublisher } from './realtime-publisher';
import { RealtimeGateway } from './realtime.gateway';
import { RoomAuthorizer } from './room-authorizer';
import { RoomLog } from './room-log';

/** The Socket.IO gateway and room authorization (they use the features' services). */
@Module({
  imports: [TripsModule, OrgsModule],
  providers: [RoomAuthorizer, RealtimeGateway],
  exports: [RoomAuthorizer],
})
export class RealtimeGatewayModule {}

/** The `RealtimePublisher` port, bound to the Socket.IO + Redis implementation, for every feature. */
@Global()
@Module({
  imports: [RealtimeGatewayModule],
  providers: [
    InProcessRealtimePublisher,
    RoomLog,
    RealtimeHub,
    { provide: RealtimePublisher, useExisting: RealtimeHub },
  ],
  exports: [RealtimePublisher, InProcessRealtimePublisher, RealtimeHub, RealtimeGatewayModule],
})
export class RealtimeModule {}
