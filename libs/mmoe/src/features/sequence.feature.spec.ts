import * as tf from '@tensorflow/tfjs';
import { InferenceSession, Tensor } from 'onnxruntime-node';

import { decodeArtifact, encodeArtifact } from '../artifact/artifact.codec';
import { initBackend } from '../backend/backend';
import { FeatureEncoder, fitPreprocessing } from '../data/preprocessor';
import { RawTable, RowError } from '../data/raw-table';
import { ONNX_FLOAT, ONNX_INT32, OnnxGraphBuilder } from '../export/onnx-graph.builder';
import { MultiTaskModel } from '../mmoe.model';
import { parseModelSpec } from '../model-spec/model-spec';
import { ModelSpecInput, Pooling } from '../model-spec/model-spec.schema';
import { Rng } from '../util/random';
import { exportAttentionPooling, padSequences, parseSequence, selectRows } from './sequence.feature';
import { attentionPool, DenseWeights, poolSequence, sequenceBatch } from './sequence.pooling';

beforeAll(() => initBackend('wasm'));

const specWith = (features: ModelSpecInput['features']) =>
  parseModelSpec({
    features,
    tasks: [{ name: 'click', label: 'click', type: 'binary' }],
    model: { architecture: 'mmoe', experts: 2, expertUnits: [8] },
    training: { epochs: 6, batchSize: 128, learningRate: 0.02, seed: 3, earlyStoppingPatience: 0 },
  });

describe('parseSequence', () => {
  it('reads JSON arrays and separated strings; missing and empty values are the empty list', () => {
    expect(parseSequence(['a', 'b', 3], '|')).toEqual(['a', 'b', '3']);
    expect(parseSequence(' a| b ||c', '|')).toEqual(['a', 'b', 'c']);
    expect(parseSequence('', '|')).toEqual([]);
    expect(parseSequence(null, '|')).toEqual([]);
    expect(parseSequence([], '|')).toEqual([]);
    expect(() => parseSequence([{}], '|')).toThrow(/element 0/);
  });

  it('names the feature when a table row cannot be read', () => {
    const table = new RawTable(specWith([{ name: 'genres', type: 'sequence' }]));
    expect(() => table.add({ genres: [1, {}], click: '1' })).toThrow(RowError);
    expect(() => table.add({ genres: [1, {}], click: '1' })).toThrow(/genres: element 1/);
    expect(table.size).toBe(0);
  });
});

