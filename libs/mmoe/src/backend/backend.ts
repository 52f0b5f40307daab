import * as tf from '@tensorflow/tfjs';

import '@tensorflow/tfjs-backend-wasm';

import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

import { registerFusedAdamKernel } from '../train/fused-adam.optimizer';
import { installedNativeBinding, NATIVE_PACKAGES } from './native-binding';
import { registerScatterAddKernel } from './scatter-add.kernel';
import { guardWasmAllocations } from './wasm.guard';

export const BACKEND_NAMES = ['tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export interface BackendInfo {
  name: BackendName;
  /** Which package provides it, or why the preferred one was not used. */
  detail: string;
}

let active: Promise<BackendInfo> | undefined;

/**
 * Picks the fastest engine available: native TensorFlow (GPU build first), else wasm, else the pure-JS cpu backend.
 * `forced` (from MMOE_BACKEND in the callers' config) insists on one and fails when it cannot be had.
 * Idempotent: every caller in a process shares the first choice.
 */
export function initBackend(forced?: BackendName): Promise<BackendInfo> {
  active ??= chooseBackend(forced);
  return active;
}

async function chooseBackend(forced?: BackendName): Promise<BackendInfo> {
  const candidates: BackendName[] = forced ? [forced] : [...BACKEND_NAMES];
  const refused: string[] = [];
  for (const name of candidates) {
    const detail = await tryBackend(name);
    if (detail.ok) return { name, detail: [detail.detail, ...refused].join('; ') };
    refused.push(`${name} unavailable: ${detail.detail}`);
  }
  active = undefined;
  throw new Error(`No TensorFlow.js backend could be initialised (${refused.join('; ')})`);
}

async function tryBackend(name: BackendName): Promise<{ ok: boolean; detail: string }> {
  if (name === 'tensorflow') {
    const pkg = loadNativeBinding();
    if (!pkg) return { ok: false, detail: `none of ${NATIVE_PACKAGES.join(', ')} is installed` };
    return (await tf.setBackend('tensorflow'))
      ? { ok: true, detail: `native TensorFlow from ${pkg}` }
      : { ok: false, detail: `${pkg} failed to initialise` };
  }
  if (!(await tf.setBackend(name))) return { ok: false, detail: 'setBackend refused' };
  await tf.ready();
  if (name === 'wasm') guardWasmAllocations(tf.backend() as BackendWasm);
  registerScatterAddKernel(name);
  registerFusedAdamKernel(name);
  return { ok: true, detail: name === 'wasm' ? '@tensorflow/tfjs-backend-wasm (XNNPACK, SIMD)' : 'pure JavaScript' };
}

function loadNativeBinding(): string | undefined {
  const pkg = installedNativeBinding();
  // Importing the binding registers the 'tensorflow' backend on the shared tfjs-core instance. A run-time require:
  // the package is optional and absent from most installs.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (pkg) require(pkg);
  return pkg;
}

export function parseBackendName(value: string | undefined): BackendName | undefined {
  if (value === undefined || value === '') return undefined;
  if ((BACKEND_NAMES as readonly string[]).includes(value)) return value as BackendName;
  throw new Error(`MMOE_BACKEND must be one of ${BACKEND_NAMES.join(', ')} (got "${value}")`);
}
