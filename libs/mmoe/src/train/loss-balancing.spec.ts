import * as tf from '@tensorflow/tfjs';

import { initBackend } from '../backend/backend';
import { FeatureEncoder, fitPreprocessing } from '../data/preprocessor';
import { RawTable } from '../data/raw-table';
import { parseModelSpec } from '../model-spec/model-spec';
import { ModelSpecInput } from '../model-spec/model-spec.schema';
import { BatchBuilder, disposeBatch } from '../model/batch';
import { MultiTaskNetwork } from '../model/network';
import { Rng } from '../util/random';
import { GradNormState, gradNormUpdate, projectConflicts, ScalarAdam } from './loss-balancing';
import { trainNetwork } from './trainer';
import { createSplitTrainingStep } from './training-step';

beforeAll(() => initBackend('wasm'));

describe('projectConflicts (PCGrad)', () => {
  const project = (...gradients: number[][]) => {
    const out = new Float32Array(gradients[0].length);
    const counts = projectConflicts(
      gradients.map((g) => Float32Array.from(g)),
      new Rng(1),
      out,
    );
    return { sum: Array.from(out), ...counts };
  };

  it('sums gradients that do not conflict as they are', () => {
    expect(project([1, 0], [0, 2])).toEqual({ sum: [1, 2], conflicts: 0, pairs: 2 });
    expect(project([1, 1], [2, 0.5])).toEqual({ sum: [3, 1.5], conflicts: 0, pairs: 2 });
  });

  it('removes from each gradient its component along a conflicting one', () => {
    // g1·g2 = -1: g1 − (−1/2)·g2 = (0.5, 0.5); g2 − (−1/1)·g1 = (0, 1).
    const { sum, conflicts, pairs } = project([1, 0], [-1, 1]);
    expect(sum[0]).toBeCloseTo(0.5, 6);
    expect(sum[1]).toBeCloseTo(1.5, 6);
    expect([conflicts, pairs]).toEqual([2, 2]);
  });

  it('never steps against either of two tasks (their sum would, for some of these pairs)', () => {
    const rng = new Rng(3);
    const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, v, k) => s + v * b[k], 0);
    let plainAgainst = 0;
    for (let trial = 0; trial < 50; trial++) {
      const [g1, g2] = [0, 1].map(() => Float32Array.from({ length: 5 }, () => rng.gaussian() * (1 + 4 * rng.next())));
      const out = new Float32Array(5);
      projectConflicts([g1, g2], rng, out);
      for (const g of [g1, g2]) {
        expect(dot(out, g)).toBeGreaterThanOrEqual(-1e-5);
        if (
          dot(
            g1.map((v, k) => v + g2[k]),
            g,
          ) < 0
        )
          plainAgainst++;
      }
    }
    expect(plainAgainst).toBeGreaterThan(0);
  });
});

describe('gradNormUpdate', () => {
  const update = (weights: number[], norms: number[], losses: number[], initial: number[], steps = 20) => {
    const state: GradNormState = {
      weights: Float64Array.from(weights),
      initialLoss: Float64Array.from(initial),
    };
    const adam = new ScalarAdam(weights.length, 0.01);
    for (let i = 0; i < steps; i++) gradNormUpdate(state, norms, losses, 1.5, adam);
    return Array.from(state.weights);
  };

  it('leaves the weights where nothing differs: equal gradient norms, equal training rates', () => {
    update([1, 1], [2, 2], [0.5, 0.8], [1, 1.6]).forEach((w) => expect(w).toBeCloseTo(1, 6));
  });

  it('raises the weight of the task that trains slower, lowers that of the larger gradient; the sum stays T', () => {
    const slower = update([1, 1], [2, 2], [0.9, 0.3], [1, 1]); // task 0 kept 90 % of its loss, task 1 30 %
    expect(slower[0]).toBeGreaterThan(1);
    expect(slower[0] + slower[1]).toBeCloseTo(2, 9);
    const larger = update([1, 1], [10, 1], [0.5, 0.5], [1, 1]);
    expect(larger[0]).toBeLessThan(1);
    expect(larger[0] + larger[1]).toBeCloseTo(2, 9);
  });

  it('records a task’s first loss when it first has labels, and leaves the weights alone until two tasks do', () => {
    const state: GradNormState = { weights: Float64Array.of(1, 1), initialLoss: Float64Array.of(NaN, NaN) };
    gradNormUpdate(state, [1, 0], [0.7, 0], 1, new ScalarAdam(2, 0.01));
    expect(Array.from(state.initialLoss)).toEqual([0.7, NaN]);
    expect(Array.from(state.weights)).toEqual([1, 1]);
  });
});

