import { z } from 'zod';

import { TASK_TYPE_NAMES } from '../tasks/task-types';

const name = z
  .string()
  .min(1, 'must not be empty')
  .max(128, 'must be at most 128 characters')
  .regex(/^[A-Za-z0-9_.:-]+$/, 'may contain only letters, digits and _ . : -');
/**
 * Largest task weight in a blend, here and in the API's objectiveWeights: any finite float32 score times it, summed
 * over the tasks, stays a finite float64, so a ranking score is never Infinity or NaN.
 */
export const MAX_TASK_WEIGHT = 1e6;
const positiveInt = z.number().int('must be an integer').min(1, 'must be at least 1');

/** A key that belongs to another feature type: named in the error rather than reported as an unknown key. */
const onlyFor = (what: string) => z.never({ error: `only ${what}` }).optional();
const sequenceOnly = {
  separator: onlyFor('sequence features have a separator'),
  pooling: onlyFor('sequence features are pooled'),
  maxLength: onlyFor('sequence features have a maxLength'),
  sharedEmbedding: onlyFor('sequence features share an embedding'),
};

/** Where serving finds the feature (see feature-side.ts); inferred from the name when absent. */
const side = z.enum(['user', 'item', 'context'], { error: 'must be "user", "item" or "context"' }).optional();

const numericOnly = {
  transform: onlyFor('numeric features have a transform'),
  buckets: onlyFor('numeric features are bucketised'),
};

/**
 * A number, standardised (after `transform`), or with `buckets` cut at those boundaries and looked up in an embedding
 * of its own: row 0 missing, row 1 below b1, row k + 1 in [bk, bk+1), row n + 1 from bn on.
 */
const numericFeature = z
  .object({
    name,
    type: z.literal('numeric'),
    side,
    /** log1p(x) before standardisation, for heavy-tailed values (counts, money, durations); x must be > -1. */
    transform: z.enum(['log1p'], { error: 'must be "log1p"' }).optional(),
    buckets: z
      .array(z.number({ error: 'must be a finite number' }))
      .min(1, 'needs at least one boundary')
      .max(1024, 'must have at most 1024 boundaries')
      .optional(),
    /** With buckets only; 8 by default, the categoricals' default, so that they share one embedding table. */
    embeddingDim: positiveInt.max(1024).optional(),
    ...sequenceOnly,
  })
  .strict();

const vocabulary = {
  /** Hash the raw value into this many buckets instead of learning a vocabulary (ids with unbounded cardinality). */
  hashBuckets: z.number().int().min(2, 'must be at least 2').max(50_000_000).optional(),
  /** Vocabulary learnt from training data: the most frequent values, those seen fewer than minCount times are OOV. */
  maxVocab: positiveInt.max(5_000_000).default(100_000),
  minCount: positiveInt.default(1),
};

const categoricalFeature = z
  .object({
    name,
    type: z.literal('categorical'),
    side,
    embeddingDim: positiveInt.max(1024).default(8),
    ...vocabulary,
    ...sequenceOnly,
    ...numericOnly,
  })
  .strict();

/** A list of categories per row (a user's recent items, an item's genres), embedded and pooled into one vector. */
const sequenceFeature = z
  .object({
    name,
    type: z.literal('sequence'),
    side,
    /** Splits a CSV cell into values; the feature store and events hold a JSON array of strings instead. */
    separator: z.string().min(1, 'must not be empty').max(8, 'must be at most 8 characters').default('|'),
    pooling: z.enum(['mean', 'sum', 'max'], { error: 'must be "mean", "sum" or "max"' }).default('mean'),
    /** Longer lists keep their last maxLength values (the most recent, for a history). */
    maxLength: positiveInt.max(1024).default(50),
    /** 8 by default; with sharedEmbedding, the shared table's width. */
    embeddingDim: positiveInt.max(1024).optional(),
    hashBuckets: vocabulary.hashBuckets,
    maxVocab: z.number().int().min(1).max(5_000_000).optional(),
    minCount: z.number().int().min(1).optional(),
    /** Look values up in this categorical feature's table (e.g. a history of item ids in `item_id`'s embedding). */
    sharedEmbedding: name.optional(),
    ...numericOnly,
  })
  .strict();

