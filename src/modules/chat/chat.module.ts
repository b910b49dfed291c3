import { Module, OnModuleInit } from '@nestjs/common';
import { QUEUES, registerQueue } from '../../infra/queue/queue.module';
import { RoomAuthorizer } from '../../infra/realtime/room-authorizer';
import { LedgerModule } from '../ledger/ledger.module';
import { OrgsModule } from '../orgs/orgs.module';
import { TripsModule } from '../trips/trips.module';
import { AttachmentsService } from './attachments.service';
import { AttachmentsController, ChatController } from './chat.controller';
import { ChatProcessor, ChatScheduler } from './chat.processor';
import { ChatRepository } from './chat.repository';
import { ChatService } from './chat.service';

@Module({
  imports: [OrgsModule, TripsModule, LedgerModule, registerQueue(QUEUES.chat)],
  controllers: [ChatController, AttachmentsController],
  providers: [ChatService, AttachmentsService, ChatRepository, ChatProcessor, ChatScheduler],
  exports: [ChatService],
})
export class ChatModule implements OnModuleInit {
  constructor(
    private readonly rooms: RoomAuthorizer,
    private readonly chat: ChatService,
  ) {}

  /**
   * `thread:<threadId>` rooms: the thread's members, as its REST reads decide
   * (404 otherwise). The gateway re-runs this for every room of a user whose
   * access changed, so a removed member leaves the room at once.
   */
  onModuleInit(): void {
    this.rooms.register('thread', async (principal, threadId) => {
      await this.chat.requireMember(principal, threadId);
    });
  }
}
