import * as tf from '@tensorflow/tfjs';
import { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * A writable Float32Array view of a float32 tensor's storage on the wasm or cpu backend: wasm's heap, cpu's own
 * array. Kernels written in JS read and write through it without a copy. Take a fresh view for every use: a wasm heap
 * that grows detaches earlier views. `backend` is a kernel's (tfjs types it as a bare object).
 */
export function float32View(backend: object, tensor: tf.TensorInfo): Float32Array {
  if (tensor.dtype !== 'float32') throw new Error(`expected a float32 tensor, got ${tensor.dtype}`);
  const values =
    backend instanceof BackendWasm
      ? backend.typedArrayFromHeap(tensor)
      : backend instanceof tf.MathBackendCPU
        ? backend.data.get(tensor.dataId)?.values
        : undefined;
  if (values instanceof Float32Array) return values;
  throw new Error('this backend does not expose its tensors’ memory (only wasm and cpu do)');
}

/**
 * Tells the backend that a tensor's memory was written behind its back. wasm's XNNPACK matmuls keep a packed copy of
 * their weights per tensor id, which would otherwise go on multiplying by the old values: dropping the id's cache
 * entry (disposeData on the C++ side only) and registering the same memory again makes the next matmul repack.
 */
export function markWritten(backend: object, tensor: tf.TensorInfo): void {
  if (!(backend instanceof BackendWasm)) return;
  const entry = backend.dataIdMap.get(tensor.dataId);
  if (!entry) return;
  backend.wasm.tfjs.disposeData(entry.id);
  backend.wasm.tfjs.registerTensor(
    entry.id,
    tensor.shape.reduce((a, b) => a * b, 1),
    entry.memoryOffset,
  );
}
