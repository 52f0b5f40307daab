import { createTaskPair, expectedLabelCorrelation, sampleSplits, syntheticCsvRows } from './paper-synthetic.data';

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function pearson(a: Float32Array, b: Float32Array): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

function variance(a: Float32Array): number {
  let m = 0;
  for (const v of a) m += v;
  m /= a.length;
  let s = 0;
  for (const v of a) s += (v - m) ** 2;
  return s / a.length;
}

describe('createTaskPair', () => {
  it('draws orthogonal unit vectors u1, u2', () => {
    for (const seed of [1, 2, 3]) {
      const { u1, u2, dim } = createTaskPair({ p: 0.5, seed });
      expect(dim).toBe(100);
      expect(dot(u1, u1)).toBeCloseTo(1, 12);
      expect(dot(u2, u2)).toBeCloseTo(1, 12);
      expect(Math.abs(dot(u1, u2))).toBeLessThan(1e-12);
    }
  });

  it('sets cos(w1, w2) = p and ‖w1‖ = ‖w2‖ = c', () => {
    for (const p of [-0.5, 0, 0.5, 0.9, 1]) {
      const { w1, w2 } = createTaskPair({ p, c: 2, seed: 5 });
      expect(Math.sqrt(dot(w1, w1))).toBeCloseTo(2, 12);
      expect(Math.sqrt(dot(w2, w2))).toBeCloseTo(2, 12);
      expect(dot(w1, w2) / Math.sqrt(dot(w1, w1) * dot(w2, w2))).toBeCloseTo(p, 12);
    }
  });

  it('draws the same directions and sines for every p under one seed', () => {
    const a = createTaskPair({ p: 0.5, seed: 9, m: 4 });
    const b = createTaskPair({ p: 0.9, seed: 9, m: 4 });
    expect(b.u1).toEqual(a.u1);
    expect(b.u2).toEqual(a.u2);
    expect(b.alpha).toEqual(a.alpha);
    expect(b.beta).toEqual(a.beta);
    expect(a.alpha).toHaveLength(4);
  });

  it('rejects invalid options', () => {
    expect(() => createTaskPair({ p: 1.01, seed: 1 })).toThrow(RangeError);
    expect(() => createTaskPair({ p: NaN, seed: 1 })).toThrow(RangeError);
    expect(() => createTaskPair({ p: 0.5, seed: 1, dim: 1 })).toThrow(RangeError);
    expect(() => createTaskPair({ p: 0.5, seed: 1, m: 2.5 })).toThrow(RangeError);
    expect(() => createTaskPair({ p: 0.5, seed: 1, noiseStd: -1 })).toThrow(RangeError);
  });
});