const feature = z.discriminatedUnion('type', [numericFeature, categoricalFeature, sequenceFeature], {
  error: (issue) =>
    issue.code === 'invalid_union' ? 'type must be "numeric", "categorical" or "sequence"' : undefined,
});

const task = z
  .object({
    name,
    /** Column (CSV) or label key (events) holding this task's target. */
    label: name,
    type: z.enum(TASK_TYPE_NAMES, { error: `must be ${TASK_TYPE_NAMES.map((t) => `"${t}"`).join(' or ')}` }),
    weight: z.number().positive('must be > 0').max(MAX_TASK_WEIGHT).default(1),
    /**
     * ESMM (Ma et al., SIGIR 2018), binary tasks only: this task's head models P(task | parent); its output, label
     * and loss are the joint event P(parent ∧ task) over every example (the entire space).
     */
    conditionalOn: name.optional(),
    /** Trains (and evaluates) this task only on the examples where that binary task's label is 1. */
    sampleSpace: name.optional(),
  })
  .strict();

const softmaxGate = z
  .object({
    type: z.literal('softmax'),
    /** Logits are divided by it: above 1 flattens the gate (more experts mixed), below 1 sharpens it. */
    temperature: z.number().positive('must be > 0').max(100, 'must be at most 100').default(1),
    /**
     * Share of experts dropped from each example's gate in training, the kept weights renormalised (Zhao et al.
     * 2019, against gate polarisation); none at inference.
     */
    dropout: z.number().min(0, 'must be >= 0').lt(1, 'must be < 1').default(0),
  })
  .strict();
const noisyTopKGate = z
  .object({
    type: z.literal('noisy-top-k'),
    k: positiveInt,
    /** Learnt, input-dependent Gaussian noise on the gate logits during training (Shazeer et al. 2017). */
    noise: z.boolean().default(true),
    balanceLossWeight: z.number().min(0, 'must be >= 0').default(0.01),
  })
  .strict();
const gate = z.discriminatedUnion('type', [softmaxGate, noisyTopKGate], {
  error: (issue) => (issue.code === 'invalid_union' ? 'type must be "softmax" or "noisy-top-k"' : undefined),
});

const model = z
  .object({
    architecture: z
      .enum(['mmoe', 'shared-bottom', 'omoe', 'ple', 'cgc'], {
        error: 'must be one of "mmoe", "shared-bottom", "omoe", "ple", "cgc"',
      })
      .default('mmoe'),
    /** Shared experts (for ple: the experts every task's gate sees). */
    experts: positiveInt.max(256).default(4),
    expertUnits: z.array(positiveInt.max(65_536)).min(1, 'needs at least one layer'),
    /** ple and cgc: experts owned by each task (per level). */
    taskExperts: positiveInt.max(64).default(1),
    /** ple only: stacked extraction levels (default 1, which is CGC). */
    levels: positiveInt.max(8, 'must be at most 8').optional(),
    /** shared-bottom only: the shared layers; defaults to expertUnits. */
    bottomUnits: z.array(positiveInt.max(65_536)).min(1, 'needs at least one layer').optional(),
    towerUnits: z.array(positiveInt.max(65_536)).default([]),
    gate: gate.default({ type: 'softmax', temperature: 1, dropout: 0 }),
    /** Learn one log-variance per task and weigh the task losses by it (Kendall et al. 2018). */
    uncertaintyWeighting: z.boolean().default(false),
  })
  .strict();

const training = z
  .object({
    epochs: positiveInt.max(10_000).default(10),
    batchSize: positiveInt.max(65_536).default(512),
    learningRate: z.number().positive('must be > 0').max(10).default(0.001),
    seed: z.number().int('must be an integer').default(1),
    /** Epochs without improvement of the first task's validation metric before stopping; 0 disables. */
    earlyStoppingPatience: z.number().int().min(0).default(3),
    /**
     * Data-parallel training threads on the wasm backend (each its own tfjs-wasm on a shard of every batch). Default:
     * every available core, for training sets and models large enough to repay the threads (replicas.rules.ts).
     */
    threads: positiveInt.max(256).optional(),
    /** Share of the training rows held out for validation when no validation set is given. */
    validationFraction: z.number().gt(0, 'must be > 0').lt(1, 'must be < 1').default(0.1),
    /**
     * Post-hoc calibration of each binary task, fitted on the validation split after training and stored in the
     * artifact: Platt scaling, isotonic regression, or `auto` (whichever has the lower cross-validated log loss).
     */
    calibration: z
      .enum(['none', 'platt', 'isotonic', 'auto'], { error: 'must be "none", "platt", "isotonic" or "auto"' })
      .default('none'),
    /**
     * Column holding each example's weight in the loss (missing → 1; negative or non-finite is a row error). In
     * event-sourced training data, the events' weight.
     */
    sampleWeight: name.optional(),
    /** Weighted AUC and log loss (RMSE and MAE for regression) in evaluation, validation and early stopping. */
    weightedMetrics: z.boolean().default(false),
  })
  .strict();

