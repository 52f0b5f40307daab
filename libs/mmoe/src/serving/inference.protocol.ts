/** Messages between an InferencePool and its threads (inference.worker.ts). Every request carries an id its reply echoes. */

/** A tensor as it crosses threads: its element type, its values and its shape. */
export interface WireTensor {
  type: 'int32' | 'float32';
  data: Int32Array | Float32Array;
  dims: number[];
}

export type InferenceRequest =
  | { kind: 'load'; id: number; session: number; onnx: Uint8Array }
  | { kind: 'run'; id: number; session: number; feeds: Record<string, WireTensor>; fetches: string[] }
  | { kind: 'release'; id: number; session: number };

export type InferenceReply =
  | { kind: 'loaded'; id: number; inputs: string[]; outputs: string[] }
  | { kind: 'ran'; id: number; outputs: Record<string, Float32Array> }
  | { kind: 'released'; id: number }
  | { kind: 'failed'; id: number; message: string };

/** Each value of a session's metadata as "name: type[shape]", the form the scorers compare with the spec's. */
export function signatureOf(
  values: readonly { name: string; isTensor: boolean; type?: string; shape?: readonly (number | string)[] }[],
): string[] {
  return values.map((v) =>
    v.isTensor ? `${v.name}: ${v.type}[${(v.shape ?? []).join(', ')}]` : `${v.name}: not a tensor`,
  );
}