describe('sequence encoding', () => {
  const spec = specWith([
    { name: 'item_id', type: 'categorical', embeddingDim: 4 },
    { name: 'genres', type: 'sequence', separator: '|', maxLength: 2, embeddingDim: 3 },
    { name: 'history', type: 'sequence', sharedEmbedding: 'item_id', maxLength: 3 },
    { name: 'tags', type: 'sequence', hashBuckets: 16, embeddingDim: 2 },
  ]);
  const records = [
    { item_id: 'i1', genres: 'drama|comedy|noir', history: ['i2', 'i1'], tags: 'x', click: '1' },
    { item_id: 'i2', genres: '', history: ['i9', 'i1', 'i2', 'i1'], tags: ['y', 'x'], click: '0' },
    { item_id: 'i1', genres: 'noir', history: [], click: '0' },
  ];
  const table = new RawTable(spec);
  records.forEach((r) => table.add(r));
  const state = fitPreprocessing(spec, table);
  const encoder = new FeatureEncoder(state);

  it('learns its own vocabulary, shares another feature’s, or hashes', () => {
    expect(state.sequence.map((s) => s.name)).toEqual(['genres', 'history', 'tags']);
    // maxLength 2 keeps "comedy|noir" of the first row: "drama" is never seen.
    expect(state.sequence[0]).toMatchObject({ embeddingDim: 3, vocab: ['noir', 'comedy'], pooling: 'mean' });
    expect(state.sequence[1]).toEqual(expect.objectContaining({ embeddingDim: 4, sharedEmbedding: 'item_id' }));
    expect(state.sequence[2]).toMatchObject({ hashBuckets: 16 });
  });

  it('keeps the last maxLength values, maps values as the table they read does, and gives empty rows no values', () => {
    const encoded = encoder.encodeTable(table);
    const rowsOf = (j: number) =>
      Array.from({ length: encoded.size }, (_, i) =>
        Array.from(
          encoded.sequences[j].ids.subarray(encoded.sequences[j].offsets[i], encoded.sequences[j].offsets[i + 1]),
        ),
      );
    expect(rowsOf(0)).toEqual([[2, 1], [], [1]]);
    // item_id's vocabulary is [i1, i2]; i9 is out of it (row 0) and the oldest value beyond maxLength 3 is dropped.
    expect(rowsOf(1)).toEqual([[2, 1], [1, 2, 1], []]);
    expect(rowsOf(2)[1]).toHaveLength(2);
    expect(rowsOf(2)[2]).toEqual([]);
  });

  it('encodes records (feature store, requests) exactly as training rows', () => {
    const fromTable = encoder.encodeTable(table);
    const fromRecords = encoder.encodeRecords(records.map((r) => ({ ...r, genres: parseSequence(r.genres, '|') })));
    expect(fromRecords.sequences).toEqual(fromTable.sequences);
  });

  it('selects and copies shuffled rows', () => {
    const column = { offsets: Int32Array.from([0, 2, 2, 5]), ids: Int32Array.from([1, 2, 3, 4, 5]) };
    const picked = selectRows(column, 2, Uint32Array.from([2, 0, 1]), 3);
    expect(Array.from(picked.offsets)).toEqual([0, 2, 4, 4]);
    expect(Array.from(picked.ids)).toEqual([4, 5, 1, 2]);
  });
});

describe('poolSequence', () => {
  const column = { offsets: Int32Array.from([0, 3, 3, 4, 6]), ids: Int32Array.from([1, 2, 2, 0, 3, 1]) };
  const rows = [[1, 2, 2], [], [0], [3, 1]];

  /** The same pooling from per-row ops (what the segment reduction replaces), and its gradient by autodiff. */
  const reference = (table: tf.Tensor2D, pooling: Pooling) =>
    tf.stack(
      rows.map((ids) => {
        if (ids.length === 0) return tf.zeros([table.shape[1]]);
        const g = tf.gather(table, ids);
        return pooling === 'sum' ? tf.sum(g, 0) : pooling === 'mean' ? tf.mean(g, 0) : tf.max(g, 0);
      }),
    );

  it.each<Pooling>(['mean', 'sum', 'max'])(
    '%s: value and gradient match per-row pooling; an empty row is zeros',
    (pooling) => {
      tf.tidy(() => {
        const table = tf.randomNormal([4, 3], 0, 1, 'float32', 11) as tf.Tensor2D;
        const upstream = tf.randomNormal([4, 3], 0, 1, 'float32', 12);
        const batch = sequenceBatch(column, 0, 4, pooling);
        const pooled = poolSequence(table, batch, pooling);
        expect(pooled.shape).toEqual([4, 3]);
        expect(Array.from(pooled.slice([1, 0], [1, 3]).dataSync())).toEqual([0, 0, 0]);
        expect(tf.max(tf.abs(tf.sub(pooled, reference(table, pooling)))).dataSync()[0]).toBeLessThan(1e-6);
        const grad = tf.grad((t) => tf.sum(tf.mul(poolSequence(t as tf.Tensor2D, batch, pooling), upstream)))(table);
        const expected = tf.grad((t) => tf.sum(tf.mul(reference(t as tf.Tensor2D, pooling), upstream)))(table);
        expect(tf.max(tf.abs(tf.sub(grad, expected))).dataSync()[0]).toBeLessThan(1e-5);
      });
    },
  );
});

