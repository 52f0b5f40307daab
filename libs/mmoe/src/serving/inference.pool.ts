import { Worker } from 'node:worker_threads';

import type { RequestBatch } from '../data/encoded-slice';
import { EncodedDataset, PreprocessingState } from '../data/preprocessor';
import type { GraphLayout } from '../export/onnx.exporter';
import { ModelSpec } from '../model-spec/model-spec.schema';
import { startWorkerScript } from '../util/worker-script';
import type { InferenceReply, InferenceRequest } from './inference.protocol';
import { Feeder, OnnxIo } from './onnx-io';
import { checkEncoded, checkRequest, RunsInFlight, ScoreOptions, Scorer, ScoreResult } from './scorer';

/**
 * A request is split over idle threads only in shards of at least this many rows: below it, a thread's fixed cost
 * per run (message, tensors, ORT dispatch) outweighs what the split saves.
 */
const MIN_SHARD_ROWS = 128;

type Pending = { resolve: (reply: InferenceReply) => void; reject: (error: Error) => void; rows: number };

/** One worker thread and the replies it owes. */
class InferenceThread {
  private worker!: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  /** Rows sent and not answered yet: what the pool balances on. */
  queuedRows = 0;

  constructor(
    private readonly onRestart: (thread: InferenceThread) => void,
    private readonly closing: () => boolean,
  ) {
    this.spawn();
  }

  call(request: DistributiveOmit<InferenceRequest, 'id'>, rows = 0): Promise<InferenceReply> {
    const id = this.nextId++;
    this.queuedRows += rows;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, rows });
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
      if (this.pending.size === 0) worker.unref();
      this.queuedRows -= pending.rows;
      if (reply.kind === 'failed') pending.reject(new Error(reply.message));
      else pending.resolve(reply);
    });
    // A thread that dies (a native crash, out of memory) fails what it owed and is replaced with the same sessions.
    worker.once('exit', (code) => {
      const owed = [...this.pending.values()];
      this.pending.clear();
      this.queuedRows = 0;
      for (const p of owed) p.reject(new Error(`an inference thread exited (code ${code})`));
      if (this.closing()) return;
      this.spawn();
      this.onRestart(this);
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

/**
 * A pool of inference threads, each holding an ONNX Runtime session per loaded version: the API's event loop only
 * posts encoded rows and reads back scores, so it keeps serving while the network runs, on every core.
 */
export class InferencePool {
  private readonly threads: InferenceThread[];
  /** Live sessions and their graphs, to load them again into a thread that had to be replaced. */
  private readonly sessions = new Map<number, Uint8Array>();
  private nextSession = 0;
  private closed = false;

  constructor(readonly size: number) {
    if (!(Number.isInteger(size) && size >= 1)) throw new Error(`an inference pool needs >= 1 threads (got ${size})`);
    this.threads = Array.from(
      { length: size },
      () =>
        new InferenceThread(
          (thread) => this.reload(thread),
          () => this.closed,
        ),
    );
  }

  /** A scorer of this graph on every thread of the pool; fails, loading nothing, if the graph does not fit the spec. */
  async load(
    onnx: Uint8Array,
    spec: ModelSpec,
    preprocessing: PreprocessingState,
    layout: GraphLayout = 'rows',
  ): Promise<PooledOnnxScorer> {
    if (this.closed) throw new Error('the inference pool is closed');
    const io = new OnnxIo(spec, preprocessing, layout);
    const session = this.nextSession++;
    const replies = await Promise.allSettled(this.threads.map((t) => t.call({ kind: 'load', session, onnx })));
    const failed = replies.find((r) => r.status === 'rejected');
    const loaded = replies.find((r) => r.status === 'fulfilled')?.value;
    const mismatch = loaded?.kind === 'loaded' ? io.mismatch(loaded.inputs, loaded.outputs) : undefined;
    if (failed || mismatch) {
      await this.release(session);
      throw failed ? (failed.reason as Error) : new Error(mismatch);
    }
    this.sessions.set(session, onnx);
    return new PooledOnnxScorer(this, session, io, preprocessing);
  }

  /** Scores rows [0, size) of `data`, split over the least busy threads in shards of at least MIN_SHARD_ROWS. */
  async run(session: number, io: OnnxIo, input: Feeder, withGates: boolean): Promise<ScoreResult> {
    const { size } = input;
    if (size === 0) return io.allocate(0, withGates);
    const shards = Math.max(1, Math.min(this.threads.length, Math.floor(size / MIN_SHARD_ROWS)));
    const threads = [...this.threads].sort((a, b) => a.queuedRows - b.queuedRows).slice(0, shards);
    const result = io.allocate(size, withGates);
    const fetches = io.fetches(withGates);
    const per = Math.ceil(size / shards);
    await Promise.all(
      threads.map(async (thread, s) => {
        const start = s * per;
        const end = Math.min(size, start + per);
        // Views are copied into the message (structured clone): a few tens of kB per request, cheaper than a
        // SharedArrayBuffer per request, and the caller keeps its arrays.
        const reply = await thread.call({ kind: 'run', session, feeds: input.feeds(start, end), fetches }, end - start);
        if (reply.kind !== 'ran') throw new Error(`unexpected ${reply.kind} reply to a run`);
        const outputs = Object.fromEntries(Object.entries(reply.outputs).map(([name, data]) => [name, { data }]));
        io.collect(outputs, start, end - start, result);
      }),
    );
    return result;
  }

  /** Releases a session on every thread; each thread does it after the runs queued before it. */
  async release(session: number): Promise<void> {
    this.sessions.delete(session);
    if (this.closed) return;
    await Promise.allSettled(this.threads.map((t) => t.call({ kind: 'release', session })));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.sessions.clear();
    await Promise.all(this.threads.map((t) => t.terminate()));
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
    return this.running.track(this.pool.run(this.session, this.io, this.io.rows(data), options.gateWeights ?? false));
  }

  async scoreRequest(batch: RequestBatch, options: ScoreOptions = {}): Promise<ScoreResult> {
    if (this.disposed) throw new Error('the scorer has been disposed');
    checkRequest(batch, this.preprocessing, this.io.sides);
    const input = this.io.request(batch);
    return this.running.track(this.pool.run(this.session, this.io, input, options.gateWeights ?? false));
  }

  /** Releases the session on every thread once the runs in flight are done. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.running.settled();
    await this.pool.release(this.session);
  }
}
