import type { AppConfig } from '../../infra/config/config';
import type { RedisClient } from '../../infra/redis/redis.module';
import { UnknownTokenLimiter } from './unknown-token-limiter';

describe('UnknownTokenLimiter while Redis is unreachable', () => {
  // A client whose connection is down: scripts can still be defined on it, nothing is sent.
  const redisDown = { status: 'reconnecting', defineCommand: () => undefined } as unknown as RedisClient;
  const config = { osmandUnknownTokenLimitPerMinute: 2 } as AppConfig;
  const t0 = 1_000_000_000;

  beforeEach(() => jest.useFakeTimers({ now: t0 }));
  afterEach(() => jest.useRealTimers());
  const at = (ms: number) => jest.setSystemTime(t0 + ms);

  it('counts per address on this node: the limit still holds, and lifts when the minute ends', async () => {
    const limiter = new UnknownTokenLimiter(redisDown, config);
    expect(limiter.retryAfter('a')).toBeNull();
    expect(await limiter.countUnknown('a')).toBeNull();
    at(1000);
    expect(await limiter.countUnknown('a')).toBeNull();
    at(2000);
    expect(await limiter.countUnknown('a')).toBe(58);
    at(30_000);
    expect(limiter.retryAfter('a')).toBe(30);
    expect(limiter.retryAfter('b')).toBeNull();
    expect(await limiter.countUnknown('b')).toBeNull();
    at(60_000);
    expect(limiter.retryAfter('a')).toBeNull();
    expect(await limiter.countUnknown('a')).toBeNull();
  });
});
