import { Worker } from 'node:worker_threads';

import type { RequestBatch } from '../data/encoded-slice';
import { EncodedDataset, PreprocessingState } from '../data/preprocessor';
import type { GraphLayout } from '../export/onnx.exporter';
import { ModelSpec } from '../model-spec/model-spec.schema';
import { startWorkerScript } from '../util/worker-script';
import type { InferenceReply, InferenceRequest } from './inference.protocol';
import { Feeder, OnnxIo } from './onnx-io';
import { PassCost } from './pass-cost';
import {
  checkEncoded,
  checkRequest,
  DeadlineExpiredError,
  InferenceEstimate,
  RunsInFlight,
  ScoreOptions,
  Scorer,
  ScoreResult,
} from './scorer';

/**
 * A run is split over idle threads only in shards of at least this many rows. A shard costs more than its rows: the
 * message, the tensors, and two threads streaming the same weights at once. Measured on the reference model through
 * the API (500 candidates one request at a time, per-thread CPU over 600 requests, the shared 2-core machine): split
 * in two, 2.8-3.0 ms of inference CPU and 1.6-1.8 ms on the event loop per request against 2.3-2.4 and 1.2-1.4 ms
 * whole (fp32; int8 2.0 against 1.8 ms of inference), for a median no lower; so a request of up to 1,023 candidates
 * runs whole on one thread, and two requests run side by side on two.
 */
const MIN_SHARD_ROWS = 512;

type Pending = { resolve: (reply: InferenceReply) => void; reject: (error: Error) => void };

/** One worker thread and the replies it owes. */
class InferenceThread {
  private worker!: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  /** When the run or the load it is on should be done, by their measured costs (0 when it owes no reply). */
  busyUntil = 0;

  constructor(
    private readonly onRestart: (thread: InferenceThread) => void,
    /** Called whenever it has answered everything it was sent (runs, loads, releases): it can take a run. */
    private readonly onIdle: () => void,
    private readonly closing: () => boolean,
  ) {
    this.spawn();
  }

  /** Owes no reply: a run posted now starts at once (runs are only ever posted to idle threads). */
  get idle(): boolean {
    return this.pending.size === 0;
  }

  call(request: DistributiveOmit<InferenceRequest, 'id'>): Promise<InferenceReply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // Referenced only while it owes replies: an idle pool never keeps a process alive, a busy one does.
      if (this.pending.size === 1) this.worker.ref();
      this.worker.postMessage({ ...request, id });
    });
  }

  terminate(): Promise<number> {
    return this.worker.terminate();
  }

  private spawn(): void {
    const worker = startWorker();
    worker.on('message', (reply: InferenceReply) => {
      const pending = this.pending.get(reply.id);
      if (!pending) return;
      this.pending.delete(reply.id);
      if (reply.kind === 'failed') pending.reject(new Error(reply.message));
      else pending.resolve(reply);
      if (this.pending.size === 0) {
        worker.unref();
        this.busyUntil = 0;
        this.onIdle();
      }
    });
    // A thread that dies (a native crash, out of memory) fails what it owed and is replaced with the same sessions.
    worker.once('exit', (code) => {
      const owed = [...this.pending.values()];
      this.pending.clear();
      this.busyUntil = 0;
      for (const p of owed) p.reject(new Error(`an inference thread exited (code ${code})`));
      if (this.closing()) return;
      this.spawn();
      this.onRestart(this);
      if (this.pending.size === 0) this.onIdle();
    });
    worker.on('error', () => undefined); // 'exit' follows and does the rest
    worker.unref();
    this.worker = worker;
  }
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

function startWorker(): Worker {
  return startWorkerScript(__dirname, 'inference.worker');
}

/** A scoring run waiting for a thread, or running on one or more. */
interface Run {
  session: number;
  io: OnnxIo;
  input: Feeder;
  withGates: boolean;
  /** performance.now() by which it must be done: dropped, never started, when its pass would end after it. */
  deadline: number;
  /** Its expected ms on one thread when queued (priced by another session's passes until its own are measured). */
  cost: number;
  /**
   * It found no thread idle, or runs queued before it: it waits, and must start early enough that even a slow pass
   * (PassCost.boundMs) ends by its deadline.
   */
  waits: boolean;
  /** No caller waits for it (ScoreOptions.background): started only when no other run waits, never split. */
  background: boolean;
  resolve: (result: ScoreResult) => void;
  reject: (error: Error) => void;
}

