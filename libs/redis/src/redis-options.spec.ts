import { reconnectSoon } from './redis-options';

describe('reconnectSoon', () => {
  it('waits longer after each failed attempt, never more than 500 ms', () => {
    expect([1, 2, 5, 6, 1000].map(reconnectSoon)).toEqual([100, 200, 500, 500, 500]);
  });
});
