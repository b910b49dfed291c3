import { Inject, Logger, OnApplicationShutdown } from '@nestjs/common';
import { OnGatewayConnection, OnGatewayDisconnect, OnGatewayInit, WebSocketGateway } from '@nestjs/websockets';
import type { Server, Socket } from 'socket.io';
import { AccessTokenService } from '../../common/auth/access-token.service';
import { Principal } from '../../common/auth/principal';
import { SessionRevocations } from '../../common/auth/session-revocations';
import { DomainError, UnauthenticatedError } from '../../common/errors/domain-error';
import { ErrorCode } from '../../common/errors/error-codes';
import { errorEnvelopeOf } from '../../common/errors/error-response';
import { parseWith } from '../../common/validation/zod';
import { APP_CONFIG, AppConfig } from '../config/config';
import {
  wsConnectRefused,
  wsConnections,
  wsRoomSubscriptions,
  wsSlowConsumerDisconnects,
} from '../observability/metrics';
import { RealtimeHub } from './realtime-hub';
import { Ack, authSchema, subscribeSchema, unsubscribeSchema } from './realtime.schemas';
import { RoomAuthorizer, RoomKind } from './room-authorizer';

/** What the gateway keeps on each socket. */
interface SocketState {
  principal: Principal;
  /** Access token expiry, epoch ms. */
  expiresAt: number;
  expiryTimer?: NodeJS.Timeout;
  /** Rooms this socket subscribed to, with their kind (for metrics and re-authorization). */
  rooms: Map<string, RoomKind>;
  /** Subscribes received in the current one-second window, and when it started (epoch ms). */
  subscribeWindow?: { startedAt: number; count: number };
}

const stateOf = (socket: Socket): SocketState => socket.data as SocketState;

/** How often sockets are checked for events piling up unsent. */
const SLOW_CONSUMER_CHECK_MS = 1000;

/** The same envelope as HTTP: a client-caused database error is its 4xx here too. */
function errorBody(err: unknown): { code: string; message: string; details?: unknown[] } {
  if (err instanceof DomainError)
    return { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) };
  const { code, message, details } = errorEnvelopeOf(err).body.error;
  return { code, message, ...(details ? { details } : {}) };
}

/**
 * Socket.IO at `/socket.io`, default namespace (API.md, "Realtime"). The
 * handshake carries `auth: {token}`; a missing, bad, expired or revoked token
 * is refused with `connect_error` whose `data` is `{code, message}`. Clients
 * then `subscribe {room, sinceSeq?}` / `unsubscribe {room}`, and renew their
 * token on the open socket with `auth {token}` before it expires (else the
 * server emits `auth.expired` and disconnects them at expiry).
 */
@WebSocketGateway()
export class RealtimeGateway implements OnGatewayInit, OnGatewayConnection, OnGatewayDisconnect, OnApplicationShutdown {
  private readonly logger = new Logger('RealtimeGateway');
  private server: Server | null = null;
  private reauthorizeTimer: NodeJS.Timeout | null = null;
  private slowConsumerTimer: NodeJS.Timeout | null = null;
  private reauthorizing = false;
  /** This node's sockets by the session (refresh-token family) their access token belongs to. */
  private readonly bySession = new Map<string, Set<Socket>>();

