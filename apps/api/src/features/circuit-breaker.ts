/**
 * Skips a dependency for `openMs` after it fails, so that while it is down each call goes straight to the fallback
 * instead of paying for a failed attempt first; the first call after the interval tries it again.
 */
export class CircuitBreaker {
  private openUntil = 0;

  constructor(
    private readonly openMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get open(): boolean {
    return this.now() < this.openUntil;
  }

  /** `action`'s result, or `fallback`'s when the breaker is open or `action` fails (which opens it). */
  async run<T>(action: () => Promise<T>, fallback: () => T): Promise<T> {
    if (this.open) return fallback();
    try {
      return await action();
    } catch {
      this.openUntil = this.now() + this.openMs;
      return fallback();
    }
  }
}