/** What a pool has done since it started. */
export interface InferencePoolStats {
  /** Runs started (a run split across threads counts once), and their rows. */
  runs: number;
  rows: number;
  /** Served runs dropped, never started, because they could no longer come back by their deadline. */
  expired: number;
  /** Expected ms of the work queued and running, per thread (what a new run would wait). */
  backlogMs: number;
}

/**
 * A pool of inference threads, each holding an ONNX Runtime session per loaded version: the API's event loop only
 * posts encoded rows and reads back scores, so it keeps serving while the network runs, on every core.
 *
 * Runs wait here, in arrival order, not in the threads' message queues: a thread is given a run only when it is idle,
 * so a run whose deadline passes while it waits is dropped before any thread computes it (by a timer, not only when a
 * thread frees up), and the wait ahead of a new run is known (expectedMs). Background runs (the shadow's) wait in a
 * queue of their own, behind every other. A run that finds several threads idle and nothing queued behind it is split
 * across them (lowest latency when the pool is quiet); under a backlog each thread takes whole runs, which costs no
 * per-shard overhead.
 */
export class InferencePool {
  private readonly threads: InferenceThread[];
  /** Live sessions and their graphs, to load them again into a thread that had to be replaced. */
  private readonly sessions = new Map<number, Uint8Array>();
  /**
   * Measured runs, per session, from the post to the reply read on this event loop: not the thread's pass alone, as a
   * thread is given its next run only once its reply is read here (dispatch runs on this loop), so a loop that is
   * late to read replies drains the queue slower, and answers later, by as much. (Priced by the thread's own pass
   * time instead, in a trial of 2026-12-07, admission let more in under overload: the queue's answers came ~20 ms
   * later at the median and the slowest after its deadline, for no more answered on time.)
   */
  private readonly costs = new Map<number, PassCost>();
  /**
   * The session measured last: a new session's runs are priced by it until its own first pass (a version swapped in
   * under load would otherwise queue runs that cost nothing, and admission would let them all in).
   */
  private latestCost?: PassCost;
  /** Wall time of the last load on an idle thread: a thread loading a session is busy about that long. */
  private loadMs = 0;
  private readonly queue: Run[] = [];
  /** Background runs: started only when `queue` is empty. */
  private readonly background: Run[] = [];
  /** Expected ms of the runs queued in `queue`, on one thread (background ones make no one wait). */
  private queuedCost = 0;
  /** The timer that drops the queued runs whose time has run out, and when it fires (performance.now()). */
  private expiry?: { timer: NodeJS.Timeout; at: number };
  private nextSession = 0;
  private closed = false;
  private readonly counts = { runs: 0, rows: 0, expired: 0 };

  constructor(readonly size: number) {
    if (!(Number.isInteger(size) && size >= 1)) throw new Error(`an inference pool needs >= 1 threads (got ${size})`);
    this.threads = Array.from(
      { length: size },
      () =>
        new InferenceThread(
          (thread) => this.reload(thread),
          () => this.dispatch(),
          () => this.closed,
        ),
    );
  }

  /**
   * A scorer of this graph on every thread of the pool; fails, loading nothing, if the graph does not fit the spec.
   * The threads load it one after the other, so that the others keep running the versions already served.
   */
  async load(
    onnx: Uint8Array,
    spec: ModelSpec,
    preprocessing: PreprocessingState,
    layout: GraphLayout = 'rows',
  ): Promise<PooledOnnxScorer> {
    if (this.closed) throw new Error('the inference pool is closed');
    const io = new OnnxIo(spec, preprocessing, layout);
    const session = this.nextSession++;
    // Known before the first thread loads it: a thread replaced meanwhile is given it again (reload).
    this.sessions.set(session, onnx);
    try {
      for (const thread of this.threads) {
        const startedAt = performance.now();
        const wasIdle = thread.idle;
        thread.busyUntil = Math.max(thread.busyUntil, startedAt) + this.loadMs;
        const loaded = await thread.call({ kind: 'load', session, onnx });
        if (wasIdle) this.loadMs = performance.now() - startedAt;
        const mismatch = loaded.kind === 'loaded' ? io.mismatch(loaded.inputs, loaded.outputs) : undefined;
        if (mismatch) throw new Error(mismatch);
      }
    } catch (e) {
      await this.release(session);
      throw e;
    }
    return new PooledOnnxScorer(this, session, io, preprocessing);
  }