describe('attentionPool', () => {
  const column = { offsets: Int32Array.from([0, 3, 3, 4, 6]), ids: Int32Array.from([1, 2, 2, 0, 3, 1]) };
  const rows = [[1, 2, 2], [], [0], [3, 1]];
  const targets = Int32Array.from([2, 1, 3, 0]);
  const widths = [9, 5, 4, 1];
  const unit = (seed: number): DenseWeights[] =>
    widths.slice(1).map((units, l) => ({
      kernel: tf.randomNormal([widths[l], units], 0, 0.7, 'float32', seed + l) as tf.Tensor2D,
      bias: tf.randomNormal([units], 0, 0.3, 'float32', seed + 10 + l) as tf.Tensor1D,
    }));

  /** DIN's activation unit and weighted sum row by row, in plain tfjs ops (what the batched version replaces). */
  const reference = (table: tf.Tensor2D, weights: DenseWeights[]) =>
    tf.stack(
      rows.map((ids, i) => {
        if (ids.length === 0) return tf.zeros([table.shape[1]]);
        const e = tf.gather(table, ids);
        const t = tf.tile(tf.gather(table, [targets[i]]), [ids.length, 1]);
        let h: tf.Tensor = tf.concat([e, t, tf.mul(e, t)], 1);
        weights.forEach(({ kernel, bias }, l) => {
          h = tf.add(tf.matMul(h, kernel), bias);
          if (l < weights.length - 1) h = tf.relu(h);
        });
        return tf.sum(tf.mul(e, h), 0);
      }),
    );

  it('weighs each value by the unit over [value, target, value ⊙ target]: value and gradients match per-row ops', () => {
    tf.tidy(() => {
      const table = tf.randomNormal([4, 3], 0, 1, 'float32', 11) as tf.Tensor2D;
      const weights = unit(20);
      const upstream = tf.randomNormal([4, 3], 0, 1, 'float32', 12);
      const batch = sequenceBatch(column, 0, 4, 'attention', 0, targets);
      const pooled = attentionPool(table, batch, weights);
      expect(pooled.shape).toEqual([4, 3]);
      expect(Array.from(pooled.slice([1, 0], [1, 3]).dataSync())).toEqual([0, 0, 0]);
      expect(tf.max(tf.abs(tf.sub(pooled, reference(table, weights)))).dataSync()[0]).toBeLessThan(1e-5);
      const flat = [table, ...weights.flatMap((w) => [w.kernel, w.bias])];
      const asUnit = (ts: tf.Tensor[]) => weights.map((_, l) => ({ kernel: ts[1 + 2 * l], bias: ts[2 + 2 * l] }));
      const loss =
        (pool: (t: tf.Tensor2D, w: DenseWeights[]) => tf.Tensor) =>
        (...ts: tf.Tensor[]) =>
          tf.sum(tf.mul(pool(ts[0] as tf.Tensor2D, asUnit(ts) as DenseWeights[]), upstream));
      const grads = tf.grads(loss((t, w) => attentionPool(t, batch, w)))(flat);
      const expected = tf.grads(loss(reference))(flat);
      grads.forEach((g, k) => expect(tf.max(tf.abs(tf.sub(g, expected[k]))).dataSync()[0]).toBeLessThan(1e-4));
    });
  });

  it('is the same in ONNX, a table stored in scaled columns (int8 graphs) included', async () => {
    const table = tf.randomNormal([4, 3], 0, 1, 'float32', 11) as tf.Tensor2D;
    const weights = unit(30);
    const expected = tf.tidy(() => attentionPool(table, sequenceBatch(column, 0, 4, 'attention', 0, targets), weights));
    const values = table.dataSync() as Float32Array;
    const unitValues = weights.map((w) => ({
      kernel: w.kernel.dataSync() as Float32Array,
      bias: w.bias.dataSync() as Float32Array,
    }));
    const columnScales = Float32Array.of(0.5, 2, 4);
    for (const scales of [undefined, columnScales]) {
      const g = new OnnxGraphBuilder();
      const stored = scales ? values.map((v, i) => v / scales[i % 3]) : values;
      const io = {
        table: g.initializer('table', ONNX_FLOAT, [4, 3], stored),
        input: g.input('seq', ONNX_INT32, ['N', 3]),
        target: g.input('target', ONNX_INT32, ['N']),
        feature: 'history',
      };
      g.op('Identity', [exportAttentionPooling(g, io, unitValues, widths, scales)], {}, 'pooled');
      g.output('pooled', ONNX_FLOAT, ['N', 3]);
      const session = await InferenceSession.create(
        g.build({ opset: 13, irVersion: 8, producer: 'test', graphName: 'attention' }),
      );
      const { pooled } = await session.run({
        seq: new Tensor('int32', padSequences(column, 0, 4, 3), [4, 3]),
        target: new Tensor('int32', targets, [4]),
      });
      await session.release();
      const actual = Float32Array.from(pooled.data as Float32Array, (v, i) => v * (scales ? scales[i % 3] : 1));
      const want = expected.dataSync();
      actual.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThan(1e-5));
    }
    tf.dispose([table, expected, ...weights.flatMap((w) => [w.kernel, w.bias])]);
  });
});

