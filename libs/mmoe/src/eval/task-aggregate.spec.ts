import { Rng } from '../util/random';
import {
  BinaryAggregate,
  LOGIT_RANGE,
  mergeAggregate,
  RegressionAggregate,
  SCORE_BINS,
  scoreBin,
  userCluster,
} from './task-aggregate';
import { decodeAggregate, encodeAggregate } from './task-aggregate.codec';

describe('task aggregates', () => {
  it('bins probabilities on the logit scale, monotonically, clamping the ends', () => {
    expect(scoreBin(0.5)).toBe(SCORE_BINS / 2);
    expect(scoreBin(0)).toBe(0);
    expect(scoreBin(1)).toBe(SCORE_BINS - 1);
    expect(scoreBin(1 / (1 + Math.exp(LOGIT_RANGE + 1)))).toBe(0);
    let previous = -1;
    for (let p = 0.001; p < 1; p += 0.001) {
      const bin = scoreBin(p);
      expect(bin).toBeGreaterThanOrEqual(previous);
      previous = bin;
    }
  });

  it('buckets users stably, independently of the canary split', () => {
    expect(userCluster('u-1', 64)).toBe(userCluster('u-1', 64));
    const counts = new Array(8).fill(0);
    for (let u = 0; u < 8000; u++) counts[userCluster(`u-${u}`, 8)]++;
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(150);
  });

  it('sums predictions per cluster; adding one back with weight −1 retracts it exactly', () => {
    const a = new BinaryAggregate(4);
    a.add(1, 0.8, 1);
    a.add(1, 0.3, 0);
    a.add(2, 0.6, 1);
    expect(a.cluster(1)).toEqual({
      count: 2,
      positives: 1,
      labelSum: 1,
      predictionSum: 1.1,
      loglossSum: expect.any(Number),
    });
    expect(a.totals()).toMatchObject({ count: 3, positives: 2, labelSum: 2 });
    expect(a.cluster(1).loglossSum).toBeCloseTo(-Math.log(0.8) - Math.log(0.7), 12);
    expect(a.data[a.binIndex(1, scoreBin(0.8), true)]).toBe(1);
    expect(a.data[a.pooledIndex(scoreBin(0.8), true)]).toBe(1);
    a.add(1, 0.8, 1, -1);
    a.add(1, 0.3, 0, -1);
    a.add(2, 0.6, 1, -1);
    for (const v of a.data) expect(Math.abs(v)).toBeLessThan(1e-12);
  });

  it('merges aggregates of the same shape by adding them', () => {
    const a = new RegressionAggregate(2);
    const b = new RegressionAggregate(2);
    a.add(0, 3, 1);
    b.add(0, 1, 2);
    b.add(1, 5, 5);
    expect(mergeAggregate(a, b).totals()).toEqual({
      count: 3,
      predictionSum: 9,
      labelSum: 8,
      squaredErrorSum: 5,
      absoluteErrorSum: 3,
    });
    expect(() => mergeAggregate(a, new RegressionAggregate(3))).toThrow(RangeError);
    expect(() => mergeAggregate(a, new BinaryAggregate(2))).toThrow(RangeError);
  });

  it('encodes and decodes losslessly, sparse when few fields are set, dense otherwise', () => {
    const sparse = new BinaryAggregate(64);
    sparse.add(5, 0.2, 0);
    sparse.addRequest(0.75, 4);
    const sparseBytes = encodeAggregate(sparse);
    expect(sparseBytes.length).toBeLessThan(200);
    expect(decodeAggregate(sparseBytes)).toEqual(sparse);

    const rng = new Rng(1);
    const dense = new RegressionAggregate(3);
    for (let i = 0; i < 100; i++) dense.add(rng.int(3), rng.gaussian(), rng.gaussian());
    const denseBytes = encodeAggregate(dense);
    expect(denseBytes.length).toBe(6 + dense.data.length * 8);
    expect(decodeAggregate(denseBytes)).toEqual(dense);
    expect(() => decodeAggregate(Buffer.from('junk'))).toThrow(RangeError);
  });
});
