import { Module } from '@nestjs/common';
import { QUEUES, registerQueue } from '../../infra/queue/queue.module';
import { OrgsModule } from '../orgs/orgs.module';
import { TripsModule } from '../trips/trips.module';
import { QrController, QrPublicController } from './qr.controller';
import { QrPngRenderer } from './qr-png-renderer';
import { QrProcessor } from './qr.processor';
import { QrRepository } from './qr.repository';
import { QrService } from './qr.service';

@Module({
  imports: [OrgsModule, TripsModule, registerQueue(QUEUES.qr)],
  controllers: [QrController, QrPublicController],
  providers: [QrService, QrRepository, QrProcessor, QrPngRenderer],
  exports: [QrService],
})
export class QrModule {}