  /**
   * Scores rows [0, size) of `input` once a thread is free. Rejects with DeadlineExpiredError, computing nothing,
   * when `deadline` (performance.now()) passes first or, for a run that had to wait, when it could no longer start
   * early enough for its measured pass to end by then.
   */
  run(
    session: number,
    io: OnnxIo,
    input: Feeder,
    withGates: boolean,
    deadline = Infinity,
    background = false,
  ): Promise<ScoreResult> {
    if (input.size === 0) return Promise.resolve(io.allocate(0, withGates));
    return new Promise((resolve, reject) => {
      const cost = this.expectedPassMs(session, input.size);
      const waits = !this.startsAtOnce() || (background && this.background.length > 0);
      const run = { session, io, input, withGates, deadline, cost, waits, background, resolve, reject };
      if (background) this.background.push(run);
      else {
        this.queue.push(run);
        this.queuedCost += cost;
      }
      this.dispatch();
      // One that waits is queued, or just started by another thread freed meanwhile (a timer then sweeps nothing).
      if (waits) this.dropBy(this.dueAt(run));
    });
  }

  /**
   * What a run of `rows` rows of `session` posted now would take: the work queued and running ahead of it (and
   * `aheadRows` of the session about to be), shared by the threads, and its own pass. Undefined until the pool has
   * measured a pass (of this session, else of the one measured last).
   */
  estimate(session: number, rows: number, aheadRows = 0): InferenceEstimate | undefined {
    if (!this.latestCost) return undefined;
    const passMs = this.expectedPassMs(session, rows);
    // An idle thread and nothing queued or on its way: it would start at once, however long the others are busy.
    if (aheadRows === 0 && this.startsAtOnce()) return { waitMs: 0, passMs };
    return { waitMs: this.backlogMs() + this.expectedPassMs(session, aheadRows) / this.threads.length, passMs };
  }

  /** Whether a run posted now would start at once: nothing queued ahead of it and a thread idle. */
  private startsAtOnce(): boolean {
    return this.queue.length === 0 && this.threads.some((t) => t.idle);
  }

  stats(): InferencePoolStats {
    return { ...this.counts, backlogMs: this.backlogMs() };
  }

  /** Releases a session on every thread; each thread does it after the run it may be on. */
  async release(session: number): Promise<void> {
    this.sessions.delete(session);
    this.costs.delete(session);
    if (this.closed) return;
    await Promise.allSettled(this.threads.map((t) => t.call({ kind: 'release', session })));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.sessions.clear();
    clearTimeout(this.expiry?.timer);
    for (const run of [...this.queue.splice(0), ...this.background.splice(0)])
      run.reject(new Error('the inference pool is closed'));
    await Promise.all(this.threads.map((t) => t.terminate()));
  }

  /** Starts queued runs on the idle threads (background ones last), dropping those whose time has run out. */
  private dispatch(): void {
    for (let run = this.queue[0] ?? this.background[0]; run; run = this.queue[0] ?? this.background[0]) {
      const idle = this.threads.filter((t) => t.idle);
      if (idle.length === 0) return;
      if (run.background) this.background.shift();
      else {
        this.queue.shift();
        // Reset when empty, so that rounding never leaves a phantom backlog.
        this.queuedCost = this.queue.length === 0 ? 0 : this.queuedCost - run.cost;
      }
      if (performance.now() >= this.dueAt(run)) {
        this.drop(run);
        continue;
      }
      const { size } = run.input;
      const shards =
        run.background || this.queue.length > 0
          ? 1
          : Math.max(1, Math.min(idle.length, Math.floor(size / MIN_SHARD_ROWS)));
      this.start(run, idle.slice(0, shards));
    }
  }

  /**
   * When a queued run must be dropped if it has not started: at its deadline, or, for one that waited, early enough to
   * come back by it even if slow (its pass and the wait for this event loop to read the reply). Started too late, it
   * would be computed only to be answered late (under overload every queued run is at the edge of its deadline, and
   * passes are at their slowest). One that found a thread idle always runs: only passes that run correct an estimate
   * grown too long (a busy machine, a slow first pass), as admission always admits a request with nothing ahead of it.
   */
  private dueAt(run: Run): number {
    return run.deadline - (run.waits ? this.slowPassMs(run.session, run.input.size) : 0);
  }

  /** A served run dropped counts in `expired`; a background one's caller counts its own. */
  private drop(run: Run): void {
    if (!run.background) this.counts.expired++;
    run.reject(new DeadlineExpiredError());
  }

  /**
   * Has the queued runs swept at `at` at the latest. A run is otherwise dropped only when a thread frees up, which
   * behind long passes (or none: a thread that died) comes well after its deadline, and its request would wait for it.
   */
  private dropBy(at: number): void {
    if (!(at < Infinity) || (this.expiry && this.expiry.at <= at)) return; // NaN too: never a timer every ms
    clearTimeout(this.expiry?.timer);
    this.expiry = { at, timer: setTimeout(() => this.sweep(), Math.max(0, at - performance.now())).unref() };
  }

