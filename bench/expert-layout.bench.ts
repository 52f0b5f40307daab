/**
 * Why single-layer experts of up to MAX_WIDE_EXPERT_UNITS run as one wide layer (libs/mmoe/src/model/network.ts):
 * one training step (forward and gradient) of the experts and two softmax gates on wasm, laid out both ways.
 *
 *   npm run bench:experts [-- --units 16,64,128,256] [--batch 512] [--inputs 126]
 *
 * per-expert: a dense layer per expert, each gate's weights split into columns, a sum of scaled experts;
 * wide:       one [inputs, experts × units] layer viewed as [batch, experts, units], fused by a batched matmul.
 */
import * as tf from '@tensorflow/tfjs';

import { initBackend } from '@app/mmoe';

import { dense } from '../libs/mmoe/src/model/dense.layer';
import { cpuModel, flagValue, formatRatio, markdownTable, positiveIntFlag, stopwatch } from './bench.util';

const EXPERTS = 8;
const GATES = 2;

async function main(): Promise<void> {
  const backend = await initBackend('wasm');
  const batch = positiveIntFlag('batch', 512);
  const inputs = positiveIntFlag('inputs', 126);
  const unitsList = (flagValue('units') ?? '16,64,128,256').split(',').map((v) => {
    const units = Number(v);
    if (!Number.isInteger(units) || units < 1)
      throw new Error(`--units: each value must be a positive integer (got "${v}")`);
    return units;
  });
  const rows: string[][] = [];
  for (const units of unitsList) {
    const perExpert = await layout(batch, inputs, units, false);
    const wide = await layout(batch, inputs, units, true);
    rows.push([
      String(units),
      `${perExpert.ms.toFixed(2)} ms, ${perExpert.kernels} kernels`,
      `${wide.ms.toFixed(2)} ms, ${wide.kernels} kernels`,
      formatRatio(perExpert.ms / wide.ms),
    ]);
  }
  console.log(
    `\nCPU: ${cpuModel()}; ${backend.detail}; batch ${batch}, ${inputs} inputs, ${EXPERTS} experts, ${GATES} gates`,
  );
  console.log(markdownTable(['units', 'per-expert step', 'wide step', 'wide speed-up'], rows));
}

/** Median ms per step over 200 steps, and the kernels of one step. */
async function layout(
  batch: number,
  inputs: number,
  units: number,
  wide: boolean,
): Promise<{ ms: number; kernels: number }> {
  const x = tf.randomNormal([batch, inputs]) as tf.Tensor2D;
  const variable = (shape: number[]) => tf.variable(tf.randomNormal(shape, 0, 0.1));
  const experts = wide ? 1 : EXPERTS;
  const width = wide ? EXPERTS * units : units;
  const kernels = Array.from({ length: experts }, () => variable([inputs, width]));
  const biases = Array.from({ length: experts }, () => variable([width]));
  const gateKernels = Array.from({ length: GATES }, () => variable([inputs, EXPERTS]));
  const gateBiases = Array.from({ length: GATES }, () => variable([EXPERTS]));
  const d = (w: tf.Variable, b: tf.Variable, relu: boolean) => dense(x, w as tf.Tensor2D, b as tf.Tensor1D, relu);
  const loss = () => {
    const gates = gateKernels.map((w, g) => tf.softmax(d(w, gateBiases[g], false)));
    let fused: tf.Tensor[];
    if (wide) {
      const h = tf.reshape(d(kernels[0], biases[0], true), [batch, EXPERTS, units]) as tf.Tensor3D;
      fused = gates.map((g) =>
        tf.reshape(tf.matMul(tf.reshape(g, [batch, 1, EXPERTS]) as tf.Tensor3D, h), [batch, units]),
      );
    } else {
      const h = kernels.map((w, e) => d(w, biases[e], true));
      fused = gates.map((g) => {
        const columns = tf.split(g, EXPERTS, 1);
        return tf.addN(h.map((he, e) => tf.mul(he, columns[e])));
      });
    }
    return tf.addN(fused.map((f) => tf.sum(tf.square(f)))) as tf.Scalar;
  };
  const variables = [...kernels, ...biases, ...gateKernels, ...gateBiases];
  const step = () =>
    tf.tidy(() => {
      const { grads } = tf.variableGrads(loss, variables);
      for (const g of Object.values(grads)) g.dataSync();
    });
  for (let i = 0; i < 20; i++) step();
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    const elapsed = stopwatch();
    step();
    times.push(elapsed() * 1000);
  }
  const profile = await tf.profile(step);
  x.dispose();
  variables.forEach((v) => v.dispose());
  return { ms: times.sort((a, b) => a - b)[100], kernels: profile.kernels.length };
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
