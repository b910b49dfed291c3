import { Module } from '@nestjs/common';
import { OrgsModule } from '../orgs/orgs.module';
import { LedgerController, LedgerOrgsController } from './ledger.controller';
import { LedgerRepository } from './ledger.repository';
import { LedgerService } from './ledger.service';
import { TripLink } from './trip-link';

@Module({
  imports: [OrgsModule],
  controllers: [LedgerOrgsController, LedgerController],
  providers: [LedgerService, LedgerRepository, TripLink],
  exports: [LedgerService],
})
export class LedgerModule {}