  /** Drops every queued run whose time has run out, and sets the timer for the next. */
  private sweep(): void {
    this.expiry = undefined;
    const now = performance.now();
    let next = Infinity;
    for (const queue of [this.queue, this.background]) {
      let kept = 0;
      for (const run of queue) {
        const due = this.dueAt(run);
        if (now < due) {
          queue[kept++] = run;
          next = Math.min(next, due);
          continue;
        }
        if (!run.background) this.queuedCost -= run.cost;
        this.drop(run);
      }
      queue.length = kept;
    }
    if (this.queue.length === 0) this.queuedCost = 0;
    this.dropBy(next);
  }

  private start(run: Run, threads: InferenceThread[]): void {
    const { session, io, input, withGates } = run;
    const { size } = input;
    const result = io.allocate(size, withGates);
    const fetches = io.fetches(withGates);
    const per = Math.ceil(size / threads.length);
    const startedAt = performance.now();
    this.counts.runs++;
    this.counts.rows += size;
    let left = threads.length;
    let failed = false;
    threads.forEach((thread, s) => {
      const start = s * per;
      const end = Math.min(size, start + per);
      thread.busyUntil = startedAt + this.expectedPassMs(session, end - start);
      // Views are copied into the message (structured clone): a few tens of kB per request, cheaper than a
      // SharedArrayBuffer per request, and the caller keeps its arrays.
      thread
        .call({ kind: 'run', session, feeds: input.feeds(start, end), fetches })
        .then((reply) => {
          if (reply.kind !== 'ran') throw new Error(`unexpected ${reply.kind} reply to a run`);
          this.measured(session, end - start, performance.now() - startedAt);
          if (!failed) io.collect(reply.outputs, start, end - start, result);
          if (--left === 0 && !failed) run.resolve(result);
        })
        .catch((error: Error) => {
          if (!failed) run.reject(error);
          failed = true;
        });
    });
  }

  /** The work queued and running, shared by the threads. */
  private backlogMs(): number {
    const now = performance.now();
    let ahead = this.queuedCost;
    for (const thread of this.threads) ahead += Math.max(0, thread.busyUntil - now);
    return ahead / this.threads.length;
  }

  private expectedPassMs(session: number, rows: number): number {
    return (this.costs.get(session) ?? this.latestCost)?.expectedMs(rows) ?? 0;
  }

  /** Only the session's own runs: another's prior could drop the runs of a faster model. */
  private slowPassMs(session: number, rows: number): number {
    return this.costs.get(session)?.boundMs(rows) ?? 0;
  }

  /** A shard's run, from its post (its thread was idle: no queue in it) to its reply read here, into its costs. */
  private measured(session: number, rows: number, ms: number): void {
    if (!this.sessions.has(session)) return;
    let cost = this.costs.get(session);
    if (!cost) this.costs.set(session, (cost = new PassCost(rows, ms)));
    else cost.observe(rows, ms);
    this.latestCost = cost;
  }

  private reload(thread: InferenceThread): void {
    for (const [session, onnx] of this.sessions)
      void thread.call({ kind: 'load', session, onnx }).catch(() => undefined);
  }
}

/** A version's graph on every thread of an InferencePool. */
export class PooledOnnxScorer implements Scorer {
  readonly engine = 'onnxruntime';
  private disposed = false;
  private readonly running = new RunsInFlight();

  constructor(
    private readonly pool: InferencePool,
    private readonly session: number,
    private readonly io: OnnxIo,
    private readonly preprocessing: PreprocessingState,
  ) {}

  async score(data: EncodedDataset, options: ScoreOptions = {}): Promise<ScoreResult> {
    if (this.disposed) throw new Error('the scorer has been disposed');
    checkEncoded(data, this.preprocessing);
    return this.track(this.io.rows(data), options);
  }

  async scoreRequest(batch: RequestBatch, options: ScoreOptions = {}): Promise<ScoreResult> {
    if (this.disposed) throw new Error('the scorer has been disposed');
    checkRequest(batch, this.preprocessing, this.io.sides);
    return this.track(this.io.request(batch), options);
  }

  estimate(rows: number, aheadRows?: number): InferenceEstimate | undefined {
    return this.pool.estimate(this.session, rows, aheadRows);
  }

  /** Releases the session on every thread once the runs in flight are done. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.running.settled();
    await this.pool.release(this.session);
  }

  private track(input: Feeder, { gateWeights = false, deadline, background }: ScoreOptions): Promise<ScoreResult> {
    return this.running.track(this.pool.run(this.session, this.io, input, gateWeights, deadline, background));
  }
}
