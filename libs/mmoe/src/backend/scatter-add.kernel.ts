import * as tf from '@tensorflow/tfjs';

/**
 * wasm has no UnsortedSegmentSum kernel, and that op is the gradient of `gather`, i.e. of every embedding lookup.
 * This is a plain scatter-add over the wasm heap: out[ids[i]] += x[i] for each row i.
 */
export function registerScatterAddKernel(backendName: string): void {
  if (tf.getKernel('UnsortedSegmentSum', backendName)) return;
  tf.registerKernel({
    kernelName: 'UnsortedSegmentSum',
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
      const numSegments = (attrs as unknown as { numSegments: number }).numSegments;
      const wasm = backend as unknown as WasmHeapBackend;
      const rows = segmentIds.shape.reduce((a, b) => a * b, 1);
      const rowShape = x.shape.slice(segmentIds.shape.length);
      const width = rowShape.reduce((a, b) => a * b, 1);
      const values = wasm.typedArrayFromHeap(x) as Float32Array;
      const ids = wasm.typedArrayFromHeap(segmentIds) as Int32Array;
      const out = new Float32Array(numSegments * width);
      for (let i = 0; i < rows; i++) {
        const id = ids[i];
        if (id < 0 || id >= numSegments) continue; // TF semantics: out-of-range ids are dropped
        const src = i * width;
        const dst = id * width;
        for (let j = 0; j < width; j++) out[dst + j] += values[src + j];
      }
      return wasm.makeOutput([numSegments, ...rowShape], x.dtype, undefined, out);
    },
  });
}

interface WasmHeapBackend {
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array;
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: Float32Array): tf.TensorInfo;
}
