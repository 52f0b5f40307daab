import { RedisUnavailableError, withRedisDeadline } from './redis-unavailable';

describe('withRedisDeadline', () => {
  it('passes an answer through', async () => {
    await expect(withRedisDeadline(Promise.resolve(7), 50)).resolves.toBe(7);
  });

  it('turns a command that waits past the deadline into RedisUnavailableError', async () => {
    await expect(withRedisDeadline(new Promise(() => undefined), 20)).rejects.toBeInstanceOf(RedisUnavailableError);
  });
});
