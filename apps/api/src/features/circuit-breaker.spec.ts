import { CircuitBreaker } from './circuit-breaker';

describe('CircuitBreaker', () => {
  it('falls back while open after a failure, and tries again once the interval is over', async () => {
    let now = 0;
    const breaker = new CircuitBreaker(1000, () => now);
    const failing = jest.fn(() => Promise.reject(new Error('down')));
    const working = jest.fn(() => Promise.resolve('redis'));

    expect(await breaker.run(working, () => 'postgres')).toBe('redis');
    expect(await breaker.run(failing, () => 'postgres')).toBe('postgres');
    expect(breaker.open).toBe(true);
    now = 999;
    expect(await breaker.run(working, () => 'postgres')).toBe('postgres');
    expect(working).toHaveBeenCalledTimes(1);
    now = 1000;
    expect(await breaker.run(working, () => 'postgres')).toBe('redis');
    expect(breaker.open).toBe(false);
  });
});
