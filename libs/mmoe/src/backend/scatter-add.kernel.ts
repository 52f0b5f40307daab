import * as tf from '@tensorflow/tfjs';
import { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * A plain scatter-add for UnsortedSegmentSum, the gradient of `gather`, i.e. of every embedding lookup: wasm has no
 * kernel for it, and the cpu backend's loops over every segment for every row (a 1,000-row table takes seconds).
 * out[ids[i]] += x[i] for each row i.
 */
export function registerScatterAddKernel(backendName: 'wasm' | 'cpu'): void {
  if (tf.getKernel('UnsortedSegmentSum', backendName)) tf.unregisterKernel('UnsortedSegmentSum', backendName);
  tf.registerKernel({
    kernelName: 'UnsortedSegmentSum',
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
      const numSegments = attrs?.numSegments;
      if (typeof numSegments !== 'number') throw new Error('UnsortedSegmentSum needs numSegments, a number');
      if (!(backend instanceof BackendWasm || backend instanceof tf.MathBackendCPU))
        throw new Error('the scatter-add kernel runs on wasm and cpu only');
      const rows = segmentIds.shape.reduce((a, b) => a * b, 1);
      const rowShape = x.shape.slice(segmentIds.shape.length);
      const width = rowShape.reduce((a, b) => a * b, 1);
      const values = backend.readSync(x.dataId) as Float32Array;
      const ids = backend.readSync(segmentIds.dataId) as Int32Array;
      const out = new Float32Array(numSegments * width);
      for (let i = 0; i < rows; i++) {
        const id = ids[i];
        if (id < 0 || id >= numSegments) continue; // TF semantics: out-of-range ids are dropped
        const src = i * width;
        const dst = id * width;
        for (let j = 0; j < width; j++) out[dst + j] += values[src + j];
      }
      const shape = [numSegments, ...rowShape];
      // The two backends name "a new tensor holding these values" differently (cpu's makeOutput takes other arguments).
      return backend instanceof BackendWasm
        ? backend.makeOutput(shape, x.dtype, undefined, out)
        : backend.makeTensorInfo(shape, x.dtype, out);
    },
  });
}
