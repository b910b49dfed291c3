import type { AppConfig } from '../../infra/config/config';
import type { RedisClient } from '../../infra/redis/redis.module';
import { UnknownTokenLimiter } from './unknown-token-limiter';

describe('UnknownTokenLimiter while Redis is unreachable', () => {
  const redisDown = { status: 'reconnecting' } as unknown as RedisClient;
  const config = { osmandUnknownTokenLimitPerMinute: 2 } as AppConfig;

  it('counts per address on this node: the limit still holds, and lifts when the minute ends', async () => {
    const limiter = new UnknownTokenLimiter(redisDown, config);
    const t0 = 1_000_000;
    expect(limiter.retryAfter('a', t0)).toBeNull();
    expect(await limiter.countUnknown('a', t0)).toBeNull();
    expect(await limiter.countUnknown('a', t0 + 1000)).toBeNull();
    expect(await limiter.countUnknown('a', t0 + 2000)).toBe(58);
    expect(limiter.retryAfter('a', t0 + 30_000)).toBe(30);
    expect(limiter.retryAfter('b', t0 + 30_000)).toBeNull();
    expect(await limiter.countUnknown('b', t0 + 30_000)).toBeNull();
    expect(limiter.retryAfter('a', t0 + 60_000)).toBeNull();
    expect(await limiter.countUnknown('a', t0 + 60_000)).toBeNull();
  });
});