describe('sampleSplits', () => {
  it('is reproducible from the seeds', () => {
    const a = sampleSplits(createTaskPair({ p: 0.7, seed: 3, dim: 8 }), { train: 50, test: 20 }, 11);
    const b = sampleSplits(createTaskPair({ p: 0.7, seed: 3, dim: 8 }), { train: 50, test: 20 }, 11);
    expect(b.train.x).toEqual(a.train.x);
    expect(b.train.y1).toEqual(a.train.y1);
    expect(b.test.y2).toEqual(a.test.y2);
    const c = sampleSplits(createTaskPair({ p: 0.7, seed: 3, dim: 8 }), { train: 50 }, 12);
    expect(c.train.x).not.toEqual(a.train.x);
  });

  it('shares the task pair across splits but not the rows', () => {
    const pair = createTaskPair({ p: 0.7, seed: 3, dim: 8 });
    const { train, test } = sampleSplits(pair, { train: 20, test: 20 }, 11);
    expect(train.w1).toBe(pair.w1);
    expect(test.w2).toBe(pair.w2);
    expect(test.x).not.toEqual(train.x);
    expect(train.x).toHaveLength(20 * 8);
    expect(train.n).toBe(20);
    expect(train.dim).toBe(8);
  });

  it('keeps a split unchanged when other splits are added or resized', () => {
    const pair = createTaskPair({ p: 0.7, seed: 3, dim: 8 });
    const alone = sampleSplits(pair, { test: 30 }, 11);
    const withOthers = sampleSplits(pair, { train: 100, validation: 5, test: 30 }, 11);
    expect(withOthers.test.x).toEqual(alone.test.x);
    expect(withOthers.test.y1).toEqual(alone.test.y1);
  });

  it('follows y = wᵀx + Σ sin(α·wᵀx + β) exactly without noise', () => {
    const pair = createTaskPair({ p: 0.3, seed: 4, dim: 16, noiseStd: 0 });
    const { train } = sampleSplits(pair, { train: 50 }, 1);
    for (let r = 0; r < train.n; r++) {
      const row = train.x.subarray(r * 16, (r + 1) * 16);
      for (const [w, y] of [
        [pair.w1, train.y1[r]],
        [pair.w2, train.y2[r]],
      ] as const) {
        const s = dot(w, row);
        let expected = s;
        for (let i = 0; i < pair.alpha.length; i++) expected += Math.sin(pair.alpha[i] * s + pair.beta[i]);
        expect(y).toBe(Math.fround(expected));
      }
    }
  });

  it('gives identical targets at p = 1 without noise', () => {
    const { train } = sampleSplits(createTaskPair({ p: 1, seed: 4, noiseStd: 0 }), { train: 100 }, 1);
    expect(train.y2).toEqual(train.y1);
  });

  it('adds noise of the requested standard deviation', () => {
    const pair = createTaskPair({ p: 0.5, seed: 6, dim: 10 });
    const { train } = sampleSplits(pair, { train: 20_000 }, 2);
    const resid = new Float32Array(train.n);
    for (let r = 0; r < train.n; r++) {
      const s = dot(pair.w1, train.x.subarray(r * 10, (r + 1) * 10));
      let f = s;
      for (let i = 0; i < pair.alpha.length; i++) f += Math.sin(pair.alpha[i] * s + pair.beta[i]);
      resid[r] = train.y1[r] - f;
    }
    expect(Math.sqrt(variance(resid))).toBeCloseTo(0.1, 2);
  });

  it('makes y1 and y2 more correlated as p grows', () => {
    for (const seed of [1, 2]) {
      // Under one seed u1, u2, α, β and x are the same for every p, so only p changes. wᵀx ~ N(0, c²) whatever dim is, so a
      // small dim gives the same picture at a tenth of the cost (Math-heavy code is slow inside Jest's vm context).
      const corr = [0.5, 0.9, 1].map((p) => {
        const { train } = sampleSplits(createTaskPair({ p, seed, dim: 10 }), { train: 20_000 }, 7);
        return { r: pearson(train.y1, train.y2), varY: variance(train.y1) };
      });
      const [half, high, one] = corr;
      expect(half.r).toBeLessThan(0.6);
      expect(high.r).toBeGreaterThan(half.r + 0.2);
      expect(one.r).toBeGreaterThan(high.r + 0.05);
      // At p = 1 only the noise separates the tasks: r = Var(f) / (Var(f) + σ²) = 1 − σ² / Var(y).
      expect(one.r).toBeCloseTo(1 - 0.01 / one.varY, 2);
    }
  });

  it('gives the linear parts wᵀx correlation p, and the labels the closed-form correlation, on a large sample', () => {
    for (const p of [0.5, 0.9, 1]) {
      const pair = createTaskPair({ p, seed: 3, dim: 10 });
      const { train } = sampleSplits(pair, { train: 100_000 }, 5);
      const s1 = new Float32Array(train.n);
      const s2 = new Float32Array(train.n);
      for (let r = 0; r < train.n; r++) {
        const row = train.x.subarray(r * 10, (r + 1) * 10);
        s1[r] = dot(pair.w1, row);
        s2[r] = dot(pair.w2, row);
      }
      expect(pearson(s1, s2)).toBeCloseTo(p, 2);
      // The products of sines are heavy-tailed: at 10⁵ rows the sample correlation is within about ±0.01 of its
      // expectation. Seed 3's sines bend the labels' correlation far below p at p = 0.5 (≈ 0.08), which tells the two apart.
      expect(Math.abs(pearson(train.y1, train.y2) - expectedLabelCorrelation(pair))).toBeLessThan(0.02);
    }
    expect(expectedLabelCorrelation(createTaskPair({ p: 0.5, seed: 3, dim: 10 }))).toBeLessThan(0.2);
  });

  it('has label correlation p without sines or noise, and 1 at p = 1 without noise', () => {
    for (const p of [-0.3, 0, 0.5, 0.9]) {
      expect(expectedLabelCorrelation(createTaskPair({ p, seed: 2, m: 0, noiseStd: 0 }))).toBeCloseTo(p, 12);
    }
    expect(expectedLabelCorrelation(createTaskPair({ p: 1, seed: 2, noiseStd: 0 }))).toBeCloseTo(1, 12);
  });

  it('rejects invalid sizes', () => {
    const pair = createTaskPair({ p: 0.5, seed: 1, dim: 4 });
    expect(() => sampleSplits(pair, { train: -1 }, 1)).toThrow(RangeError);
    expect(() => sampleSplits(pair, { train: 1.5 }, 1)).toThrow(RangeError);
  });
});

describe('syntheticCsvRows', () => {
  it('yields a header and rows that read back to the same float32 values', () => {
    const { train } = sampleSplits(createTaskPair({ p: 0.5, seed: 2, dim: 3 }), { train: 40 }, 3);
    const rows = [...syntheticCsvRows(train)];
    expect(rows[0]).toEqual(['x0', 'x1', 'x2', 'y1', 'y2']);
    expect(rows).toHaveLength(41);
    for (let r = 0; r < train.n; r++) {
      const values = rows[r + 1].map(Number);
      expect(Float32Array.from(values.slice(0, 3))).toEqual(train.x.subarray(r * 3, r * 3 + 3));
      expect(Math.fround(values[3])).toBe(train.y1[r]);
      expect(Math.fround(values[4])).toBe(train.y2[r]);
    }
  });
});
