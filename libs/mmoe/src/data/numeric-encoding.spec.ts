import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { initBackend } from '../backend/backend';
import { MultiTaskModel } from '../mmoe.model';
import { parseModelSpec } from '../model-spec/model-spec';
import { ModelSpecInput } from '../model-spec/model-spec.schema';
import { Rng } from '../util/random';
import { CsvFormatError } from './csv.reader';
import { encodeSlice } from './encoded-slice';
import { bucketRow, FeatureEncoder, fitPreprocessing } from './preprocessor';
import { RawTable, RawValue, RowError } from './raw-table';
import { loadTable } from './table.loader';

beforeAll(() => initBackend('wasm'));

const specOf = (features: ModelSpecInput['features'], task: ModelSpecInput['tasks'][number], units = [8]) =>
  parseModelSpec({
    features,
    tasks: [task],
    model: { architecture: 'mmoe', experts: 2, expertUnits: units, towerUnits: [] },
    training: { epochs: 6, batchSize: 128, learningRate: 0.01, seed: 3, earlyStoppingPatience: 0 },
  });

const spec = specOf(
  [
    { name: 'spend', type: 'numeric', transform: 'log1p' },
    { name: 'city', type: 'categorical' },
    { name: 'age', type: 'numeric', buckets: [18, 30, 50], embeddingDim: 4 },
    { name: 'score', type: 'numeric' },
  ],
  { name: 'click', label: 'click', type: 'binary' },
);

function tableOf(rows: Record<string, RawValue>[], s = spec): RawTable {
  const t = new RawTable(s);
  rows.forEach((r) => t.add(r));
  return t;
}

describe('bucketRow', () => {
  it('puts row 0 for missing, 1 below the first boundary, k + 1 from boundary k on', () => {
    const b = [10, 20, 30];
    expect([NaN, -1e9, 9.99, 10, 19.99, 20, 29, 30, 1e12].map((v) => bucketRow(v, b))).toEqual([
      0, 1, 1, 2, 2, 3, 3, 4, 4,
    ]);
  });
});

describe('numeric transforms and buckets', () => {
  const data = tableOf([
    { spend: '0', city: 'a', age: '17', score: '1', click: '1' },
    { spend: '9', city: 'b', age: '30', score: '2', click: '0' },
    { spend: '99', city: 'a', age: '', score: '3', click: '1' },
    { spend: '', city: 'b', age: '64', score: '4', click: '0' },
  ]);
  const state = fitPreprocessing(spec, data);
  const encoder = new FeatureEncoder(state);

  it('standardises log1p(x) with the statistics of the transformed values; missing stays the mean', () => {
    const logs = [0, Math.log(10), Math.log(100)];
    const mean = logs.reduce((a, b) => a + b) / 3;
    const std = Math.sqrt(logs.reduce((a, v) => a + (v - mean) ** 2, 0) / 3);
    expect(state.numeric.map((n) => n.name)).toEqual(['spend', 'score']);
    expect(state.numeric[0]).toMatchObject({ transform: 'log1p' });
    expect(state.numeric[0].mean).toBeCloseTo(mean, 10);
    expect(state.numeric[0].std).toBeCloseTo(std, 10);
    const encoded = encoder.encodeTable(data);
    const spend = [0, 1, 2, 3].map((i) => encoded.numeric[i * 2]);
    expect(spend.map((v) => +v.toFixed(4))).toEqual([...logs.map((v) => +((v - mean) / std).toFixed(4)), 0]);
    expect(encoder.encodeNumeric(0, 9)).toBeCloseTo(spend[1], 6);
  });

  it('looks bucketised values up in an embedding of their own, after the categoricals before it in spec order', () => {
    expect(state.categorical).toEqual([
      { name: 'city', embeddingDim: 8, vocab: ['a', 'b'] },
      { name: 'age', embeddingDim: 4, buckets: [18, 30, 50] },
    ]);
    const encoded = encoder.encodeTable(data);
    expect(Array.from(encoded.categorical[1])).toEqual([1, 3, 0, 4]); // 17 | 30 | missing | 64
    expect(encoder.encodeRecords([{ age: 45 }, { age: '18' }, {}]).categorical[1]).toEqual(Int32Array.from([3, 2, 0]));
  });

  it('refuses a value log1p cannot take, naming the column', () => {
    expect(() => tableOf([{ spend: '-1', click: '1' }])).toThrow(
      new RowError('spend', 'log1p needs a value > -1 (got -1)'),
    );
    expect(() => tableOf([{ spend: '-0.5', age: '-3', click: '1' }])).not.toThrow();
  });

  it('names the line and column of such a value in a CSV file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'numeric-'));
    const file = join(dir, 'data.csv');
    writeFileSync(file, 'click,age,city,score,spend\n1,20,a,1,3\n0,30,b,2,-2\n');
    await expect(loadTable(file, spec, 'fail', true)).rejects.toThrow(
      new CsvFormatError(file, 3, 5, 'spend: log1p needs a value > -1 (got -2)'),
    );
    const skipped = await loadTable(file, spec, 'skip', true);
    expect([skipped.table.size, skipped.skipped, skipped.skippedLines]).toEqual([1, 1, [3]]);
  });

  it('serves a value log1p cannot take, or text in a bucketised feature, as missing', () => {
    const { slice, unreadable } = encodeSlice(encoder, { spend: -3, age: 'old', score: 2 });
    expect(unreadable.sort()).toEqual(['age', 'spend']);
    expect(slice.numeric[0]).toBe(0);
    expect(slice.categorical[1]).toBe(0);
    expect(Array.from(slice.present)).toEqual([1, 1, 0, 1]);
  });

  it('round-trips through the artifact with identical scores', async () => {
    const rng = new Rng(5);
    const rows = Array.from({ length: 400 }, () => ({
      spend: Math.exp(3 * rng.gaussian()),
      city: `c${rng.int(3)}`,
      age: 15 + rng.int(60),
      score: rng.gaussian(),
      click: rng.int(2),
    }));
    const { model } = await MultiTaskModel.train(spec, tableOf(rows));
    const loaded = MultiTaskModel.fromArtifact(model.toArtifact());
    try {
      expect(loaded.network.preprocessing).toEqual(model.network.preprocessing);
      expect(loaded.predictRecords(rows).scores).toEqual(model.predictRecords(rows).scores);
    } finally {
      model.dispose();
      loaded.dispose();
    }
  });
});

