import { Global, Module } from '@nestjs/common';
import { RealtimeHub } from './realtime-hub';
import { InProcessRealtimePublisher, RealtimePublisher } from './realtime-publisher';
import { RealtimeGateway } from './realtime.gateway';
import { RoomAuthorizer } from './room-authorizer';
import { RoomLog } from './room-log';

/**
 * The `RealtimePublisher` port, bound to the Socket.IO + Redis implementation,
 * and the `RoomAuthorizer` registry, for every feature. The gateway knows no
 * feature: the features register the room kinds they own with the authorizer.
 */
@Global()
@Module({
  providers: [
    InProcessRealtimePublisher,
    RoomLog,
    RealtimeHub,
    { provide: RealtimePublisher, useExisting: RealtimeHub },
    RoomAuthorizer,
    RealtimeGateway,
  ],
  exports: [RealtimePublisher, InProcessRealtimePublisher, RealtimeHub, RoomAuthorizer],
})
export class RealtimeModule {}
