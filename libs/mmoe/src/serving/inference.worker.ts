/**
 * One inference thread of an InferencePool: it holds an ONNX Runtime session per loaded model version and runs
 * them one message at a time. onnxruntime-node's run() blocks the thread it is called on for the whole forward pass,
 * which is why it happens here and not on the API's event loop.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

import { ONNX_SHARED_DIM } from '../export/onnx.exporter';
import { signatureOf, type InferenceReply, type InferenceRequest } from './inference.protocol';

const port = parentPort!;

/**
 * The inference threads yield the cores to the event loop when both want one: every request goes through the event
 * loop twice (features, then ranking), and under overload a starved event loop cannot even refuse fast what it cannot
 * serve. (A thread's niceness applies to it alone on Linux.)
 */
const NICENESS = 10;

/** Linux only (a thread's id is its /proc/thread-self); elsewhere the thread keeps the process's priority. */
function lowerThreadPriority(): void {
  try {
    setPriority(Number(readlinkSync('/proc/thread-self').split('/').pop()), NICENESS);
  } catch {
    // not Linux, or not allowed: the threads compete with the event loop as equals
  }
}
lowerThreadPriority();
const sessions = new Map<number, ort.InferenceSession>();
const loading = new Map<number, Promise<ort.InferenceSession>>();

/**
 * The session `id`, made once: a thread that replaced a failed one is given the pool's sessions (reload) while the
 * pool's own load may still reach it, and a second session under the same id would never be released.
 */
async function loadOnce(id: number, onnx: Uint8Array): Promise<ort.InferenceSession> {
  const loaded = sessions.get(id);
  if (loaded) return loaded;
  let pending = loading.get(id);
  if (!pending) {
    pending = (async () => {
      const session = await ort.InferenceSession.create(onnx, {
        // One thread per session: the pool itself is the parallelism, and ORT's spinning pool threads would compete
        // with the other inference threads and the event loop for the same cores.
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      });
      await warmUp(session);
      sessions.set(id, session);
      return session;
    })().finally(() => loading.delete(id));
    loading.set(id, pending);
  }
  return pending;
}

async function handle(request: InferenceRequest): Promise<{ reply: InferenceReply; transfer?: ArrayBuffer[] }> {
  switch (request.kind) {
    case 'load': {
      const session = await loadOnce(request.session, request.onnx);
      const inputs = signatureOf(session.inputMetadata);
      const outputs = signatureOf(session.outputMetadata);
      return { reply: { kind: 'loaded', id: request.id, inputs, outputs } };
    }
    case 'run': {
      const session = sessions.get(request.session);
      if (!session) throw new Error(`no session ${request.session} on this inference thread`);
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, { type, data, dims }] of Object.entries(request.feeds))
        feeds[name] = new ort.Tensor(type, data, dims);
      const result = await session.run(feeds, request.fetches);
      const outputs: Record<string, Float32Array> = {};
      for (const name of request.fetches) outputs[name] = result[name].data as Float32Array;
      // The outputs are fresh arrays of this thread: moved to the caller, not copied.
      return {
        reply: { kind: 'ran', id: request.id, outputs },
        transfer: Object.values(outputs).map((o) => o.buffer as ArrayBuffer),
      };
    }
    case 'release': {
      await sessions.get(request.session)?.release();
      sessions.delete(request.session);
      return { reply: { kind: 'released', id: request.id } };
    }
  }
}

/** Rows of the warm-up pass: enough for ORT to pick and initialise the kernels a request's batch uses. */
const WARM_UP_ROWS = 64;

/**
 * One pass over zeros (every row the missing category, every numeric its mean) right after loading: a session's
 * first run allocates and initialises what later runs reuse (3.6× a later one for the reference model's 500 rows),
 * and it should not be a served request's, least of all during a swap under load.
 */
async function warmUp(session: ort.InferenceSession): Promise<void> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of session.inputMetadata) {
    if (!input.isTensor) return;
    const dims = input.shape.map((d) => (typeof d === 'number' ? d : d === ONNX_SHARED_DIM ? 1 : WARM_UP_ROWS));
    const size = dims.reduce((a, b) => a * b, 1);
    if (input.type === 'float32') feeds[input.name] = new ort.Tensor('float32', new Float32Array(size), dims);
    else if (input.type === 'int32') feeds[input.name] = new ort.Tensor('int32', new Int32Array(size), dims);
    else return; // not a graph of exportOnnx: the first request warms it
  }
  await session.run(feeds);
}

port.on('message', (request: InferenceRequest) => {
  handle(request).then(
    ({ reply, transfer }) => port.postMessage(reply, transfer),
    (error: Error) => port.postMessage({ kind: 'failed', id: request.id, message: error.message } as InferenceReply),
  );
});