/** Two binary tasks and a regression over a shared embedding; noisy top-k gates (a balance loss) and an AITM step. */
const specOf = (training: Partial<ModelSpecInput['training']>, model: Partial<ModelSpecInput['model']> = {}) =>
  parseModelSpec({
    features: [
      { name: 'c', type: 'categorical', embeddingDim: 4 },
      { name: 'x', type: 'numeric' },
    ],
    tasks: [
      { name: 'click', label: 'click', type: 'binary' },
      { name: 'buy', label: 'buy', type: 'binary', dependsOn: 'click' },
      { name: 'spend', label: 'spend', type: 'regression', weight: 0.5 },
    ],
    model: {
      architecture: 'mmoe',
      experts: 3,
      expertUnits: [8],
      towerUnits: [4],
      gate: { type: 'noisy-top-k', k: 2 },
      ...model,
    },
    training: { epochs: 2, batchSize: 128, learningRate: 0.01, seed: 4, earlyStoppingPatience: 0, ...training },
  });

function table(spec: ReturnType<typeof specOf>, rows: number, seed: number): RawTable {
  const rng = new Rng(seed);
  const t = new RawTable(spec);
  for (let i = 0; i < rows; i++) {
    const c = rng.int(10);
    const x = rng.gaussian();
    const click = rng.next() < 1 / (1 + Math.exp(-(x + (c % 3) - 1)));
    const buy = click && rng.next() < 1 / (1 + Math.exp(x - 1));
    // Opposed to the click on the shared x: the regression pulls the shared layer the other way.
    t.add({ c: `c${c}`, x, click: click ? 1 : 0, buy: buy ? 1 : 0, spend: 100 - 40 * x + 5 * rng.gaussian() });
  }
  return t;
}

