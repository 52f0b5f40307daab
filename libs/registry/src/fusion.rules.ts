import { InvalidFieldsError, type FieldError } from '@app/common';
import { MAX_TASK_WEIGHT, taskType, type TaskTypeName } from '@app/mmoe/serving';

/**
 * How a version (or one request) fuses its task scores into the one score items are ranked by.
 *
 *   sum:     Σ_t w_t · s_t                       (a task left out weighs 0; regression tasks in label units)
 *   product: ∏_t f_t^{e_t} = exp(Σ_t e_t · ln f_t)  f_t = p_t for a binary task; for a regression task the declared
 *            monotone transform of its value: `log1p` → f = 1 + max(x, 0), `log` → f = max(x, 0).
 *
 * The product is the rule of YouTube's multitask ranker and of the PLE paper: a task's exponent is its elasticity,
 * so doubling one probability multiplies the score by the same factor whatever the other tasks say, where a sum lets
 * the task with the largest scale dominate. A regression value must be declared with a transform because a product
 * of raw label units (seconds, euros) is not monotone through zero.
 */
export type FusionTransform = 'log1p' | 'log';
/** Exponents beyond this make no sense as elasticities and would overflow the product of ordinary values. */
export const MAX_FUSION_EXPONENT = 100;
export const FUSION_TRANSFORMS: readonly FusionTransform[] = ['log1p', 'log'];

export type FusionRule =
  | { type: 'sum'; weights: Record<string, number> }
  | { type: 'product'; exponents: Record<string, number>; transforms?: Record<string, FusionTransform> };

/**
 * The OpenAPI shape of a fusion rule, for every route that takes one (a rollout body, a scoring request); beside the
 * rules that validate it, so that the two change together.
 */
export const FUSION_SCHEMA = {
  description:
    'How task scores are fused into the ranking score: `{"type": "sum", "weights": {task: w}}` = Σ w·s (a task left ' +
    `out weighs 0; |w| ≤ ${MAX_TASK_WEIGHT}), or \`{"type": "product", "exponents": {task: e}, "transforms": ` +
    `{regressionTask: ${FUSION_TRANSFORMS.map((t) => `"${t}"`).join(' | ')}}}\` = ∏ f^e (0 ≤ e ≤ ${MAX_FUSION_EXPONENT}) ` +
    'with f = p for a binary task and 1 + max(x, 0) (log1p) or max(x, 0) (log) for a regression one.',
  type: 'object',
  additionalProperties: true,
  example: {
    type: 'product',
    exponents: { click: 1, like: 0.5, watch_time: 0.3 },
    transforms: { watch_time: 'log1p' },
  },
} as const;

export interface FusionTask {
  name: string;
  type: TaskTypeName;
}

/**
 * Reads a fusion rule given as JSON (a rollout body or a scoring request); every problem is reported at once, each
 * naming its field (`fusion.exponents.like`, …).
 */
