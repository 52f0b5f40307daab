import * as tf from '@tensorflow/tfjs';

import { initBackend } from '../../backend/backend';
import { WasmMemoryError } from '../../backend/wasm.guard';
import { EncodedDataset, FeatureEncoder, fitPreprocessing } from '../../data/preprocessor';
import { RawTable } from '../../data/raw-table';
import { parseModelSpec } from '../../model-spec/model-spec';
import { ModelSpec } from '../../model-spec/model-spec.schema';
import { MultiTaskNetwork } from '../../model/network';
import { Rng } from '../../util/random';
import { TrainingCancelledError, trainNetwork } from '../trainer';
import { liveTrainingThreads, replicaError } from './data-parallel.runner';

const spec = parseModelSpec({
  features: [
    ...Array.from({ length: 6 }, (_, j) => ({ name: `c${j}`, type: 'categorical', embeddingDim: 4 })),
    { name: 'x', type: 'numeric' },
    { name: 'y', type: 'numeric' },
    { name: 'tags', type: 'sequence', embeddingDim: 4, maxLength: 5 },
  ],
  tasks: [
    { name: 'click', label: 'click', type: 'binary' },
    { name: 'like', label: 'like', type: 'binary' },
  ],
  model: { architecture: 'mmoe', experts: 4, expertUnits: [16], towerUnits: [8] },
  training: { epochs: 1, batchSize: 256, learningRate: 0.01, seed: 3, earlyStoppingPatience: 0 },
});

/**
 * Learnable labels (per-value effects and numerics), a sequence feature of 0–3 tags (shared as CSR columns); some
 * `like` labels missing, so the masks differ per shard.
 */
function dataset(rows: number) {
  const rng = new Rng(11);
  const effects = Array.from({ length: 6 }, () => Float64Array.from({ length: 20 }, () => rng.gaussian()));
  const table = new RawTable(spec);
  for (let i = 0; i < rows; i++) {
    const record: Record<string, string | number> = { x: rng.gaussian(), y: rng.gaussian() };
    record.tags = Array.from({ length: rng.int(4) }, () => `t${rng.int(9)}`).join('|');
    let z = 0.5 * Number(record.x);
    for (let j = 0; j < 6; j++) {
      const v = rng.int(20);
      record[`c${j}`] = `v${v}`;
      z += effects[j][v];
    }
    record.click = rng.next() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
    if (rng.next() < 0.8) record.like = rng.next() < 1 / (1 + Math.exp(z - Number(record.y))) ? 1 : 0;
    table.add(record);
  }
  const train = Uint32Array.from({ length: rows - 1000 }, (_, i) => i);
  const preprocessing = fitPreprocessing(spec, table, train);
  const encoder = new FeatureEncoder(preprocessing);
  return {
    preprocessing,
    train: encoder.encodeTable(table, train),
    valid: encoder.encodeTable(
      table,
      Uint32Array.from({ length: 1000 }, (_, i) => rows - 1000 + i),
    ),
  };
}

