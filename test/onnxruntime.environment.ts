import type { EnvironmentContext, JestEnvironmentConfig } from '@jest/environment';
import { TestEnvironment } from 'jest-environment-node';

/**
 * The Jest environment of every spec: Node's, made safe for onnxruntime-node.
 * The native binding makes its output typed arrays in Node's main realm, and onnxruntime-common, loaded in jest's
 * sandbox, checks them with `instanceof` against the sandbox's own constructors, which fails. Jest already shares
 * ArrayBuffer and Uint8Array with the sandbox for this reason; this shares the other typed arrays too.
 */
export default class OnnxRuntimeTestEnvironment extends TestEnvironment {
  constructor(config: JestEnvironmentConfig, context: EnvironmentContext) {
    super(config, context);
    const shared = [
      Int8Array,
      Uint8ClampedArray,
      Int16Array,
      Uint16Array,
      Int32Array,
      Uint32Array,
      Float32Array,
      Float64Array,
      BigInt64Array,
      BigUint64Array,
    ];
    for (const typedArray of shared) this.global[typedArray.name] = typedArray;
  }
}
