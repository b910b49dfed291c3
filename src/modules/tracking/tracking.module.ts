import { Module } from '@nestjs/common';
import { TripsModule } from '../trips/trips.module';
import { LatestLocations } from './latest-locations';
import { PingWriter } from './ping-writer';
import { TrackRound } from './track-round';
import { TrackingController } from './tracking.controller';
import { TrackingRepository } from './tracking.repository';
import { TrackerTokenCache } from './tracker-token-cache';
import { TrackingService } from './tracking.service';
import { UnknownTokenLimiter } from './unknown-token-limiter';

@Module({
  imports: [TripsModule],
  controllers: [TrackingController],
  providers: [
    TrackingService,
    TrackingRepository,
    PingWriter,
    LatestLocations,
    TrackRound,
    UnknownTokenLimiter,
    TrackerTokenCache,
  ],
  exports: [PingWriter],
})
export class TrackingModule {}
