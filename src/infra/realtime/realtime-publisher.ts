import { Global, Injectable, Module } from '@nestjs/common';
import { EventEmitter } from 'node:events';

/** Room names, in one place: `trip:<id>`, `org:<id>`, `thread:<id>`. */
export const tripRoom = (tripId: string) => `trip:${tripId}`;
export const orgRoom = (orgId: string) => `org:${orgId}`;
export const threadRoom = (threadId: string) => `thread:${threadId}`;

export type RealtimeEventName = 'trip.location' | 'trip.status' | 'trip.event' | 'chat.message' | 'qr.scan';

export interface RealtimeEvent {
  room: string;
  event: RealtimeEventName;
  payload: Record<string, unknown>;
}

/**
 * The port through which features announce room events. Publishing never
 * throws and never blocks the caller's write path: delivery is best effort
 * (clients catch up with `sinceSeq` replay or over REST).
 */
export abstract class RealtimePublisher {
  abstract publish(room: string, event: RealtimeEventName, payload: Record<string, unknown>): void;
}

/** In-process publisher: events go to local listeners (tests observe them with `on`). */
@Injectable()
export class InProcessRealtimePublisher extends RealtimePublisher {
  private readonly emitter = new EventEmitter().setMaxListeners(0);

  publish(room: string, event: RealtimeEventName, payload: Record<string, unknown>): void {
    this.emitter.emit('event', { room, event, payload } satisfies RealtimeEvent);
  }

  on(listener: (e: RealtimeEvent) => void): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }
}

@Global()
@Module({
  providers: [InProcessRealtimePublisher, { provide: RealtimePublisher, useExisting: InProcessRealtimePublisher }],
  exports: [RealtimePublisher, InProcessRealtimePublisher],
})
export class RealtimeModule {}
