import { reconnectSoon, redisUrlOptions } from './redis-options';

describe('redisUrlOptions', () => {
  it.each([
    ['redis://127.0.0.1:6383/1', { host: '127.0.0.1', port: 6383, db: 1 }],
    ['redis://cache', { host: 'cache', port: 6379, db: 0 }],
    ['redis://:s%40cret@cache:7000/', { host: 'cache', port: 7000, db: 0, password: 's@cret' }],
    ['rediss://app:pw@[::1]:6380/2', { host: '::1', port: 6380, db: 2, username: 'app', password: 'pw', tls: {} }],
  ])('reads %s', (url, options) => {
    expect(redisUrlOptions(url)).toEqual(options);
  });
});

describe('reconnectSoon', () => {
  it('waits longer after each failed attempt, never more than 500 ms', () => {
    expect([1, 2, 5, 6, 1000].map(reconnectSoon)).toEqual([100, 200, 500, 500, 500]);
  });
});
