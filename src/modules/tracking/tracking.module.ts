import { Module } from '@nestjs/common';
import { TripsModule } from '../trips/trips.module';
import { PingWriter } from './ping-writer';
import { TrackingController } from './tracking.controller';
import { TrackingRepository } from './tracking.repository';
import { TrackingService } from './tracking.service';

@Module({
  imports: [TripsModule],
  controllers: [TrackingController],
  providers: [TrackingService, TrackingRepository, PingWriter],
  exports: [PingWriter],
})
export class TrackingModule {}