describe('artifacts', () => {
  it('load when written before sequence features existed (no preprocessing.sequence)', async () => {
    const spec = specWith([{ name: 'last_genre', type: 'categorical', embeddingDim: 2 }]);
    const table = new RawTable(spec);
    for (let i = 0; i < 200; i++) table.add({ last_genre: `g${i % 3}`, click: String(i % 2) });
    const { model } = await MultiTaskModel.train({ ...spec, training: { ...spec.training, epochs: 1 } }, table);
    const { header, weights } = decodeArtifact(model.toArtifact());
    const before: Partial<typeof header.preprocessing> = { ...header.preprocessing };
    delete before.sequence;
    const shapes = new Map(header.weights.map((w) => [w.name, w.shape]));
    const old = encodeArtifact(
      { ...header, preprocessing: before as typeof header.preprocessing },
      new Map([...weights].map(([name, values]) => [name, { shape: shapes.get(name)!, values }])),
    );
    const loaded = MultiTaskModel.fromArtifact(old);
    const data = model.encode(table);
    expect(loaded.predict(data).scores).toEqual(model.predict(data).scores);
    model.dispose();
    loaded.dispose();
  });
});

describe('an attention pooling in a model', () => {
  const spec = specWith([
    { name: 'genre', type: 'categorical', embeddingDim: 8 },
    { name: 'user_genres', type: 'sequence', pooling: 'attention', target: 'genre', maxLength: 5 },
  ]);
  /** A click when the candidate's genre is among the user's: a match between the list and the target. */
  function data(n: number, seed: number): RawTable {
    const rng = new Rng(seed);
    const table = new RawTable(spec);
    for (let i = 0; i < n; i++) {
      const genres = Array.from({ length: rng.int(6) }, () => `g${rng.int(12)}`);
      const genre = rng.next() < 0.3 && genres.length > 0 ? genres[rng.int(genres.length)] : `g${rng.int(12)}`;
      const click = rng.next() < (genres.includes(genre) ? 0.8 : 0.2) ? '1' : '0';
      table.add({ genre, user_genres: genres, click });
    }
    return table;
  }

  it('learns whether the target is in the list, which mean pooling cannot express', async () => {
    const auc = async (pooling: Pooling) => {
      const features = spec.features.map((f) => (f.type === 'sequence' ? { ...f, pooling } : f));
      const input = pooling === 'attention' ? features : features.map((f) => ({ ...f, target: undefined }));
      const { model } = await MultiTaskModel.train(parseModelSpec({ ...spec, features: input }), data(3000, 1));
      const report = model.evaluate(data(2000, 2));
      model.dispose();
      return report.tasks.click.auc;
    };
    const [attention, mean] = [await auc('attention'), await auc('mean')];
    // The best possible here is about 0.79 (a click rate of 0.8 with a match, 0.2 without).
    expect(attention).toBeGreaterThan(0.76);
    expect(attention).toBeGreaterThan(mean + 0.05);
  });

  it('trains on batches whose lists are all empty (new users): finite weights, not a NaN unit', async () => {
    // Nine rows in ten with no genres, batches of 8: many batches give the attention unit no value at all, where
    // XNNPACK's product over no rows left the unit's gradient as the memory held.
    const sparse = new RawTable(spec);
    const rng = new Rng(4);
    for (let i = 0; i < 2000; i++) {
      const genres = i % 10 === 0 ? [`g${rng.int(12)}`, `g${rng.int(12)}`] : [];
      sparse.add({ genre: `g${rng.int(12)}`, user_genres: genres, click: rng.next() < 0.3 ? '1' : '0' });
    }
    const { model } = await MultiTaskModel.train(
      { ...spec, training: { ...spec.training, epochs: 2, batchSize: 8 } },
      sparse,
    );
    for (const [name, values] of model.network.snapshot())
      expect({ name, finite: values.every(Number.isFinite) }).toEqual({ name, finite: true });
    model.dispose();
  });

  it('round-trips through an artifact; a header declaring a wider unit than its weights is refused', async () => {
    const table = data(300, 3);
    const { model } = await MultiTaskModel.train({ ...spec, training: { ...spec.training, epochs: 1 } }, table);
    const bytes = model.toArtifact();
    const loaded = MultiTaskModel.fromArtifact(bytes);
    const encoded = model.encode(table);
    expect(loaded.predict(encoded).scores).toEqual(model.predict(encoded).scores);
    const { header, weights } = decodeArtifact(bytes);
    const shapes = new Map(header.weights.map((w) => [w.name, w.shape]));
    const list = header.preprocessing.sequence[0];
    const wider = { ...list, attention: { target: 'genre', units: [64] } } as typeof list;
    const crafted = encodeArtifact(
      { ...header, preprocessing: { ...header.preprocessing, sequence: [wider] } },
      new Map([...weights].map(([name, values]) => [name, { shape: shapes.get(name)!, values }])),
    );
    expect(() => MultiTaskModel.fromArtifact(crafted)).toThrow(
      /declares a network of \d+ parameters, the artifact holds/,
    );
    model.dispose();
    loaded.dispose();
  });
});