  constructor(
    private readonly hub: RealtimeHub,
    private readonly authorizer: RoomAuthorizer,
    private readonly tokens: AccessTokenService,
    private readonly revocations: SessionRevocations,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  afterInit(server: Server): void {
    this.server = server;
    this.hub.attach(server);
    this.hub.onAccessChanged((userId) => void this.reauthorize((p) => p.userId === userId));
    // A logout (or a reused refresh token) on any node: that session's sockets here close at once.
    this.revocations.onRevoked((sessionId) => this.endSession(sessionId));
    server.use((socket, next) => {
      this.authenticate(socket).then(
        () => next(),
        (err: unknown) => {
          const body = errorBody(err);
          wsConnectRefused.inc({ code: body.code });
          next(Object.assign(new Error(body.message), { data: body }));
        },
      );
    });
    // Access can be lost while subscribed (removed from an org): rooms are re-checked periodically.
    this.reauthorizeTimer = setInterval(() => void this.reauthorize(), this.config.realtimeReauthorizeMs);
    this.reauthorizeTimer.unref();
    this.slowConsumerTimer = setInterval(() => this.dropSlowConsumers(), SLOW_CONSUMER_CHECK_MS);
    this.slowConsumerTimer.unref();
  }

  handleConnection(socket: Socket): void {
    wsConnections.inc();
    this.track(socket);
    this.scheduleExpiry(socket);
    this.on(socket, 'subscribe', (payload) => this.subscribe(socket, payload));
    this.on(socket, 'unsubscribe', (payload) => this.unsubscribe(socket, payload));
    this.on(socket, 'auth', (payload) => this.reauthenticate(socket, payload));
  }

  handleDisconnect(socket: Socket): void {
    wsConnections.dec();
    const state = stateOf(socket);
    this.untrack(socket);
    if (state.expiryTimer) clearTimeout(state.expiryTimer);
    for (const kind of state.rooms?.values() ?? []) wsRoomSubscriptions.dec({ kind });
    state.rooms?.clear();
  }

  onApplicationShutdown(): void {
    if (this.reauthorizeTimer) clearInterval(this.reauthorizeTimer);
    if (this.slowConsumerTimer) clearInterval(this.slowConsumerTimer);
  }

  /**
   * A client that stops reading (a phone gone to sleep with its connection
   * open, a link slower than its rooms) would make this node hold every event
   * of its rooms for it until the heartbeat notices, or forever if it still
   * answers pings. Events waiting to be sent to a socket sit in its
   * connection's write buffer (the transport takes the next batch only when
   * the last one is written out); past `REALTIME_MAX_BUFFERED_EVENTS` the
   * connection is closed and the buffer dropped. The client sees a transport
   * close, reconnects and resubscribes with `sinceSeq` to be replayed what it
   * missed (docs/realtime.md). One pass over this node's sockets a second,
   * off the broadcast path.
   */
  private dropSlowConsumers(): void {
    if (!this.server) return;
    const limit = this.config.realtimeMaxBufferedEvents;
    let closed = 0;
    for (const socket of this.server.of('/').sockets.values()) {
      // engine.io's socket: its write buffer is not in its typings.
      const conn = socket.conn as unknown as { writeBuffer: unknown[]; close(discard: boolean): void };
      if (conn.writeBuffer.length <= limit) continue;
      conn.close(true);
      closed += 1;
    }
    if (!closed) return;
    wsSlowConsumerDisconnects.inc(closed);
    // One line per pass, however many sockets it closed.
    this.logger.warn(`closed ${closed} socket(s) with more than ${limit} events waiting to be sent`);
  }

  private async authenticate(socket: Socket): Promise<void> {
    const token: unknown = (socket.handshake.auth as Record<string, unknown> | undefined)?.token;
    if (typeof token !== 'string' || !token)
      throw new UnauthenticatedError(ErrorCode.UNAUTHENTICATED, 'auth.token is required in the handshake');
    const { principal, expiresAt } = this.tokens.verifyWithExpiry(token);
    if (await this.revocations.isRevoked(principal.sessionId))
      throw new UnauthenticatedError(ErrorCode.INVALID_TOKEN, 'This session has ended');
    const state: SocketState = { principal, expiresAt, rooms: new Map() };
    Object.assign(socket.data as object, state);
  }

  /** Registers a client → server message with an acknowledgement: always answered, never thrown. */
  private on(socket: Socket, event: string, handler: (payload: unknown) => Promise<Ack>): void {
    socket.on(event, (...args: unknown[]) => {
      const ack = typeof args[args.length - 1] === 'function' ? (args.pop() as (a: Ack) => void) : null;
      Promise.resolve(args[0])
        .then(handler)
        .then(
          (result) => result,
          (err: unknown): Ack => {
            if (errorEnvelopeOf(err).unexpected)
              this.logger.error(`${event} failed: ${(err as Error).stack ?? String(err)}`);
            return { ok: false, error: errorBody(err) };
          },
        )
        .then((result) => {
          if (ack) ack(result);
          else if (!result.ok) socket.emit('rt.error', { request: event, error: result.error });
        });
    });
  }

  /**
   * A subscribe costs an authorization query (and a replay read with
   * `sinceSeq`), and every room held costs the node a delivery per event:
   * each socket may send at most `REALTIME_SUBSCRIBES_PER_SECOND` subscribes
   * a second and hold at most `REALTIME_MAX_ROOMS_PER_SOCKET` rooms. Beyond
   * either, the subscribe is refused with RATE_LIMITED (nothing else changes).
   */
  private checkSubscribeLimits(state: SocketState, room: string): void {
    const now = Date.now();
    const w = state.subscribeWindow;
    if (!w || now - w.startedAt >= 1000) state.subscribeWindow = { startedAt: now, count: 1 };
    else if (++w.count > this.config.realtimeSubscribesPerSecond) {
      throw new DomainError(
        ErrorCode.RATE_LIMITED,
        `At most ${this.config.realtimeSubscribesPerSecond} subscribes a second per connection`,
        [{ message: 'too many subscribes', retryAfterMs: Math.max(1, w.startedAt + 1000 - now) }],
      );
    }
    this.checkRoomCount(state, room);
  }

  private checkRoomCount(state: SocketState, room: string): void {
    const max = this.config.realtimeMaxRoomsPerSocket;
    if (state.rooms.has(room) || state.rooms.size < max) return;
    throw new DomainError(ErrorCode.RATE_LIMITED, `At most ${max} rooms per connection; unsubscribe from one first`, [
      { path: 'room', message: 'too many rooms', limit: max },
    ]);
  }

  private async subscribe(socket: Socket, payload: unknown): Promise<Ack> {
    const { room, sinceSeq } = parseWith(subscribeSchema, payload);
    const state = stateOf(socket);
    this.checkSubscribeLimits(state, room);
    const kind = await this.authorizer.authorize(state.principal, room);
    if (!socket.connected) return { ok: false, error: { code: ErrorCode.UNAUTHENTICATED, message: 'disconnected' } };
    // Again after the await: concurrent subscribes of one socket all passed the first check.
    this.checkRoomCount(state, room);
    if (!state.rooms.has(room)) {
      state.rooms.set(room, kind);
      wsRoomSubscriptions.inc({ kind });
    }
    if (sinceSeq === undefined) {
      void socket.join(room);
      return { ok: true };
    }
    // A replay restarts delivery of this room to the socket from sinceSeq.
    void socket.leave(room);
    const outcome = await this.hub.joinWithReplay(socket, room, sinceSeq);
    return {
      ok: true,
      replayed: outcome.replayed,
      lastSeq: outcome.lastSeq,
      ...(outcome.truncated ? { truncated: true } : {}),
    };
  }

  private async unsubscribe(socket: Socket, payload: unknown): Promise<Ack> {
    const { room } = parseWith(unsubscribeSchema, payload);
    this.leave(socket, room);
    return { ok: true };
  }

  /** A fresh access token on the open socket moves its expiry; it must be the same user's. */
  private async reauthenticate(socket: Socket, payload: unknown): Promise<Ack> {
    const { token } = parseWith(authSchema, payload);
    const { principal, expiresAt } = this.tokens.verifyWithExpiry(token);
    const state = stateOf(socket);
    if (principal.userId !== state.principal.userId)
      throw new DomainError(ErrorCode.FORBIDDEN, 'The token belongs to another user');
    if (await this.revocations.isRevoked(principal.sessionId))
      throw new UnauthenticatedError(ErrorCode.INVALID_TOKEN, 'This session has ended');
    this.untrack(socket);
    state.principal = principal;
    state.expiresAt = expiresAt;
    this.track(socket);
    this.scheduleExpiry(socket);
    return { ok: true, expiresAt: new Date(state.expiresAt).toISOString() };
  }

  private track(socket: Socket): void {
    const sessionId = stateOf(socket).principal?.sessionId;
    if (!sessionId) return;
    let sockets = this.bySession.get(sessionId);
    if (!sockets) this.bySession.set(sessionId, (sockets = new Set()));
    sockets.add(socket);
  }

  private untrack(socket: Socket): void {
    const sessionId = stateOf(socket).principal?.sessionId;
    const sockets = sessionId ? this.bySession.get(sessionId) : undefined;
    if (!sockets) return;
    sockets.delete(socket);
    if (!sockets.size) this.bySession.delete(sessionId!);
  }

  /** The session ended: its sockets on this node are told (`auth.expired`, INVALID_TOKEN) and disconnected. */
  private endSession(sessionId: string): void {
    for (const socket of [...(this.bySession.get(sessionId) ?? [])]) {
      socket.emit('auth.expired', { code: ErrorCode.INVALID_TOKEN, message: 'This session has ended' });
      socket.disconnect(true);
    }
  }

  private leave(socket: Socket, room: string): void {
    const state = stateOf(socket);
    const kind = state.rooms.get(room);
    if (kind) {
      state.rooms.delete(room);
      wsRoomSubscriptions.dec({ kind });
    }
    void socket.leave(room);
  }

  private scheduleExpiry(socket: Socket): void {
    const state = stateOf(socket);
    if (state.expiryTimer) clearTimeout(state.expiryTimer);
    const ms = Math.min(state.expiresAt - Date.now(), 2 ** 31 - 1);
    state.expiryTimer = setTimeout(
      () => {
        socket.emit('auth.expired', {
          code: ErrorCode.TOKEN_EXPIRED,
          message: 'The access token has expired; reconnect with a fresh one',
        });
        socket.disconnect(true);
      },
      Math.max(0, ms),
    );
    state.expiryTimer.unref();
  }

  /**
   * Re-checks local sockets (all of them, or those of the principals `which`
   * selects): an ended session is disconnected, a room the user may no longer
   * read is left, with `room.revoked`. A targeted check runs even while a
   * periodic sweep is under way. Within one pass each session is looked up
   * once and each (user, room) authorized once, however many sockets share
   * them: a node's sweep costs a query per distinct watcher and room, not per
   * socket (5k sockets of one user on 200 trips: 200 checks, not 5,000).
   */
  private async reauthorize(which?: (p: Principal) => boolean): Promise<void> {
    if (!this.server || (!which && this.reauthorizing)) return;
    if (!which) this.reauthorizing = true;
    const revoked = new Map<string, Promise<boolean>>();
    const outcomes = new Map<string, Promise<unknown>>();
    const once = <T>(memo: Map<string, Promise<T>>, key: string, run: () => Promise<T>): Promise<T> => {
      let p = memo.get(key);
      if (!p) memo.set(key, (p = run()));
      return p;
    };
    try {
      for (const socket of [...this.server.of('/').sockets.values()]) {
        const state = stateOf(socket);
        const principal = state.principal;
        if (!principal || (which && !which(principal))) continue;
        if (await once(revoked, principal.sessionId, () => this.revocations.isRevoked(principal.sessionId))) {
          socket.emit('auth.expired', { code: ErrorCode.INVALID_TOKEN, message: 'This session has ended' });
          socket.disconnect(true);
          continue;
        }
        for (const room of [...state.rooms.keys()]) {
          // Resolves to the refusal, or to null when the room is still allowed.
          const err = await once(outcomes, `${principal.userId}|${room}`, () =>
            this.authorizer.authorize(principal, room).then(
              () => null,
              (e: unknown) => e,
            ),
          );
          if (!(err instanceof DomainError)) continue; // allowed, or a database hiccup (not a revocation)
          // A targeted check and a sweep may both have found it: the room is left, and told, once.
          if (!state.rooms.has(room)) continue;
          this.leave(socket, room);
          socket.emit('room.revoked', { room, error: errorBody(err) });
        }
      }
    } finally {
      if (!which) this.reauthorizing = false;
    }
  }
}
