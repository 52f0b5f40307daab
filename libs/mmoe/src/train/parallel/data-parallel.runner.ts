import { Worker } from 'node:worker_threads';

import { WasmMemoryError } from '../../backend/wasm.guard';
import { EncodedDataset } from '../../data/preprocessor';
import { AdamState, MultiTaskNetwork } from '../../model/network';
import { startWorkerScript } from '../../util/worker-script';
import { BalanceReport, contributionSize } from '../loss-balancing';
import type { AdamStart } from '../training-step';
import { ExchangeAbortedError, GradientExchange } from './gradient-exchange';
import { Replica } from './replica';
import type { ReplicaCommand, ReplicaReply } from './replica.protocol';

let liveThreads = 0;
/** How long a step that found the exchange aborted waits for the failed thread's reason, which it posts right after. */
const FAILURE_REPORT_MS = 2000;

/** Training threads started and not yet exited, in this process (a finished, failed or cancelled run leaves 0). */
export function liveTrainingThreads(): number {
  return liveThreads;
}

function track(worker: Worker): Worker {
  liveThreads++;
  worker.once('exit', () => liveThreads--);
  return worker;
}

export interface ParallelTimings {
  threads: number;
  /** Copying the training set into shared memory, once per run. */
  handoffMs: number;
  /** From the first thread spawned to every replica ready (its tfjs-wasm, network and weights). */
  startupMs: number;
  /** Terminating the threads. */
  teardownMs: number;
  /** The main thread's time in its shards' steps, and waiting at the barrier for the other threads. */
  computeMs: number;
  barrierWaitMs: number;
}

/** The training set in SharedArrayBuffers: every thread reads the same memory, nothing is copied per step. */
export function shareDataset(data: EncodedDataset): EncodedDataset {
  const share = <T extends Float32Array | Int32Array>(a: T, make: (b: SharedArrayBuffer) => T): T => {
    const shared = make(new SharedArrayBuffer(a.byteLength));
    shared.set(a);
    return shared;
  };
  return {
    size: data.size,
    numericWidth: data.numericWidth,
    numeric: share(data.numeric, (b) => new Float32Array(b)),
    categorical: data.categorical.map((c) => share(c, (b) => new Int32Array(b))),
    sequences: data.sequences.map(({ offsets, ids }) => ({
      offsets: share(offsets, (b) => new Int32Array(b)),
      ids: share(ids, (b) => new Int32Array(b)),
    })),
    labels: data.labels.map((l) => share(l, (b) => new Float32Array(b))),
    weights: data.weights && share(data.weights, (b) => new Float32Array(b)),
  };
}

/**
 * Synchronous data-parallel training: the main thread is replica 0 and `threads − 1` worker threads the others, each
 * with its own tfjs-wasm (one thread per wasm instance) on its shard of every batch. The main thread keeps its event
 * loop: it waits at the barrier asynchronously, so a worker process keeps its queue lock and hears of a thread that
 * died. Any failure aborts the exchange, and dispose() always terminates every thread.
 */
export class DataParallelRunner {
  readonly timings: ParallelTimings;
  private failure: Error | undefined;
  private epochLoss = 0;

  private constructor(
    private readonly local: Replica,
    private readonly workers: Worker[],
    private readonly order: Uint32Array,
    handoffMs: number,
    startupMs: number,
  ) {
    this.timings = { threads: workers.length + 1, handoffMs, startupMs, teardownMs: 0, computeMs: 0, barrierWaitMs: 0 };
    for (const worker of workers) {
      worker.on('message', (m: ReplicaReply) => m.kind === 'failed' && this.fail(replicaError(m.message, m)));
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', this.onExit);
    }
  }