describe('a sequence feature in a model', () => {
  /**
   * A click depends on whether the user's genres include "g0" or "g1" (a set, in any order, among distractors);
   * a categorical feature holding only the most recent genre sees a fraction of that.
   */
  function data(spec: ReturnType<typeof specWith>, n: number, seed: number): RawTable {
    const rng = new Rng(seed);
    const table = new RawTable(spec);
    for (let i = 0; i < n; i++) {
      const genres = Array.from({ length: 1 + rng.int(6) }, () => `g${rng.int(12)}`);
      const liked = genres.some((g) => g === 'g0' || g === 'g1');
      table.add({
        genres: genres.join('|'),
        last_genre: genres[genres.length - 1],
        click: rng.next() < (liked ? 0.85 : 0.15) ? '1' : '0',
      });
    }
    return table;
  }

  it.each<Pooling>(['max', 'sum', 'mean'])(
    'with %s pooling learns a set-valued signal a single category misses',
    async (pooling) => {
      const auc = async (features: ModelSpecInput['features']) => {
        const spec = specWith(features);
        const { model } = await MultiTaskModel.train(spec, data(spec, 3000, 1));
        const report = model.evaluate(data(spec, 2000, 2));
        model.dispose();
        return report.tasks.click.auc;
      };
      const withSequence = await auc([{ name: 'genres', type: 'sequence', pooling, embeddingDim: 4 }]);
      const baseline = await auc([{ name: 'last_genre', type: 'categorical', embeddingDim: 4 }]);
      expect(withSequence).toBeGreaterThan(0.75);
      expect(withSequence).toBeGreaterThan(baseline + 0.08);
    },
  );
});
