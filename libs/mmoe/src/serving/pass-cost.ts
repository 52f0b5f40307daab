/** Weight of the newest pass in a session's mean cost (exponential moving averages over ~10 passes). */
const MEAN_SMOOTHING = 0.1;
/** Weight of the newest pass in the mean deviation: faster than the mean, as RFC 6298's RTTVAR is (β = 1/4). */
const DEVIATION_SMOOTHING = 0.25;
/** Deviations above the mean that a pass is allowed before it counts as slow: RFC 6298's K. */
const DEVIATIONS = 4;

/**
 * What a session's passes take, learnt from the passes it ran: their ms and their rows as moving averages (their ratio
 * is the cost per row, the fixed cost spread over the rows the passes usually have), and the mean deviation of a pass
 * from what was expected of it.
 *
 * The mean prices the work queued (a backlog is a sum of passes); the bound decides whether a run that waited can
 * still end by its deadline. A mean there would start every run whose pass comes out slower than average only to
 * answer it late, and passes are slowest exactly when runs wait: under overload the event loop and both inference
 * threads want the two cores, and a 3 ms pass was measured taking 30–45 ms. So the bound is a retransmission
 * timeout's (RFC 6298): mean + 4 × mean deviation, which follows the spread as it widens and narrows.
 */
export class PassCost {
  private ms: number;
  private rows: number;
  private deviation: number;

  constructor(rows: number, ms: number) {
    this.ms = ms;
    this.rows = rows;
    // RFC 6298's first RTTVAR: half the first measurement.
    this.deviation = ms / 2;
  }

  /** A pass of `rows` rows took `ms`. */
  observe(rows: number, ms: number): void {
    this.deviation += DEVIATION_SMOOTHING * (Math.abs(ms - this.expectedMs(rows)) - this.deviation);
    this.ms += MEAN_SMOOTHING * (ms - this.ms);
    this.rows += MEAN_SMOOTHING * (rows - this.rows);
  }

  /** The mean ms of a pass of `rows` rows. */
  expectedMs(rows: number): number {
    return (this.ms / this.rows) * rows;
  }

  /** The ms a pass of `rows` rows is unlikely to exceed: the mean and 4 deviations, in proportion to its rows. */
  boundMs(rows: number): number {
    return ((this.ms + DEVIATIONS * this.deviation) / this.rows) * rows;
  }
}
