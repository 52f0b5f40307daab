/** Indices into the control words. */
const ARRIVED = 0;
const GENERATION = 1;
const ABORT = 2;
const CONTROL_WORDS = 3;
/** How often a waiting replica looks at the abort flag (a dead peer never arrives). */
const POLL_MS = 50;

export interface ExchangeBuffers {
  control: SharedArrayBuffer;
  /** Two sets (this step's and the next's) of one slot per replica: the flat gradient, then the shard's loss. */
  gradients: SharedArrayBuffer;
}

export class ExchangeAbortedError extends Error {
  constructor() {
    super('a training thread failed; the step was abandoned');
    this.name = 'ExchangeAbortedError';
  }
}

/**
 * Synchronous data-parallel SGD between replicas in shared memory: each replica writes its shard's gradient to its
 * slot, waits at a barrier, then sums every slot in replica order — the same floats in the same order everywhere, so
 * every replica applies bit-identical updates and the weights never drift apart. Slots alternate between two sets so
 * that one barrier per step suffices: a replica writes set s+1 while a slower one may still read set s, and nobody
 * writes set s again before everybody has passed barrier s+1.
 */
export class GradientExchange {
  private readonly control: Int32Array;
  private readonly slots: Float32Array[][];
  private step = 0;

  constructor(
    buffers: ExchangeBuffers,
    readonly replicas: number,
    readonly replica: number,
    /** Length of the flat gradient. */
    readonly size: number,
  ) {
    this.control = new Int32Array(buffers.control);
    const slot = size + 1;
    this.slots = [0, 1].map((set) =>
      Array.from(
        { length: replicas },
        (_, r) => new Float32Array(buffers.gradients, (set * replicas + r) * slot * 4, slot),
      ),
    );
  }

  static allocate(replicas: number, size: number): ExchangeBuffers {
    return {
      control: new SharedArrayBuffer(CONTROL_WORDS * 4),
      gradients: new SharedArrayBuffer(2 * replicas * (size + 1) * 4),
    };
  }

  /** This replica's slot for the current step; the gradient goes in [0, size), the shard's loss at [size]. */
  slot(): Float32Array {
    return this.slots[this.step % 2][this.replica];
  }

  /** After the barrier: the sum of every replica's gradient into `out`; returns the batch's loss. */
  sum(out: Float32Array): number {
    const slots = this.slots[this.step % 2];
    out.set(slots[0].subarray(0, this.size));
    for (let r = 1; r < slots.length; r++) {
      const g = slots[r];
      for (let i = 0; i < this.size; i++) out[i] += g[i];
    }
    let loss = 0;
    for (const s of slots) loss += s[this.size];
    this.step++;
    return loss;
  }

  /** Wakes and fails every replica waiting or about to wait (a failed thread, a cancelled job). */
  abort(): void {
    Atomics.store(this.control, ABORT, 1);
    Atomics.notify(this.control, GENERATION);
  }

  /** Blocking barrier, for replica threads. */
  arriveSync(): void {
    const generation = this.arrive();
    if (generation !== undefined) {
      while (Atomics.load(this.control, GENERATION) === generation) {
        this.checkAborted();
        Atomics.wait(this.control, GENERATION, generation, POLL_MS);
      }
    }
    this.checkAborted();
  }

  /** Barrier that keeps the event loop turning (the main thread must hear of a thread that died). */
  async arriveAsync(): Promise<void> {
    const generation = this.arrive();
    if (generation !== undefined) {
      while (Atomics.load(this.control, GENERATION) === generation) {
        this.checkAborted();
        const wait = Atomics.waitAsync(this.control, GENERATION, generation, POLL_MS);
        if (wait.async) await wait.value;
      }
    }
    this.checkAborted();
  }

  /** Counts this replica in; the last to arrive opens the barrier (undefined), the others get the generation to await. */
  private arrive(): number | undefined {
    this.checkAborted();
    const generation = Atomics.load(this.control, GENERATION);
    if (Atomics.add(this.control, ARRIVED, 1) === this.replicas - 1) {
      Atomics.store(this.control, ARRIVED, 0);
      Atomics.add(this.control, GENERATION, 1);
      Atomics.notify(this.control, GENERATION);
      return undefined;
    }
    return generation;
  }

  private checkAborted(): void {
    if (Atomics.load(this.control, ABORT) === 1) throw new ExchangeAbortedError();
  }
}