describe('gradient-level balancing on a network', () => {
  /** The step's contribution on one batch, from the same initial weights and the same gate noise. */
  function contribution(spec: ReturnType<typeof specOf>) {
    const raw = table(spec, 300, 1);
    const net = new MultiTaskNetwork(spec, fitPreprocessing(spec, raw));
    const data = new FeatureEncoder(net.preprocessing).encodeTable(raw);
    const batch = new BatchBuilder(net, data, data.size).training(
      0,
      data.size,
      Uint32Array.from({ length: data.size }, (_, i) => i),
    );
    const step = createSplitTrainingStep(net);
    try {
      const into = new Float32Array(step.size);
      // The multi-pass methods draw one seed per step and give every pass a generator of it.
      const method = spec.training.lossBalancing.method;
      const rng = method === 'fixed' ? new Rng(new Rng(9).seed()) : new Rng(9);
      const loss = step.gradients(batch, rng, into);
      return { loss, into, parameters: [...net.params.values()], shared: net.lastSharedKernels() };
    } finally {
      disposeBatch(batch);
      step.dispose();
      net.dispose();
    }
  }
  const close = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    expect(a.length).toBe(b.length);
    let scale = 0;
    for (let k = 0; k < b.length; k++) scale = Math.max(scale, Math.abs(b[k]));
    let worst = 0;
    for (let k = 0; k < b.length; k++) worst = Math.max(worst, Math.abs(a[k] - b[k]));
    expect(worst / scale).toBeLessThan(1e-5);
  };

  it('pcgrad: the task gradients (calibrator and a share of the balance loss each) sum to the fixed gradient', () => {
    const fixed = contribution(specOf({}));
    const pcgrad = contribution(specOf({ lossBalancing: { method: 'pcgrad' } }));
    const P = fixed.into.length;
    expect(pcgrad.into.length).toBe(3 * P);
    const sum = new Float32Array(P);
    for (let t = 0; t < 3; t++) for (let k = 0; k < P; k++) sum[k] += pcgrad.into[t * P + k];
    close(sum, fixed.into);
    expect(pcgrad.loss).toBeCloseTo(fixed.loss, 5);
  });

  it('gradnorm: at weights 1 the full gradient is the fixed one, and the tasks’ last-shared-layer gradients sum to its part', () => {
    const fixed = contribution(specOf({}));
    const gradnorm = contribution(specOf({ lossBalancing: { method: 'gradnorm', alpha: 1 } }));
    const P = fixed.into.length;
    const S = gradnorm.shared.reduce((s, v) => s + v.size, 0);
    expect(gradnorm.into.length).toBe(P + 3 * S + 3);
    close(gradnorm.into.subarray(0, P), fixed.into);
    // The experts' one wide layer is the last shared layer: one variable.
    expect(gradnorm.shared).toHaveLength(1);
    const before = gradnorm.parameters.slice(0, gradnorm.parameters.indexOf(gradnorm.shared[0]));
    const offset = before.reduce((s, v) => s + v.size, 0);
    const sum = new Float32Array(S);
    for (let t = 0; t < 3; t++) for (let k = 0; k < S; k++) sum[k] += gradnorm.into[P + t * S + k];
    close(sum, fixed.into.subarray(offset, offset + S));
    // Each task's loss: positive, and with the balance loss they make up the total.
    const losses = Array.from(gradnorm.into.subarray(P + 3 * S));
    losses.forEach((l) => expect(l).toBeGreaterThan(0));
    expect(losses.reduce((s, l) => s + l, 0)).toBeLessThan(gradnorm.loss);
  });

  it.each(['uncertainty', 'gradnorm', 'pcgrad'] as const)(
    'trains with %s: each epoch’s task weights in the history, no tensor left behind',
    async (method) => {
      const spec = specOf({ lossBalancing: { method }, epochs: 3 });
      const raw = table(spec, 1200, 2);
      const train = Uint32Array.from({ length: 1000 }, (_, i) => i);
      const net = new MultiTaskNetwork(spec, fitPreprocessing(spec, raw, train));
      const encoder = new FeatureEncoder(net.preprocessing);
      const before = tf.memory().numTensors;
      const { summary } = await trainNetwork(
        net,
        encoder.encodeTable(raw, train),
        encoder.encodeTable(
          raw,
          Uint32Array.from({ length: 200 }, (_, i) => 1000 + i),
        ),
        { threads: 1 },
      );
      expect(tf.memory().numTensors).toBe(before);
      net.dispose();
      const weights = summary.history.map((h) => Object.values(h.taskWeights!));
      expect(weights).toHaveLength(3);
      // Learnt ones move from the spec's (1, 1, 0.5) over the epochs; PCGrad acts on gradients, not weights.
      if (method !== 'pcgrad') expect(weights[2]).not.toEqual([1, 1, 0.5]);
      if (method === 'gradnorm') weights.forEach((w) => expect(w[0] + w[1] + w[2] / 0.5).toBeCloseTo(3, 6));
      if (method === 'pcgrad') {
        expect(weights[2]).toEqual([1, 1, 0.5]);
        summary.history.forEach((h) => expect(h.gradientConflicts).toBeGreaterThan(0));
      }
    },
    60_000,
  );
});