  static async start(
    net: MultiTaskNetwork,
    train: EncodedDataset,
    threads: number,
    from?: AdamState,
  ): Promise<DataParallelRunner> {
    const handoffStart = performance.now();
    const data = shareDataset(train);
    const handoffMs = performance.now() - handoffStart;
    const startupStart = performance.now();
    const size = contributionSize(net);
    const buffers = GradientExchange.allocate(threads, size);
    const order = new SharedArrayBuffer(train.size * 4);
    const weights = net.snapshot();
    const workers: Worker[] = [];
    try {
      const ready: Promise<void>[] = [];
      for (let replica = 1; replica < threads; replica++) {
        const worker = track(startWorkerScript(__dirname, 'replica.worker'));
        workers.push(worker);
        ready.push(untilReady(worker));
        const init: ReplicaCommand = {
          kind: 'init',
          spec: net.spec,
          preprocessing: net.preprocessing,
          weights,
          optimizerState: from,
          data,
          exchange: buffers,
          order,
          replicas: threads,
          replica,
          size,
        };
        worker.postMessage(init);
      }
      await Promise.all(ready);
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw e;
    }
    const local = new Replica(net, data, new GradientExchange(buffers, threads, 0, size), from);
    return new DataParallelRunner(local, workers, new Uint32Array(order), handoffMs, performance.now() - startupStart);
  }

  beginEpoch(order: Uint32Array, steps: number): void {
    this.order.set(order);
    this.epochLoss = 0;
    const command: ReplicaCommand = { kind: 'epoch', steps };
    for (const worker of this.workers) worker.postMessage(command);
  }

  /** One synchronous step of batch rows [start, end) of the epoch's order. */
  async step(start: number, end: number): Promise<void> {
    this.throwIfFailed();
    const computeStart = performance.now();
    this.local.computeShard(start, end, this.order);
    const waitStart = performance.now();
    try {
      await this.local.exchange.arriveAsync();
    } catch (e) {
      if (e instanceof ExchangeAbortedError) {
        // The barrier hears of the abort before this thread's event loop hears why: wait for the reason.
        for (const until = performance.now() + FAILURE_REPORT_MS; !this.failure && performance.now() < until;)
          await new Promise((resolve) => setTimeout(resolve, 10));
        this.throwIfFailed();
      }
      throw e;
    }
    const applyStart = performance.now();
    this.epochLoss += this.local.finishStep() * (end - start);
    this.timings.barrierWaitMs += applyStart - waitStart;
    this.timings.computeMs += waitStart - computeStart + (performance.now() - applyStart);
  }

  /** Sum of batch loss × batch rows over the epoch's steps so far. */
  lossSum(): number {
    return this.epochLoss;
  }

  /** Every replica balances alike: this thread's report is the run's. */
  balanceReport(): BalanceReport {
    return this.local.balanceReport();
  }

  /** Every replica applies the same steps: this thread's Adam is the run's. */
  optimizerState(): AdamState | undefined {
    return this.local.optimizerState();
  }

  get optimizer(): AdamStart {
    return this.local.optimizer;
  }

  /** Stops every thread, wherever it is (a cancelled or failed job leaves none running). */
  async dispose(): Promise<void> {
    const start = performance.now();
    this.failure ??= new Error('training is over');
    this.local.exchange.abort();
    for (const worker of this.workers) worker.off('exit', this.onExit);
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.local.dispose();
    this.timings.teardownMs = performance.now() - start;
  }

  private readonly onExit = (code: number) => this.fail(new Error(`a training thread exited (code ${code})`));

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.local.exchange.abort();
  }

  private throwIfFailed(): void {
    if (this.failure) throw replicaError(`data-parallel training failed: ${this.failure.message}`, this.failure);
  }
}

/**
 * A replica's failure as the main thread throws it: a WasmMemoryError stays one (the job is then the input's fault,
 * and the trainer's message says what to lower), whichever thread ran out first.
 */
export function replicaError(message: string, cause: Error | Extract<ReplicaReply, { kind: 'failed' }>): Error {
  const outOfMemory = cause instanceof WasmMemoryError || ('outOfMemory' in cause && cause.outOfMemory === true);
  return outOfMemory ? new WasmMemoryError(message) : new Error(message);
}

function untilReady(worker: Worker): Promise<void> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: ReplicaReply) => {
      cleanup();
      if (m.kind === 'ready') resolve();
      else reject(replicaError(`a training thread failed to start: ${m.message}`, m));
    };
    const onError = (e: Error) => {
      cleanup();
      reject(e);
    };
    const onExit = (code: number) => {
      cleanup();
      reject(new Error(`a training thread exited while starting (code ${code})`));
    };
    const cleanup = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}
