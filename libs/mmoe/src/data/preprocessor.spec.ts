import { parseModelSpec } from '../model-spec/model-spec';
import { FeatureEncoder, fitPreprocessing, fitPreprocessingReport, hashBucket, MAX_STANDARDISED } from './preprocessor';
import { RawTable, RowError } from './raw-table';

const spec = parseModelSpec({
  features: [
    { name: 'age', type: 'numeric' },
    { name: 'city', type: 'categorical', embeddingDim: 4, minCount: 2 },
    { name: 'user', type: 'categorical', hashBuckets: 50 },
  ],
  tasks: [
    { name: 'click', label: 'clicked', type: 'binary' },
    { name: 'watch', label: 'secs', type: 'regression' },
  ],
  model: { expertUnits: [4] },
});

function table(rows: Record<string, string | undefined>[]) {
  const t = new RawTable(spec);
  rows.forEach((r) => t.add(r));
  return t;
}

describe('preprocessing', () => {
  const data = table([
    { age: '20', city: 'paris', user: 'u1', clicked: '1', secs: '10' },
    { age: '40', city: 'paris', user: 'u2', clicked: '0', secs: '30' },
    { age: '', city: 'rome', user: 'u3', clicked: 'true', secs: '' },
    { age: '30', city: 'oslo', user: undefined, clicked: '', secs: '20' },
    { age: '30', city: 'rome', user: 'u1', clicked: 'false', secs: '20' },
  ]);
  const state = fitPreprocessing(spec, data);
  const encoded = new FeatureEncoder(state).encodeTable(data);

  it('standardises numerics with training statistics and fills missing values with the mean', () => {
    expect(state.numeric[0].mean).toBeCloseTo(30);
    expect(state.numeric[0].std).toBeCloseTo(Math.sqrt(50));
    expect(Array.from(encoded.numeric).map((v) => +v.toFixed(3))).toEqual([-1.414, 1.414, 0, 0, 0]);
  });

  it('keeps the spread of a numeric far from zero, and leaves a constant one unscaled', () => {
    const offset = 1e15; // µs timestamps: a one-pass variance cancels to nothing here
    const wide = new RawTable(spec);
    for (let d = 0; d < 1000; d++) wide.add({ age: String(offset + d), city: 'paris', clicked: '1', secs: '7' });
    const fitted = fitPreprocessing(spec, wide);
    expect(fitted.numeric[0].mean).toBe(offset + 499.5);
    expect(fitted.numeric[0].std).toBeCloseTo(Math.sqrt((1000 ** 2 - 1) / 12), 6);
    expect(fitted.labels[1]).toEqual({ task: 'watch', mean: 7, std: 1 });
    // Spreads that are only rounding (0.1 + 0.2 beside 0.3) or underflow (1e-300 beside 0) are none either.
    for (const values of [
      [0.3, 0.1 + 0.2, 0.3],
      [1e-300, 0, 0],
    ]) {
      const near = new RawTable(spec);
      for (const v of values) near.add({ age: String(v), city: 'paris', clicked: '1', secs: '7' });
      expect(fitPreprocessing(spec, near).numeric[0].std).toBe(1);
    }
  });

  it('bounds a value read at serving time however many deviations it lies away, as no training set reaches', () => {
    // Training values spread over 1e-20: a value of 1e18 is 1e38 deviations away, near float32's end (every score NaN).
    const narrow = new RawTable(spec);
    for (const v of [1e-20, 2e-20, 3e-20]) narrow.add({ age: String(v), city: 'paris', clicked: '1', secs: '7' });
    const encoder = new FeatureEncoder(fitPreprocessing(spec, narrow));
    expect(encoder.encodeNumeric(0, 1e18)).toBe(MAX_STANDARDISED);
    expect(encoder.encodeNumeric(0, -1e18)).toBe(-MAX_STANDARDISED);
    expect(encoder.encodeNumeric(0, 3e-20)).toBeCloseTo(Math.sqrt(1.5), 6);
    // An uploaded artifact's statistics only need to be finite (mean 1e308, std 5e-324): the input is bounded all the same.
    const hostile = new FeatureEncoder({
      ...fitPreprocessing(spec, narrow),
      numeric: [{ name: 'age', mean: 1e308, std: 5e-324 }],
    });
    expect(hostile.encodeNumeric(0, 30)).toBe(-MAX_STANDARDISED);
    // Samuelson: n values lie within √(n − 1) deviations of their mean, so training never meets the bound.
    const outlier = new RawTable(spec);
    for (let i = 0; i < 10_000; i++)
      outlier.add({ age: i === 0 ? '1e15' : '0', city: 'paris', clicked: '1', secs: '7' });
    const row = new FeatureEncoder(fitPreprocessing(spec, outlier)).encodeTable(outlier).numeric[0];
    expect(row).toBeCloseTo(Math.sqrt(9_999), 2);
  });

  it('learns a vocabulary by frequency, with rare and unseen values out of vocabulary (row 0)', () => {
    expect(state.categorical[0]).toEqual({ name: 'city', embeddingDim: 4, vocab: ['paris', 'rome'] });
    expect(Array.from(encoded.categorical[0])).toEqual([1, 1, 2, 0, 2]);
    expect(new FeatureEncoder(state).encodeRecords([{ city: 'tokyo' }]).categorical[0][0]).toBe(0);
  });

  it('counts the ids a full vocabulary leaves out: the least frequent of those seen minCount times', () => {
    const small = parseModelSpec({ ...spec, features: [{ ...spec.features[1], minCount: 1, maxVocab: 1 }] });
    const t = new RawTable(small);
    ['paris', 'paris', 'rome', 'oslo'].forEach((city) => t.add({ city, clicked: '1', secs: '1' }));
    const { state: fitted, overflow } = fitPreprocessingReport(small, t);
    expect(fitted.categorical[0]).toMatchObject({ vocab: ['paris'] });
    expect(overflow).toEqual([{ feature: 'city', leftOut: 2 }]);
    expect(fitPreprocessingReport(spec, data).overflow).toEqual([]);
  });

  it('hashes high-cardinality values into stable buckets, keeping 0 for missing', () => {
    expect(Array.from(encoded.categorical[1])).toEqual([
      hashBucket('u1', 50),
      hashBucket('u2', 50),
      hashBucket('u3', 50),
      0,
      hashBucket('u1', 50),
    ]);
    expect(hashBucket('u1', 50)).toBeGreaterThanOrEqual(1);
    expect(hashBucket('u1', 50)).toBeLessThanOrEqual(50);
  });

  it.each<[string, number, number]>([
    ['u1', 50, 36],
    ['', 7, 3],
    ['item-42', 100_000, 69_048],
    ['日本語', 1000, 519],
    ['😀', 4096, 1209],
    ['user_123456789', 50_000_000, 4_462_155],
    ['\ud800', 97, 54],
  ])('keeps the bucket of %j in %i buckets at %i: trained models depend on it', (value, buckets, bucket) => {
    expect(hashBucket(value, buckets)).toBe(bucket);
  });

  it('keeps labels raw with NaN for missing, and standardises regression targets in the state', () => {
    expect(Array.from(encoded.labels[0])).toEqual([1, 0, 1, NaN, 0]);
    expect(Array.from(encoded.labels[1])).toEqual([10, 30, NaN, 20, 20]);
    expect(state.labels[1].mean).toBeCloseTo(20);
    expect(state.labels[0]).toEqual({ task: 'click', mean: 0, std: 1 });
  });

  it('encodes records for serving exactly as it encodes training rows', () => {
    const served = new FeatureEncoder(state).encodeRecords([{ age: 20, city: 'paris', user: 'u1' }]);
    expect(served.numeric[0]).toBeCloseTo(encoded.numeric[0]);
    expect(served.categorical.map((c) => c[0])).toEqual([encoded.categorical[0][0], encoded.categorical[1][0]]);
    // And refuses what training refuses: a number beyond ±1e18 (it would be infinite as a float32 once standardised).
    expect(() => new FeatureEncoder(state).encodeRecords([{ age: '1e39' }])).toThrow('age: 1e+39 is beyond ±1e18');
  });

  it('fits on a subset of rows only', () => {
    const subset = fitPreprocessing(spec, data, Uint32Array.from([0, 1]));
    expect(subset.numeric[0].mean).toBeCloseTo(30);
    expect(subset.categorical[0]).toMatchObject({ vocab: ['paris'] });
  });

  it('rejects unreadable values without storing a partial row', () => {
    const t = table([{ age: '1', clicked: '1' }]);
    expect(() => t.add({ age: 'abc', clicked: '1' })).toThrow(RowError);
    expect(() => t.add({ age: 'abc', clicked: '1' })).toThrow('age: "abc" is not a number');
    expect(() => t.add({ age: '2', clicked: 'yes' })).toThrow('clicked: binary label must be 0/1 or true/false');
    expect(t.size).toBe(1);
    expect(t.numericColumns()[0].length).toBe(1);
  });
});