export function parseFusion(input: unknown, tasks: readonly FusionTask[], field = 'fusion'): FusionRule {
  const errors: FieldError[] = [];
  const fail = (path: string, message: string): void => {
    errors.push({ field: path, message: `${path} ${message}` });
  };
  const names = tasks.map((t) => t.name);
  const record = (value: unknown, path: string, check: (v: unknown, at: string, task: FusionTask) => void): void => {
    if (!isPlainObject(value)) return fail(path, 'must be an object keyed by task name');
    for (const [name, v] of Object.entries(value)) {
      const at = `${path}.${name}`;
      const task = tasks.find((t) => t.name === name);
      if (!task) fail(at, `is not a task of the model (${names.join(', ')})`);
      else check(v, at, task);
    }
  };
  const weight = (v: unknown, at: string): void => {
    if (typeof v !== 'number' || !(Math.abs(v) <= MAX_TASK_WEIGHT))
      fail(at, `must be a number between -${MAX_TASK_WEIGHT} and ${MAX_TASK_WEIGHT}`);
  };

  if (!isPlainObject(input)) {
    fail(field, 'must be an object: {"type": "sum", "weights": {…}} or {"type": "product", "exponents": {…}}');
    throw new InvalidFieldsError(errors);
  }
  const allowed = input.type === 'sum' ? ['type', 'weights'] : ['type', 'exponents', 'transforms'];
  for (const key of Object.keys(input)) if (!allowed.includes(key)) fail(`${field}.${key}`, 'is not allowed here');
  if (input.type === 'sum') {
    record(input.weights, `${field}.weights`, weight);
  } else if (input.type === 'product') {
    record(input.exponents, `${field}.exponents`, (v, at) => {
      if (typeof v !== 'number' || !(v >= 0 && v <= MAX_FUSION_EXPONENT))
        fail(at, `must be a number between 0 and ${MAX_FUSION_EXPONENT}`);
    });
    const transforms = input.transforms ?? {};
    record(transforms, `${field}.transforms`, (v, at, task) => {
      if (taskType(task).probability) fail(at, `is a ${task.type} task: its probability enters the product as it is`);
      else if (!FUSION_TRANSFORMS.includes(v as FusionTransform))
        fail(at, `must be one of ${FUSION_TRANSFORMS.join(', ')}`);
    });
    if (isPlainObject(input.exponents) && isPlainObject(transforms)) {
      for (const task of tasks) {
        const exponent = input.exponents[task.name];
        if (
          !taskType(task).probability &&
          typeof exponent === 'number' &&
          exponent !== 0 &&
          !(task.name in transforms)
        ) {
          fail(
            `${field}.transforms.${task.name}`,
            `is required: ${task.type} task "${task.name}" enters a product through a monotone transform (${FUSION_TRANSFORMS.join(', ')})`,
          );
        }
      }
    }
  } else {
    fail(`${field}.type`, 'must be "sum" or "product"');
  }
  if (errors.length > 0) throw new InvalidFieldsError(errors);
  return input as FusionRule;
}

/** A rule bound to a model's task order, ready for the scoring path. */
export interface CompiledFusion {
  rule: FusionRule;
  /** The fused score of each of `rows` items, from per-task score columns in task order. */
  fuse(scores: readonly Float32Array[], rows: number): Float64Array;
}

/**
 * Binds a (parsed) rule to the task order once per model or request, so that fusing is a loop over columns: no name
 * lookups per item. Tasks with weight or exponent 0 are skipped.
 */
export function compileFusion(rule: FusionRule, tasks: readonly FusionTask[]): CompiledFusion {
  // A product is summed in log space (and exponentiated once): a product of many small probabilities would underflow
  // long before its logarithm does.
  const terms = tasks.flatMap((task, t) => {
    if (rule.type === 'sum') {
      const w = rule.weights[task.name] ?? 0;
      return w === 0 ? [] : [{ t, term: (x: number) => w * x }];
    }
    const e = rule.exponents[task.name] ?? 0;
    if (e === 0) return [];
    const term =
      rule.transforms?.[task.name] === 'log1p'
        ? (x: number) => e * Math.log1p(Math.max(x, 0))
        : (x: number) => e * Math.log(Math.max(x, 0));
    return [{ t, term }];
  });
  const product = rule.type === 'product';
  return {
    rule,
    fuse(scores, rows) {
      const out = new Float64Array(rows);
      for (const { t, term } of terms) {
        const s = scores[t];
        for (let i = 0; i < rows; i++) out[i] += term(s[i]);
      }
      // Beyond the largest double the product is written as it (Infinity would be JSON's null): an exponent of 100 on
      // log1p(watch time) overflows past ~1,200 s. Such items tie, in request order, ahead of every finite product.
      if (product) for (let i = 0; i < rows; i++) out[i] = Math.min(Math.exp(out[i]), Number.MAX_VALUE);
      return out;
    },
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
