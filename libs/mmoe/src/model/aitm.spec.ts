import * as tf from '@tensorflow/tfjs';

import { initBackend } from '../backend/backend';
import { FeatureEncoder, fitPreprocessing } from '../data/preprocessor';
import { auc } from '../eval/metrics';
import { MultiTaskModel } from '../mmoe.model';
import { parseModelSpec } from '../model-spec/model-spec';
import { ModelSpecInput } from '../model-spec/model-spec.schema';
import { createSelectionBiasWorld, funnelFeatures, sampleSelectionBias } from '../synthetic/selection-bias.data';
import { createSplitTrainingStep } from '../train/training-step';
import { Rng } from '../util/random';
import { BatchBuilder, disposeBatch } from './batch';
import { MultiTaskNetwork } from './network';

beforeAll(() => initBackend('wasm'));

/** click → conversion → repurchase, each step an AITM step over the previous one. */
const specOf = (calibratorWeight?: number, model: Partial<ModelSpecInput['model']> = {}) =>
  parseModelSpec({
    features: funnelFeatures,
    tasks: [
      { name: 'click', label: 'click', type: 'binary' },
      { name: 'conversion', label: 'conversion', type: 'binary', dependsOn: 'click', calibratorWeight },
      { name: 'repurchase', label: 'repurchase', type: 'binary', dependsOn: 'conversion', calibratorWeight },
    ],
    model: { architecture: 'mmoe', experts: 3, expertUnits: [16], towerUnits: [8], ...model },
    training: { epochs: 3, batchSize: 256, learningRate: 0.01, seed: 1, earlyStoppingPatience: 0 },
  });

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

describe('AITM (dependsOn) on a three-step funnel', () => {
  const world = createSelectionBiasWorld(1);

  it("adds each step's calibrator, weight × mean(max(p_step − p_previous, 0)), and explains it as p_step / p_previous", () => {
    const spec = specOf(2.5);
    const { table } = sampleSelectionBias(spec, world, 300, 1);
    const net = new MultiTaskNetwork(spec, fitPreprocessing(spec, table));
    const data = new FeatureEncoder(net.preprocessing).encodeTable(table);
    const inputs = new BatchBuilder(net, data, data.size).inputs(0, data.size);
    try {
      const out = net.forward(inputs, { training: false });
      const logits = out.logits.arraySync() as number[][];
      const conditional = out.conditional!.arraySync() as number[][];
      const probs = logits.map((row) => row.map(sigmoid));
      expect(out.calibrators.map((c) => c.task)).toEqual([1, 2]);
      out.calibrators.forEach(({ task, loss }) => {
        const excess = probs.reduce((s, p) => s + Math.max(p[task] - p[task - 1], 0), 0) / probs.length;
        expect(loss.dataSync()[0]).toBeCloseTo(2.5 * excess, 6);
      });
      // An untrained network breaks the funnel's order somewhere, so the cap at 1 is exercised too.
      expect(probs.some((p) => p[1] > p[0])).toBe(true);
      probs.forEach((p, i) => {
        expect(conditional[i][0]).toBeCloseTo(Math.min(1, p[1] / p[0]), 5);
        expect(conditional[i][1]).toBeCloseTo(Math.min(1, p[2] / p[1]), 5);
      });
    } finally {
      disposeBatch(inputs);
      net.dispose();
    }
  });

  it('learns every step over the entire space, reports P(step | previous step) on its positives', async () => {
    const spec = specOf();
    const train = sampleSelectionBias(spec, world, 8000, 1);
    const test = sampleSelectionBias(spec, world, 8000, 2);
    const before = tf.memory().numTensors;
    const { model, summary } = await MultiTaskModel.train(spec, train.table);
    try {
      expect(Object.keys(summary.history[0].tasks)).toEqual([
        'click',
        'conversion',
        'conversion|click',
        'repurchase',
        'repurchase|conversion',
      ]);
      const data = model.encode(test.table);
      const { scores } = model.predict(data);
      expect(auc(scores[1], test.clickAndConversion)).toBeGreaterThan(0.75);
      expect(auc(scores[2], test.clickConversionRepurchase)).toBeGreaterThan(0.75);
      const report = model.evaluate(data);
      const clicks = test.table.labelColumns()[0].reduce((n, y) => n + y, 0);
      expect(report.tasks.conversion.count).toBe(8000);
      expect(report.tasks.conversion.conditionalCount).toBe(clicks);
    } finally {
      model.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it("trains on the calibrators: a step's loss grows by weight × the mean excess of each step over its previous", () => {
    const { table } = sampleSelectionBias(specOf(), world, 500, 3);
    const lossWith = (calibratorWeight: number) => {
      const spec = specOf(calibratorWeight);
      const net = new MultiTaskNetwork(spec, fitPreprocessing(spec, table));
      const data = new FeatureEncoder(net.preprocessing).encodeTable(table);
      const builder = new BatchBuilder(net, data, data.size);
      const batch = builder.training(
        0,
        data.size,
        Uint32Array.from({ length: data.size }, (_, i) => i),
      );
      const step = createSplitTrainingStep(net);
      try {
        const probs = (net.forward(batch.inputs, { training: false }).logits.arraySync() as number[][]).map((row) =>
          row.map(sigmoid),
        );
        const excess = probs.reduce((s, p) => s + Math.max(p[1] - p[0], 0) + Math.max(p[2] - p[1], 0), 0);
        return { loss: step.gradients(batch, new Rng(1), new Float32Array(step.size)), excess: excess / probs.length };
      } finally {
        disposeBatch(batch);
        step.dispose();
        net.dispose();
      }
    };
    const [without, withCalibrator] = [lossWith(0), lossWith(3)];
    expect(without.excess).toBeGreaterThan(0);
    expect(withCalibrator.loss - without.loss).toBeCloseTo(3 * without.excess, 5);
  });
});
