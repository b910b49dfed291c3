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
/** Bytes of the room's log (see APPEND): kept beside it, expiring with it. */
const bytesKey = (room: string) => `rt:bytes:{${room}}`;
/** The counter outlives the log by far: seqs must never restart while clients hold one. */
const SEQ_TTL_S = 7 * 24 * 3600;

/**
 * Assigns the room's next seq and appends the event to the room's capped log,
 * atomically, so the log's order is the seq order. ARGV[1] is a floor: the
 * highest seq this node has seen for the room (e.g. assigned locally while
 * Redis was down, or before Redis lost its data); the counter jumps past it so
 * that a room's seqs never go back.
 *
 * The log is capped by count (ARGV[3]) and by bytes (ARGV[8]): KEYS[3] holds
 * the size of its entries (the lengths of their fields, plus 16 for the id),
 * counted afresh from the log when it is missing (first event, a log written
 * before the count existed). Past either cap the oldest entries are trimmed
 * exactly (XTRIM MINID), always keeping the newest: APPEND reads it as the
 * seq floor.
 */
const APPEND = `
local function entrySize(fields)
  local n = 16
  for _, f in ipairs(fields) do n = n + #f end
  return n
end
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
if redis.call('EXISTS', KEYS[3]) == 0 then
  local total = 0
  for _, e in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do total = total + entrySize(e[2]) end
  redis.call('SET', KEYS[3], total)
end
redis.call('XADD', KEYS[2], seq .. '-0', 'e', ARGV[4], 'p', ARGV[5], 't', ARGV[6])
local bytes = redis.call('INCRBY', KEYS[3], entrySize({'e', ARGV[4], 'p', ARGV[5], 't', ARGV[6]}))
local len = redis.call('XLEN', KEYS[2])
local maxEvents = tonumber(ARGV[3])
local maxBytes = tonumber(ARGV[8])
if len > maxEvents or bytes > maxBytes then
  local lastRemoved = nil
  local start = '-'
  while len > 1 and (len > maxEvents or bytes > maxBytes) do
    local batch = redis.call('XRANGE', KEYS[2], start, '+', 'COUNT', 100)
    if #batch == 0 then break end
    for _, e in ipairs(batch) do
      if len <= 1 or (len <= maxEvents and bytes <= maxBytes) then break end
      lastRemoved = e[1]
      len = len - 1
      bytes = bytes - entrySize(e[2])
    end
    start = '(' .. batch[#batch][1]
  end
  if lastRemoved then
    -- Ids are '<seq>-0': a threshold of '<seq>-1' removes that entry and every older one.
    redis.call('XTRIM', KEYS[2], 'MINID', string.match(lastRemoved, '^(%d+)') .. '-1')
    redis.call('SET', KEYS[3], math.max(0, bytes))
  end
end
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('PEXPIRE', KEYS[3], ARGV[7])
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
      // The appends of the messages answered in one turn of the event loop go to Redis in one write.
      enableAutoPipelining: true,
    });
    this.redis.on('error', () => undefined); // reported once by the breaker
    this.redis.defineCommand('appendRoomEvent', { numberOfKeys: 3, lua: APPEND });
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
      bytesKey(room),
      floor,
      SEQ_TTL_S,
      this.config.realtimeLogMaxEvents,
      event,
      payloadJson,
      Date.now(),
      this.config.realtimeLogRetentionMs,
      this.config.realtimeLogMaxBytes,
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
