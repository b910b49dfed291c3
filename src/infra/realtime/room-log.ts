import { Inject, Injectable, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import Redis from 'ioredis';
import { APP_CONFIG, AppConfig } from '../config/config';
import type { RealtimeEventName } from './realtime-publisher';

/** One logged room event: what a replay re-sends. */
export interface LoggedEvent {
  seq: number;
  event: RealtimeEventName;
  /** The payload as published, without `room` and `seq`. */
  payload: Record<string, unknown>;
  /** When it was logged, epoch ms. */
  at: number;
}

export interface ReplayRead {
  events: LoggedEvent[];
  /** The log no longer reaches back to `sinceSeq + 1` (or has holes): the client refetches over REST. */
  truncated: boolean;
}

// Both keys of a room share a hash tag, so the script stays on one slot in a cluster.
const seqKey = (room: string) => `rt:seq:{${room}}`;
const logKey = (room: string) => `rt:log:{${room}}`;
/** The counter outlives the log by far: seqs must never restart while clients hold one. */
const SEQ_TTL_S = 7 * 24 * 3600;

/**
 * Assigns the room's next seq and appends the event to the room's capped log,
 * atomically, so the log's order is the seq order. ARGV[1] is a floor: the
 * highest seq this node has seen for the room (e.g. assigned locally while
 * Redis was down, or before Redis lost its data); the counter jumps past it so
 * that a room's seqs never go back.
 */
const APPEND = `
local seq = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
if top[1] then
  local topSeq = tonumber(string.match(top[1][1], '^(%d+)'))
  if topSeq > floor then floor = topSeq end
end
if seq <= floor then
  seq = floor + 1
  redis.call('SET', KEYS[1], seq)
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], seq .. '-0', 'e', ARGV[4], 'p', ARGV[5], 't', ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
return seq
`;

type StreamEntry = [id: string, fields: string[]];

/** The client once `defineCommand('appendRoomEvent')` has run. */
interface WithAppend {
  appendRoomEvent(...args: (string | number)[]): Promise<number | string>;
}

/**
 * The per-room sequence counter and capped event log, shared by all nodes
 * through Redis. Its own connection, without an offline queue: while Redis is
 * unreachable a call fails at once (the breaker then opens) instead of
 * waiting in a queue and running later, when its event has long been
 * delivered with a local seq.
 */
@Injectable()
export class RoomLog implements OnModuleInit, OnApplicationShutdown {
  private readonly redis: Redis;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {
    this.redis = new Redis(config.redisUrl, {
      keyPrefix: config.redisKeyPrefix,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 2000,
    });
    this.redis.on('error', () => undefined); // reported once by the breaker
    this.redis.defineCommand('appendRoomEvent', { numberOfKeys: 2, lua: APPEND });
  }

  /** Lets the connection come up before the first event (without holding the boot if Redis is down). */
  async onModuleInit(): Promise<void> {
    if (this.redis.status === 'ready') return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      this.redis.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.redis.status === 'ready') await this.redis.quit().catch(() => this.redis.disconnect());
    else this.redis.disconnect();
  }

  /** Appends one event and returns its seq. `payloadJson` is the payload serialized once by the caller. */
  async append(room: string, event: RealtimeEventName, payloadJson: string, floor: number): Promise<number> {
    const seq = await (this.redis as unknown as WithAppend).appendRoomEvent(
      seqKey(room),
      logKey(room),
      floor,
      SEQ_TTL_S,
      this.config.realtimeLogMaxEvents,
      event,
      payloadJson,
      Date.now(),
      this.config.realtimeLogRetentionMs,
    );
    return Number(seq);
  }

  /** The room's events after `sinceSeq`, oldest first, within the configured retention. */
  async since(room: string, sinceSeq: number, count = this.config.realtimeLogMaxEvents * 2): Promise<ReplayRead> {
    const limit = Math.max(1, count);
    const res = await this.redis
      .multi()
      .get(seqKey(room))
      .xrange(logKey(room), `${sinceSeq + 1}-0`, '+', 'COUNT', limit)
      .exec();
    if (!res) throw new Error('replay read aborted');
    for (const [err] of res) if (err) throw err;
    const current = Number(res[0][1] ?? 0);
    const entries = res[1][1] as StreamEntry[];
    const oldestKept = Date.now() - this.config.realtimeLogRetentionMs;
    const events: LoggedEvent[] = [];
    for (const [id, fields] of entries) {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]] = fields[i + 1];
      if (Number(f.t) < oldestKept) continue;
      events.push({
        seq: Number(id.split('-')[0]),
        event: f.e as RealtimeEventName,
        payload: JSON.parse(f.p) as Record<string, unknown>,
        at: Number(f.t),
      });
    }
    let truncated = sinceSeq > current; // a seq this log never issued (Redis lost its data)
    let expected = sinceSeq + 1;
    for (const e of events) {
      if (e.seq !== expected) truncated = true;
      expected = e.seq + 1;
    }
    if (expected <= current) truncated = true; // the newest events are missing (trimmed or outlived)
    return { events, truncated };
  }
}
