import { EventEmitter } from 'node:events';
import { Injectable } from '@nestjs/common';

/**
 * The room kinds the contract names (API.md, "Realtime"). Which user may read
 * which room is decided by the feature that owns the kind, registered with
 * `RoomAuthorizer.register`.
 */
export const ROOM_KINDS = ['trip', 'org', 'thread'] as const;

/** Room names, in one place: `trip:<id>`, `org:<id>`, `thread:<id>`. */
export const tripRoom = (tripId: string) => `trip:${tripId}`;
export const orgRoom = (orgId: string) => `org:${orgId}`;
export const threadRoom = (threadId: string) => `thread:${threadId}`;

export type RealtimeEventName = 'trip.location' | 'trip.status' | 'trip.event' | 'chat.message' | 'qr.scan' | 'webhook.disabled';

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

  /**
   * The user's access changed (removed from an org, another role): every node
   * re-checks that user's subscriptions now instead of at the next periodic check.
   */
  accessChanged(_userId: string): void {}
}

/**
 * An in-process tap on everything features publish, as published (before
 * coalescing and sequencing). The Socket.IO publisher (`RealtimeHub`) feeds
 * it; tests observe it with `on`.
 */
@Injectable()
export class InProcessRealtimePublisher extends RealtimePublisher {
  private readonly emitter = new EventEmitter().setMaxListeners(0);

  publish(room: string, event: RealtimeEventName, payload: Record<string, unknown>): void {
    if (this.emitter.listenerCount('event') === 0) return;
    this.emitter.emit('event', { room, event, payload } satisfies RealtimeEvent);
  }

  on(listener: (e: RealtimeEvent) => void): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }
}
