import { Module } from '@nestjs/common';
import { OrgsModule } from '../orgs/orgs.module';
import { LedgerController, LedgerOrgsController } from './ledger.controller';
import { LedgerRepository } from './ledger.repository';
import { LedgerStatementsService } from './ledger-statements.service';
import { LedgerService } from './ledger.service';
import { PostingBatcher } from './posting-batcher';
import { TripLink } from './trip-link';
import { ExportSlots } from './export-slots';

@Module({
  imports: [OrgsModule],
  controllers: [LedgerOrgsController, LedgerController],
  providers: [LedgerService, LedgerStatementsService, LedgerRepository, PostingBatcher, TripLink, ExportSlots],
  exports: [LedgerService],
})
export class LedgerModule {}
