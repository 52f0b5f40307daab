import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';

import { initBackend } from '../backend/backend';
import { CsvFormatError } from '../data/csv.reader';
import { FeatureEncoder, fitPreprocessing } from '../data/preprocessor';
import { RawTable, RawValue, RowError } from '../data/raw-table';
import { loadTable, TableInputError } from '../data/table.loader';
import { binaryMetrics } from '../eval/metrics';
import { MultiTaskModel } from '../mmoe.model';
import { parseModelSpec } from '../model-spec/model-spec';
import { ModelSpecInput } from '../model-spec/model-spec.schema';
import { createMultiTaskLoss } from '../model/loss';
import { Rng } from '../util/random';

beforeAll(() => initBackend('wasm'));

const specOf = (training: Partial<ModelSpecInput['training']> = {}) =>
  parseModelSpec({
    features: [{ name: 'group', type: 'categorical', embeddingDim: 2 }],
    tasks: [
      { name: 'click', label: 'click', type: 'binary' },
      { name: 'secs', label: 'secs', type: 'regression' },
    ],
    model: { architecture: 'mmoe', experts: 2, expertUnits: [4], towerUnits: [] },
    training: { epochs: 8, batchSize: 128, learningRate: 0.02, seed: 2, earlyStoppingPatience: 0, ...training },
  });
const weighted = specOf({ sampleWeight: 'w' });

const tableOf = (rows: Record<string, RawValue>[], spec = weighted) => {
  const table = new RawTable(spec);
  rows.forEach((r) => table.add(r));
  return table;
};

describe('sample weights in the data', () => {
  it('read a missing weight as 1, and refuse a negative, non-finite or textual one naming the column', () => {
    const table = tableOf([{ group: 'a', w: '2.5' }, { group: 'a' }, { group: 'b', w: '0' }]);
    expect(Array.from(table.weightColumn()!)).toEqual([2.5, 1, 0]);
    expect(tableOf([{ group: 'a', w: '7' }], specOf()).weightColumn()).toBeUndefined();
    for (const w of ['-1', 'Infinity', 'NaN', 'heavy']) expect(() => tableOf([{ group: 'a', w }])).toThrow(RowError);
    expect(() => tableOf([{ group: 'a', w: '-0.5' }])).toThrow('w: a sample weight must be >= 0 (got -0.5)');
    expect(() => tableOf([{ group: 'a', w: '1e-300' }])).toThrow(
      'w: a sample weight must be 0 or at least 1e-30 (got 1e-300)',
    );
  });

  it('name the line and column of a bad weight in a CSV file, and the spec field of a missing column', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weights-'));
    const file = join(dir, 'data.csv');
    writeFileSync(file, 'group,click,secs,w\na,1,3,1\nb,0,2,-4\n');
    await expect(loadTable(file, weighted, 'fail', true)).rejects.toThrow(
      new CsvFormatError(file, 3, 4, 'w: a sample weight must be >= 0 (got -4)'),
    );
    writeFileSync(file, 'group,click,secs\na,1,3\n');
    await expect(loadTable(file, weighted, 'fail', true)).rejects.toThrow(
      new TableInputError(`${file}: the header lacks "w" (training.sampleWeight)`),
    );
    // Scoring needs no weights.
    expect((await loadTable(file, weighted, 'fail', false)).table.size).toBe(1);
  });

  it('are encoded with the rows they belong to', () => {
    const table = tableOf([{ group: 'a', w: '2' }, { group: 'b', w: '3' }, { group: 'c' }]);
    const encoded = new FeatureEncoder(fitPreprocessing(weighted, table)).encodeTable(table, Uint32Array.from([2, 0]));
    expect(Array.from(encoded.weights!)).toEqual([1, 2]);
  });
});

describe('the weighted loss', () => {
  it('is each task’s weighted mean over its labelled examples, unlabelled ones still left out', () => {
    const loss = createMultiTaskLoss(specOf());
    // Rows: weights 1, 3, 0.5; the second row has no click label, the third no secs label.
    const mask = tf.tensor2d([1, 1, 0, 3, 0.5, 0], [3, 2]);
    const logits = tf.tensor2d([0, 1, 2, -1, -1, 5], [3, 2]);
    const labels = tf.tensor2d([1, 0, 0, 1, 0, 0], [3, 2]);
    const perTask = loss.compute(logits, labels, mask).perTask.arraySync() as number[];
    const ce = (z: number, y: number) => Math.max(z, 0) - z * y + Math.log1p(Math.exp(-Math.abs(z)));
    expect(perTask[0]).toBeCloseTo((1 * ce(0, 1) + 0.5 * ce(-1, 0)) / 1.5, 5);
    expect(perTask[1]).toBeCloseTo((1 * (1 - 0) ** 2 + 3 * (-1 - 1) ** 2) / 4, 5);
    // Weights summing below 1 are not clipped to 1.
    const small = loss.compute(logits, labels, tf.tensor2d([0.1, 0.1, 0, 0.1, 0.1, 0], [3, 2])).perTask;
    expect((small.arraySync() as number[])[0]).toBeCloseTo((ce(0, 1) + ce(-1, 0)) / 2, 5);
    loss.dispose();
  });
});

/** Clicks at 50 % in both groups; in group a every click weighs 3: its weighted click rate is 0.75. */
function clicks(n: number, seed: number, spec = weighted): RawTable {
  const rng = new Rng(seed);
  return tableOf(
    Array.from({ length: n }, () => {
      const group = rng.next() < 0.5 ? 'a' : 'b';
      const click = rng.next() < 0.5 ? 1 : 0;
      return { group, click, secs: 10 + rng.gaussian(), w: group === 'a' && click ? 3 : 1 };
    }),
    spec,
  );
}

describe('weighted training', () => {
  it('moves predictions to the weighted optimum, and weighted metrics follow the weights', async () => {
    const predictions = async (spec: ReturnType<typeof specOf>) => {
      const { model } = await MultiTaskModel.train(spec, clicks(4000, 1, spec));
      try {
        const test = clicks(2000, 2, spec);
        const [a, b] = model.predictRecords([{ group: 'a' }, { group: 'b' }]).scores[0];
        return { a, b, report: model.evaluate(test), scores: model.predict(model.encode(test)).scores[0], test };
      } finally {
        model.dispose();
      }
    };
    const plain = await predictions(specOf());
    const heavy = await predictions(weighted);
    expect(plain.a).toBeCloseTo(0.5, 1);
    expect(heavy.a).toBeCloseTo(0.75, 1);
    expect(heavy.b).toBeCloseTo(0.5, 1);

    const withMetrics = await predictions(specOf({ sampleWeight: 'w', weightedMetrics: true }));
    const labels = Float32Array.from(withMetrics.test.labelColumns()[0]);
    const expected = binaryMetrics(withMetrics.scores, labels, undefined, undefined, withMetrics.test.weightColumn());
    expect(withMetrics.report.tasks.click.auc).toBeCloseTo(expected.auc, 10);
    expect(withMetrics.report.tasks.click.logloss).toBeCloseTo(expected.logloss, 10);
    // Unweighted, the groups are indistinguishable (AUC ~0.5); weighted, group a's clicks outweigh its misses.
    expect(heavy.report.tasks.click.auc).toBeLessThan(0.55);
    expect(withMetrics.report.tasks.click.auc).toBeGreaterThan(0.6);
  }, 60_000);
});