export const modelSpecSchema = z
  .object({
    features: z.array(feature).min(1, 'needs at least one feature'),
    tasks: z.array(task).min(1, 'needs at least one task'),
    model,
    training: training.default({
      epochs: 10,
      batchSize: 512,
      learningRate: 0.001,
      seed: 1,
      earlyStoppingPatience: 3,
      validationFraction: 0.1,
      calibration: 'none',
      weightedMetrics: false,
    }),
  })
  .strict()
  .superRefine((spec, ctx) => {
    const seen = new Map<string, string>();
    const claim = (key: string, path: (string | number)[], what: string) => {
      const previous = seen.get(key);
      if (previous) ctx.addIssue({ code: 'custom', path, message: `"${key}" is already used by ${previous}` });
      else seen.set(key, what);
    };
    spec.features.forEach((f, i) => claim(f.name, ['features', i, 'name'], `features[${i}]`));
    spec.tasks.forEach((t, i) => claim(t.label, ['tasks', i, 'label'], `tasks[${i}].label`));
    const { sampleWeight, weightedMetrics } = spec.training;
    if (sampleWeight !== undefined) claim(sampleWeight, ['training', 'sampleWeight'], 'training.sampleWeight');
    else if (weightedMetrics)
      ctx.addIssue({ code: 'custom', path: ['training', 'weightedMetrics'], message: 'needs training.sampleWeight' });
    const taskNames = new Set<string>();
    spec.tasks.forEach((t, i) => {
      if (taskNames.has(t.name))
        ctx.addIssue({ code: 'custom', path: ['tasks', i, 'name'], message: `duplicate task name "${t.name}"` });
      taskNames.add(t.name);
    });
    spec.features.forEach((f, i) => {
      if (f.type === 'sequence') checkSequence(f, i, spec.features, ctx);
      if (f.type === 'numeric') checkNumeric(f, i, ctx);
    });
    checkTaskSpaces(spec.tasks, ctx);
    const { gate: g, architecture, experts } = spec.model;
    if (spec.model.levels !== undefined && architecture !== 'ple') {
      ctx.addIssue({
        code: 'custom',
        path: ['model', 'levels'],
        message: `only "ple" has levels (${architecture === 'cgc' ? 'cgc is one level' : `not "${architecture}"`})`,
      });
    }
    if (g.type === 'noisy-top-k') {
      const gated = architecture === 'ple' || architecture === 'cgc' ? experts + spec.model.taskExperts : experts;
      if (architecture === 'shared-bottom') {
        ctx.addIssue({
          code: 'custom',
          path: ['model', 'gate', 'type'],
          message: 'shared-bottom has no gate; use "softmax" or another architecture',
        });
      } else if (g.k >= gated) {
        ctx.addIssue({
          code: 'custom',
          path: ['model', 'gate', 'k'],
          message: `must be smaller than the ${gated} experts a gate chooses from (k = ${gated} is a plain softmax gate)`,
        });
      }
    }
  });

type FeatureOutput = z.output<typeof feature>;
type TaskOutput = z.output<typeof task>;

