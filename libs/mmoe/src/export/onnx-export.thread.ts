import { startWorkerScript } from '../util/worker-script';
import type { GraphLayout, GraphPrecision } from './onnx.exporter';

/**
 * exportOnnx of an artifact on a thread of its own. Building the reference model's graph took 7–13 ms in fp32 and
 * 33–53 ms in int8 (quantising every dense layer) on a quiet 2-core EPYC, 0.4–1 s in int8 on a loaded one: on the
 * API's event loop that froze every request in flight whenever a version was loaded (a canary, a promote, a precision
 * switch), and the passes that ended meanwhile were timed as slow as the freeze, which then refused requests until
 * the pass cost recovered.
 */
export function exportOnnxOffThread(
  artifact: Uint8Array,
  layout: GraphLayout,
  precision: GraphPrecision,
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const worker = startWorkerScript(__dirname, 'onnx-export.worker', { workerData: { artifact, layout, precision } });
    let graph: Uint8Array | undefined;
    worker.once('message', (bytes: Uint8Array) => (graph = bytes));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (graph) resolve(graph);
      else reject(new Error(`the ONNX export thread exited (code ${code}) without a graph`));
    });
  });
}
