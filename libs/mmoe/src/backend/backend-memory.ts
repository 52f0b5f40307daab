import * as tf from '@tensorflow/tfjs';

/**
 * A writable Float32Array view of a float32 tensor's storage on the wasm or cpu backend: wasm's heap, cpu's own
 * array. Kernels written in JS read and write through it without a copy. Take a fresh view for every use: a wasm heap
 * that grows detaches earlier views.
 */
export function float32View(backend: tf.KernelBackend, tensor: tf.TensorInfo): Float32Array {
  if (tensor.dtype !== 'float32') throw new Error(`expected a float32 tensor, got ${tensor.dtype}`);
  const memory = backend as unknown as BackendStorage;
  if (memory.typedArrayFromHeap) return memory.typedArrayFromHeap(tensor) as Float32Array;
  const values = memory.data?.get(tensor.dataId)?.values;
  if (values instanceof Float32Array) return values;
  throw new Error('this backend does not expose its tensors’ memory (only wasm and cpu do)');
}

/**
 * Tells the backend that a tensor's memory was written behind its back. wasm's XNNPACK matmuls keep a packed copy of
 * their weights per tensor id, which would otherwise go on multiplying by the old values: dropping the id's cache
 * entry (disposeData on the C++ side only) and registering the same memory again makes the next matmul repack.
 */
export function markWritten(backend: tf.KernelBackend, tensor: tf.TensorInfo): void {
  const memory = backend as unknown as BackendStorage;
  const entry = memory.dataIdMap?.get(tensor.dataId);
  if (!memory.wasm || !entry) return;
  memory.wasm.tfjs.disposeData(entry.id);
  memory.wasm.tfjs.registerTensor(
    entry.id,
    tensor.shape.reduce((a, b) => a * b, 1),
    entry.memoryOffset,
  );
}

interface BackendStorage {
  /** wasm */
  typedArrayFromHeap?(tensor: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  dataIdMap?: { get(dataId: tf.DataId): { id: number; memoryOffset: number } | undefined };
  wasm?: {
    tfjs: { disposeData(id: number): void; registerTensor(id: number, size: number, memoryOffset: number): void };
  };
  /** cpu */
  data?: { get(dataId: tf.DataId): { values?: unknown } | undefined };
}