/** conditionalOn and sampleSpace name another binary task; conditionalOn chains end (no cycle). */
function checkTaskSpaces(tasks: TaskOutput[], ctx: z.RefinementCtx): void {
  const byName = new Map(tasks.map((t) => [t.name, t]));
  tasks.forEach((t, i) => {
    const problem = (key: string, message: string) =>
      ctx.addIssue({ code: 'custom', path: ['tasks', i, key], message });
    for (const key of ['conditionalOn', 'sampleSpace'] as const) {
      const other = t[key];
      if (other === undefined) continue;
      const target = byName.get(other);
      if (other === t.name) problem(key, 'must name another task, not this one');
      else if (!target) problem(key, `"${other}" is not a task of this spec`);
      else if (target.type !== 'binary') problem(key, `"${other}" is a regression task; name a binary task`);
    }
    if (t.conditionalOn === undefined) return;
    if (t.type !== 'binary') problem('conditionalOn', 'only a binary task can be conditional on another');
    if (t.sampleSpace !== undefined)
      problem('sampleSpace', 'a conditional task learns over the entire space; drop sampleSpace or conditionalOn');
    // Follow the chain of parents: coming back to this task is a cycle.
    const seen = [t.name];
    for (let parent = byName.get(t.conditionalOn); parent; parent = byName.get(parent.conditionalOn ?? '')) {
      if (parent.name === t.name && seen.length > 1) {
        problem('conditionalOn', `forms a cycle: ${[...seen, t.name].join(' → ')}`);
        break;
      }
      if (seen.includes(parent.name)) break; // a cycle that does not pass through this task: reported on its own tasks
      seen.push(parent.name);
    }
  });
}

/** Boundaries must cut the line into intervals; log1p before bucketising would not change which bucket a value is in. */
function checkNumeric(f: Extract<FeatureOutput, { type: 'numeric' }>, i: number, ctx: z.RefinementCtx): void {
  const at = (key: string) => ['features', i, key];
  if (f.buckets === undefined) {
    if (f.embeddingDim !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: at('embeddingDim'),
        message: 'only bucketised numeric features (buckets) have an embedding',
      });
    return;
  }
  const b = f.buckets;
  const k = b.findIndex((v, j) => j > 0 && !(v > b[j - 1]));
  if (k > 0)
    ctx.addIssue({
      code: 'custom',
      path: ['features', i, 'buckets', k],
      message: `must be strictly increasing: ${b[k]} does not exceed ${b[k - 1]}`,
    });
  if (f.transform !== undefined)
    ctx.addIssue({
      code: 'custom',
      path: at('transform'),
      message:
        'cannot be combined with buckets: a monotone transform leaves every value in its bucket (give the boundaries in the raw units)',
    });
}

/** A shared table must exist and be a categorical one; its vocabulary and width are then the sequence's. */
function checkSequence(
  f: Extract<FeatureOutput, { type: 'sequence' }>,
  i: number,
  features: FeatureOutput[],
  ctx: z.RefinementCtx,
): void {
  if (f.sharedEmbedding === undefined) return;
  const at = (key: string) => ['features', i, key];
  const shared = features.find((other) => other.name === f.sharedEmbedding);
  if (!shared || shared.type !== 'categorical') {
    const why = shared ? `is a ${shared.type} feature` : 'is not a feature of this spec';
    ctx.addIssue({
      code: 'custom',
      path: at('sharedEmbedding'),
      message: `"${f.sharedEmbedding}" ${why}; name a categorical feature`,
    });
    return;
  }
  if (f.embeddingDim !== undefined && f.embeddingDim !== shared.embeddingDim) {
    ctx.addIssue({
      code: 'custom',
      path: at('embeddingDim'),
      message: `must equal the embeddingDim ${shared.embeddingDim} of "${shared.name}", whose table it shares`,
    });
  }
  for (const key of ['hashBuckets', 'maxVocab', 'minCount'] as const) {
    if (f[key] !== undefined)
      ctx.addIssue({ code: 'custom', path: at(key), message: `comes from "${shared.name}" with sharedEmbedding` });
  }
}

export type ModelSpecInput = z.input<typeof modelSpecSchema>;
export type ModelSpec = z.output<typeof modelSpecSchema>;
export type FeatureSpec = ModelSpec['features'][number];
export type NumericFeatureSpec = Extract<FeatureSpec, { type: 'numeric' }>;
export type CategoricalFeatureSpec = Extract<FeatureSpec, { type: 'categorical' }>;
export type SequenceFeatureSpec = Extract<FeatureSpec, { type: 'sequence' }>;
export type Pooling = SequenceFeatureSpec['pooling'];
export type TaskSpec = ModelSpec['tasks'][number];
export type GateSpec = ModelSpec['model']['gate'];
export type Architecture = ModelSpec['model']['architecture'];