/** Trains on `n` generated rows and reports the metric on 2,000 fresh ones. */
async function learnt(
  features: ModelSpecInput['features'],
  task: ModelSpecInput['tasks'][number],
  row: (rng: Rng) => Record<string, number>,
  units?: number[],
): Promise<Record<string, number>> {
  const s = specOf(features, task, units);
  const rng = new Rng(11);
  const make = (n: number) =>
    tableOf(
      Array.from({ length: n }, () => row(rng)),
      s,
    );
  const { model } = await MultiTaskModel.train(s, make(4000));
  try {
    return model.evaluate(make(2000)).tasks[task.name];
  } finally {
    model.dispose();
  }
}

describe('what the encodings learn', () => {
  it('buckets learn a label that steps at thresholds far better than the standardised value', async () => {
    // Clicks alternate by age band: not monotone, so one standardised input needs many ReLU kinks to follow it.
    const task = { name: 'click', label: 'click', type: 'binary' } as const;
    const row = (rng: Rng) => {
      const age = 18 + 60 * rng.next();
      const band = Math.floor((age - 18) / 10);
      return { age, click: rng.next() < (band % 2 === 0 ? 0.85 : 0.15) ? 1 : 0 };
    };
    const buckets = await learnt([{ name: 'age', type: 'numeric', buckets: [28, 38, 48, 58, 68] }], task, row, [4]);
    const plain = await learnt([{ name: 'age', type: 'numeric' }], task, row, [4]);
    expect(buckets.auc).toBeGreaterThan(0.8);
    expect(buckets.auc - plain.auc).toBeGreaterThan(0.1);
  });

  it('log1p learns a target linear in the log of a heavy-tailed value far better than the standardised value', async () => {
    const task = { name: 'gain', label: 'gain', type: 'regression' } as const;
    const row = (rng: Rng) => {
      const capital = Math.exp(3 + 2 * rng.gaussian()); // lognormal: mostly 0.05 .. 8,000, a few far beyond
      return { capital, gain: Math.log1p(capital) + 0.2 * rng.gaussian() };
    };
    const log1p = await learnt([{ name: 'capital', type: 'numeric', transform: 'log1p' }], task, row);
    const plain = await learnt([{ name: 'capital', type: 'numeric' }], task, row);
    expect(log1p.rmse).toBeLessThan(0.5 * plain.rmse);
  });
});
