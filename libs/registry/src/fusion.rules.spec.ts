import { InvalidFieldsError, type FieldError } from '@app/common';

import { compileFusion, parseFusion, type FusionTask } from './fusion.rules';

const TASKS: FusionTask[] = [
  { name: 'click', type: 'binary' },
  { name: 'like', type: 'binary' },
  { name: 'watch_time', type: 'regression' },
];
const columns = (...rows: number[][]) => TASKS.map((_, t) => Float32Array.from(rows, (r) => r[t]));

function fieldErrors(input: unknown): FieldError[] {
  try {
    parseFusion(input, TASKS);
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidFieldsError);
    return (e as InvalidFieldsError).errors;
  }
  throw new Error('expected an error');
}

describe('fusion rules', () => {
  it('sums weighted scores, a task left out weighing 0 (as objectiveWeights always did)', () => {
    const sum = compileFusion(parseFusion({ type: 'sum', weights: { click: 1, watch_time: 0.01 } }, TASKS), TASKS);
    const fused = sum.fuse(columns([0.5, 0.9, 100], [0.2, 0.1, 10]), 2);
    expect(Array.from(fused)).toEqual([expect.closeTo(1.5, 6), expect.closeTo(0.3, 6)]);
  });

  it('multiplies probabilities raised to their exponents, a regression task through its declared transform', () => {
    const rule = {
      type: 'product',
      exponents: { click: 1, like: 0.5, watch_time: 2 },
      transforms: { watch_time: 'log1p' },
    };
    const product = compileFusion(parseFusion(rule, TASKS), TASKS);
    // 0.5 · √0.25 · (1 + 3)² = 4; a negative watch time enters as 1 + 0: 0.2 · √0.64 · 1 = 0.16.
    const fused = product.fuse(columns([0.5, 0.25, 3], [0.2, 0.64, -5]), 2);
    expect(fused[0]).toBeCloseTo(4, 5);
    expect(fused[1]).toBeCloseTo(0.16, 6);
    // `log`: the value itself (clamped at 0), so a zero watch time zeroes the product.
    const raw = compileFusion(
      parseFusion(
        { type: 'product', exponents: { click: 1, watch_time: 1 }, transforms: { watch_time: 'log' } },
        TASKS,
      ),
      TASKS,
    );
    expect(Array.from(raw.fuse(columns([0.5, 0, 3], [0.5, 0, 0]), 2))).toEqual([expect.closeTo(1.5, 6), 0]);
  });

  it('writes a product beyond the largest double as the largest double, never Infinity (null in JSON)', () => {
    const steep = compileFusion(
      parseFusion({ type: 'product', exponents: { watch_time: 100 }, transforms: { watch_time: 'log1p' } }, TASKS),
      TASKS,
    );
    const fused = steep.fuse(columns([0.5, 0.5, 5000], [0.5, 0.5, 1000]), 2);
    expect(fused[0]).toBe(Number.MAX_VALUE);
    expect(fused[1]).toBeCloseTo(1001 ** 100, -290);
  });

  it('ranks differently from a sum when one task is on a larger scale', () => {
    // Item A: sure click, short watch; item B: likely click, long watch. The sum follows the seconds, the product
    // weighs the relative changes: doubling one factor counts the same whatever the others are.
    const scores = columns([0.9, 0.5, 10], [0.3, 0.5, 40]);
    const sum = compileFusion({ type: 'sum', weights: { click: 1, watch_time: 1 } }, TASKS).fuse(scores, 2);
    const product = compileFusion(
      { type: 'product', exponents: { click: 1, watch_time: 0.5 }, transforms: { watch_time: 'log1p' } },
      TASKS,
    ).fuse(scores, 2);
    expect(sum[1]).toBeGreaterThan(sum[0]);
    expect(product[0]).toBeGreaterThan(product[1]);
  });

  it('names every bad field', () => {
    expect(fieldErrors({ type: 'max' })).toEqual([
      { field: 'fusion.type', message: 'fusion.type must be "sum" or "product"' },
    ]);
    expect(fieldErrors('sum')[0].field).toBe('fusion');
    expect(
      fieldErrors({
        type: 'product',
        exponents: { click: -1, share: 1, watch_time: 1 },
        transforms: { like: 'log1p' },
        weights: {},
      }).map((e) => e.field),
    ).toEqual([
      'fusion.weights',
      'fusion.exponents.click',
      'fusion.exponents.share',
      'fusion.transforms.like',
      'fusion.transforms.watch_time',
    ]);
    expect(fieldErrors({ type: 'product', exponents: { watch_time: 1 } })).toEqual([
      {
        field: 'fusion.transforms.watch_time',
        message:
          'fusion.transforms.watch_time is required: regression task "watch_time" enters a product through a monotone transform (log1p, log)',
      },
    ]);
    expect(fieldErrors({ type: 'product', exponents: { watch_time: 1 }, transforms: { watch_time: 'sqrt' } })).toEqual([
      { field: 'fusion.transforms.watch_time', message: 'fusion.transforms.watch_time must be one of log1p, log' },
    ]);
    expect(fieldErrors({ type: 'sum', weights: { click: 'a lot' } })[0].field).toBe('fusion.weights.click');
  });
});