describe('data-parallel training (worker threads, wasm)', () => {
  // 5,000 training rows, one of them in a last batch of 136: shards of unequal size.
  const data = dataset(6000);
  beforeAll(() => initBackend('wasm'));

  /** One epoch from the same initial weights on one thread, then on two: each run's summary and per-step losses. */
  async function onOneAndTwoThreads(of: ModelSpec, train: EncodedDataset) {
    const runs = [];
    for (const threads of [1, 2]) {
      const net = new MultiTaskNetwork(of, data.preprocessing);
      const losses: number[] = [];
      const { summary } = await trainNetwork(net, train, data.valid, {
        threads,
        progressEvery: 1,
        onProgress: (p) => losses.push(p.loss),
      });
      runs.push({ summary, losses });
      net.dispose();
    }
    return runs;
  }

  it.each([
    ['', false],
    [', with sample weights (each shard’s loss over the whole batch’s weight)', true],
  ])(
    'matches one thread up to float summation order: same seed and data, one epoch%s',
    async (_, weighted) => {
      const rng = new Rng(5);
      const train = weighted
        ? { ...data.train, weights: Float32Array.from({ length: data.train.size }, () => 0.5 + rng.next()) }
        : data.train;
      const [single, parallel] = await onOneAndTwoThreads(spec, train);
      expect(single.summary.threads).toBe(1);
      expect(parallel.summary.threads).toBe(2);
      expect(parallel.summary.parallel).toEqual(
        expect.objectContaining({ threads: 2, startupMs: expect.any(Number), handoffMs: expect.any(Number) }),
      );
      expect(parallel.losses).toHaveLength(single.losses.length);
      parallel.losses.forEach((loss, i) =>
        expect(Math.abs(loss - single.losses[i]) / single.losses[i]).toBeLessThan(1e-4),
      );
      for (const task of ['click', 'like'])
        expect(Math.abs(parallel.summary.valid.tasks[task].auc - single.summary.valid.tasks[task].auc)).toBeLessThan(
          1e-3,
        );
      expect(single.summary.valid.tasks.click.auc).toBeGreaterThan(0.7); // it learnt something
      expect(liveTrainingThreads()).toBe(0);
    },
    120_000,
  );

  it.each(['gradnorm', 'pcgrad'] as const)(
    'with %s, matches one thread too: the replicas exchange the per-task parts and balance alike',
    async (method) => {
      const balanced = parseModelSpec({ ...spec, training: { ...spec.training, lossBalancing: { method } } });
      const [single, parallel] = await onOneAndTwoThreads(balanced, data.train);
      expect(parallel.summary.threads).toBe(2);
      parallel.losses.forEach((loss, i) =>
        expect(Math.abs(loss - single.losses[i]) / single.losses[i]).toBeLessThan(1e-4),
      );
      const [one, two] = [single, parallel].map((r) => r.summary.history[0]);
      for (const task of ['click', 'like']) {
        expect(two.taskWeights![task]).toBeCloseTo(one.taskWeights![task], 3);
        expect(Math.abs(parallel.summary.valid.tasks[task].auc - single.summary.valid.tasks[task].auc)).toBeLessThan(
          1e-3,
        );
      }
      if (method === 'gradnorm') expect(one.taskWeights!.click + one.taskWeights!.like).toBeCloseTo(2, 6);
      else expect(two.gradientConflicts).toBeCloseTo(one.gradientConflicts!, 6);
      expect(liveTrainingThreads()).toBe(0);
    },
    120_000,
  );

  it('goes on from an Adam state on every replica, as one thread does', async () => {
    const first = new MultiTaskNetwork(spec, data.preprocessing);
    await trainNetwork(first, data.train, data.valid, { threads: 1, keepOptimizer: true });
    const steps = Math.ceil(data.train.size / spec.training.batchSize);
    const state = first.optimizerState!;
    expect(state.step).toBe(steps);
    const weights = first.snapshot();
    first.dispose();
    const runs = [];
    for (const [threads, optimizer] of [
      [1, state],
      [2, state],
      [2, undefined],
    ] as const) {
      const net = new MultiTaskNetwork(spec, data.preprocessing);
      net.restore(weights);
      const losses: number[] = [];
      const { summary } = await trainNetwork(net, data.train, data.valid, {
        threads,
        optimizer,
        keepOptimizer: true,
        progressEvery: 1,
        onProgress: (p) => losses.push(p.loss),
      });
      expect(summary.optimizer).toBe(optimizer ? 'continued' : 'fresh');
      runs.push({ losses, step: net.optimizerState!.step });
      net.dispose();
    }
    const [single, parallel, fresh] = runs;
    expect([single.step, parallel.step, fresh.step]).toEqual([2 * steps, 2 * steps, steps]);
    // A replica that started a fresh Adam would step apart from this thread's, and the summed loss with it.
    parallel.losses.forEach((loss, i) =>
      expect(Math.abs(loss - single.losses[i]) / single.losses[i]).toBeLessThan(1e-4),
    );
    expect(Math.abs(fresh.losses[steps - 1] - single.losses[steps - 1]) / single.losses[steps - 1]).toBeGreaterThan(
      1e-3,
    );
    expect(liveTrainingThreads()).toBe(0);
  }, 120_000);

  it('leaves no thread running when the job is cancelled', async () => {
    const net = new MultiTaskNetwork(spec, data.preprocessing);
    let steps = 0;
    const run = trainNetwork(net, data.train, data.valid, {
      threads: 2,
      progressEvery: 1,
      shouldStop: () => ++steps > 3,
    });
    await expect(run).rejects.toBeInstanceOf(TrainingCancelledError);
    expect(liveTrainingThreads()).toBe(0);
    net.dispose();
  }, 60_000);

  it('leaves no thread running when the job fails', async () => {
    const net = new MultiTaskNetwork(spec, data.preprocessing);
    const run = trainNetwork(net, data.train, data.valid, {
      threads: 2,
      progressEvery: 2,
      onProgress: () => {
        throw new Error('progress store unavailable');
      },
    });
    await expect(run).rejects.toThrow('progress store unavailable');
    expect(liveTrainingThreads()).toBe(0);
    net.dispose();
  }, 60_000);

  it("reports a thread's running out of wasm memory as such, so that the job is the input's fault", () => {
    const reply = {
      kind: 'failed' as const,
      message: 'training thread 1: a tensor of 1.00 GiB does not fit',
      outOfMemory: true,
    };
    const failure = replicaError(reply.message, reply);
    expect(failure).toBeInstanceOf(WasmMemoryError);
    expect(replicaError(`data-parallel training failed: ${failure.message}`, failure)).toBeInstanceOf(WasmMemoryError);
    expect(replicaError('a thread exited', new Error('exit 1'))).not.toBeInstanceOf(WasmMemoryError);
  });

  it('leaves no tensor behind on the main thread', async () => {
    const net = new MultiTaskNetwork(spec, data.preprocessing);
    const before = tf.memory().numTensors;
    await trainNetwork(net, data.train, data.valid, { threads: 2 });
    expect(tf.memory().numTensors).toBe(before);
    net.dispose();
  }, 60_000);
});
