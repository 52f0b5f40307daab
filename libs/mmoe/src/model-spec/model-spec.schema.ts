import { z } from 'zod';

import { TASK_TYPE_NAMES } from '../tasks/task-types';
import { featureSide } from './side';

const name = z
  .string()
  .min(1, 'must not be empty')
  .max(128, 'must be at most 128 characters')
  .regex(/^[A-Za-z0-9_.:-]+$/, 'may contain only letters, digits and _ . : -')
  // Such a key in a feature map or a record is refused by the API, and a trap in any plain object.
  .refine(
    (n) => !Object.hasOwn(Object.prototype, n),
    'must not be a built-in object property name (constructor, toString …)',
  );
/**
 * Largest task weight in a blend, here and in the API's objectiveWeights: any finite float32 score times it, summed
 * over the tasks, stays a finite float64, so a ranking score is never Infinity or NaN.
 */
export const MAX_TASK_WEIGHT = 1e6;
const positiveInt = z.number().int('must be an integer').min(1, 'must be at least 1');
/**
 * Bounds a stored version's spec passes too (it is parsed again to load it), so set far beyond any trained model:
 * they only stop input that makes checking a spec slow (quadratic in the features and in the tasks).
 */
const MAX_FEATURES = 5000;
const MAX_TASKS = 64;
/** A stack of dense layers' widths: deeper than 32 no recommender goes, and each layer is a step of every pass. */
const layers = z.array(positiveInt.max(65_536)).max(32, 'at most 32 layers');

/** A key that belongs to another feature type: named in the error rather than reported as an unknown key. */
const onlyFor = (what: string) => z.never({ error: `only ${what}` }).optional();
const sequenceOnly = {
  separator: onlyFor('sequence features have a separator'),
  pooling: onlyFor('sequence features are pooled'),
  maxLength: onlyFor('sequence features have a maxLength'),
  sharedEmbedding: onlyFor('sequence features share an embedding'),
  fromEvents: onlyFor('sequence features are fed by events'),
  target: onlyFor('sequence features are weighed against a target'),
  attentionUnits: onlyFor('sequence features have an attention unit'),
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

/** An embedding table's width when a spec gives none. */
export const DEFAULT_EMBEDDING_DIM = 8;

const categoricalFeature = z
  .object({
    name,
    type: z.literal('categorical'),
    side,
    embeddingDim: positiveInt.max(1024).default(DEFAULT_EMBEDDING_DIM),
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
    separator: z
      .string()
      .min(1, 'must not be empty')
      .max(8, 'must be at most 8 characters')
      // Postgres's jsonb, where a version's spec lives, holds no NUL and no lone surrogate.
      .refine((s) => !s.includes('\u0000') && !/\p{Cs}/u.test(s), 'must not hold a NUL or a lone surrogate')
      .default('|'),
    pooling: z
      .enum(['mean', 'sum', 'max', 'attention'], { error: 'must be "mean", "sum", "max" or "attention"' })
      .default('mean'),
    /**
     * Attention pooling (DIN, Zhou et al. KDD 2018): the categorical feature each value is weighed against, e.g. the
     * candidate's `item_id`; the values are looked up in its table (sharedEmbedding defaults to it).
     */
    target: name.optional(),
    /** Attention pooling: the hidden layers of the unit that weighs a value against the target (default [16]). */
    attentionUnits: z.array(positiveInt.max(4096)).min(1, 'needs at least one layer').max(8).optional(),
    /** Longer lists keep their last maxLength values (the most recent, for a history). */
    maxLength: positiveInt.max(1024).default(50),
    /** 8 by default; with sharedEmbedding, the shared table's width. */
    embeddingDim: positiveInt.max(1024).optional(),
    hashBuckets: vocabulary.hashBuckets,
    maxVocab: z.number().int().min(1).max(5_000_000).optional(),
    minCount: z.number().int().min(1).optional(),
    /** Look values up in this categorical feature's table (e.g. a history of item ids in `item_id`'s embedding). */
    sharedEmbedding: name.optional(),
    /**
     * A user-side list fed by events: the user's list in the feature store holds the item ids (or the items'
     * `itemFeature`, e.g. their genre) of their last maxLength logged events whose label for `task` is positive, by
     * when they occurred, most recent last; training rebuilds each row's list as it was when the event occurred.
     */
    fromEvents: z.object({ task: name, itemFeature: name.optional() }).strict().optional(),
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
    /**
     * AITM (Xi et al., KDD 2021), binary tasks only: the previous step of a funnel. This task's tower takes in that
     * task's representation through an attention transfer unit, and a calibrator term keeps its probability below
     * the previous step's; both learn over every example.
     */
    dependsOn: name.optional(),
    /** With dependsOn: α of the calibrator term α · mean(max(p_task − p_previous, 0)) (default 0.6). */
    calibratorWeight: z.number().min(0, 'must be >= 0').max(MAX_TASK_WEIGHT).optional(),
    /** DBMTL: tasks whose tower representations this task's relation layers read beside its own (a DAG). */
    relatedTasks: z.array(name).min(1, 'needs at least one task').max(64).optional(),
  })
  .strict();

const softmaxGate = z
  .object({
    type: z.literal('softmax'),
    /** Logits are divided by it: above 1 flattens the gate (more experts mixed), below 1 sharpens it. */
    // 1e-300 is 0 in float32: the logits divided by it are infinite, the gate's softmax NaN. 1e-30 is a normal float32.
    temperature: z.number().min(1e-30, 'must be at least 1e-30').max(100, 'must be at most 100').default(1),
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
    // 1e308 is infinite in float32, and the loss NaN.
    balanceLossWeight: z.number().min(0, 'must be >= 0').max(MAX_TASK_WEIGHT).default(0.01),
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
    expertUnits: layers.min(1, 'needs at least one layer'),
    /** ple and cgc: experts owned by each task (per level). */
    taskExperts: positiveInt.max(64).default(1),
    /** ple only: stacked extraction levels (default 1, which is CGC). */
    levels: positiveInt.max(8, 'must be at most 8').optional(),
    /** shared-bottom only: the shared layers; defaults to expertUnits. */
    bottomUnits: layers.min(1, 'needs at least one layer').optional(),
    towerUnits: layers.default([]),
    /** Layers of a tower with relatedTasks over its own and the related representations; default one as wide as the tower. */
    relationUnits: layers.min(1, 'needs at least one layer').optional(),
    gate: gate.default({ type: 'softmax', temperature: 1, dropout: 0 }),
    /** The spelling of training.lossBalancing {"method": "uncertainty"} from before lossBalancing. */
    uncertaintyWeighting: z.boolean().default(false),
  })
  .strict();

/**
 * How the task losses are weighed: the spec's weights (`fixed`), learnt log-variances (`uncertainty`, Kendall et al.
 * 2018), GradNorm (Chen et al. 2018: weights learnt so that the tasks' gradient norms on the last shared layer train
 * at rates set by α) or PCGrad (Yu et al. 2020: each task's gradient stripped of its conflict with the others').
 */
const lossBalancing = z.discriminatedUnion(
  'method',
  [
    z.object({ method: z.literal('fixed') }).strict(),
    z.object({ method: z.literal('uncertainty') }).strict(),
    z
      .object({
        method: z.literal('gradnorm'),
        /** Restoring force towards equal training rates: 0 equalises gradient norms only; the paper uses 0.12–3. */
        alpha: z.number().min(0, 'must be >= 0').max(10, 'must be at most 10').default(1.5),
      })
      .strict(),
    z.object({ method: z.literal('pcgrad') }).strict(),
  ],
  {
    error: (issue) =>
      issue.code === 'invalid_union' ? 'method must be "fixed", "uncertainty", "gradnorm" or "pcgrad"' : undefined,
  },
);

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
    lossBalancing: lossBalancing.default({ method: 'fixed' }),
  })
  .strict();

export const modelSpecSchema = z
  .object({
    // Bounded so that checking a spec stays instant (the task links' check is quadratic in the tasks).
    features: z
      .array(feature)
      .min(1, 'needs at least one feature')
      .max(MAX_FEATURES, `at most ${MAX_FEATURES} features`),
    tasks: z.array(task).min(1, 'needs at least one task').max(MAX_TASKS, `at most ${MAX_TASKS} tasks`),
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
      lossBalancing: { method: 'fixed' },
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
      if (f.type === 'sequence' && f.fromEvents) checkEventFed(f, i, spec, ctx);
      if (f.type === 'numeric') checkNumeric(f, i, ctx);
    });
    checkTaskSpaces(spec.tasks, ctx);
    checkTaskLinks(spec.tasks, ctx);
    checkTowers(spec, ctx);
    checkLossBalancing(spec, ctx);
    const { gate: g, architecture, experts } = spec.model;
    if (experts < 2 && (architecture === 'mmoe' || architecture === 'omoe'))
      ctx.addIssue({
        code: 'custom',
        path: ['model', 'experts'],
        message: `${architecture} mixes at least 2 experts (one expert is "shared-bottom")`,
      });
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
  })
  .transform(withAttentionDefaults);

type FeatureOutput = z.output<typeof feature>;
type TaskOutput = z.output<typeof task>;
type SpecOutput = { tasks: TaskOutput[]; model: z.output<typeof model>; training: z.output<typeof training> };

/** conditionalOn and sampleSpace name another binary task (cycles: checkTaskLinks). */
function checkTaskSpaces(tasks: TaskOutput[], ctx: z.RefinementCtx): void {
  // A name given twice (its own error) links to its first task: the last would judge a link by the wrong task.
  const byName = new Map(tasks.map((t) => [t.name, t] as const).reverse());
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
  });
}

/**
 * dependsOn (AITM) names another binary task learnt over the entire space; relatedTasks (DBMTL) name other tasks,
 * once each. Every link between tasks — conditionalOn, dependsOn, relatedTasks — together makes a DAG: an edge on a
 * cycle is reported on its own field, with the cycle.
 */
function checkTaskLinks(tasks: TaskOutput[], ctx: z.RefinementCtx): void {
  const index = new Map(tasks.map((t, i) => [t.name, i] as const).reverse()); // the first task of a name
  tasks.forEach((t, i) => {
    const problem = (path: (string | number)[], message: string) =>
      ctx.addIssue({ code: 'custom', path: ['tasks', i, ...path], message });
    if (t.dependsOn !== undefined) {
      const target = tasks[index.get(t.dependsOn) ?? -1];
      if (t.dependsOn === t.name) problem(['dependsOn'], 'must name another task, not this one');
      else if (!target) problem(['dependsOn'], `"${t.dependsOn}" is not a task of this spec`);
      else if (target.type !== 'binary')
        problem(['dependsOn'], `"${t.dependsOn}" is a ${target.type} task; a funnel step is a binary task`);
      else if (target.sampleSpace !== undefined)
        problem(
          ['dependsOn'],
          `"${t.dependsOn}" learns on its sampleSpace only; name a task learnt over every example`,
        );
      if (t.type !== 'binary') problem(['dependsOn'], 'only a binary task can be a funnel step');
      if (t.conditionalOn !== undefined)
        problem(['dependsOn'], 'conditionalOn (ESMM) and dependsOn (AITM) both chain a funnel; choose one');
      if (t.sampleSpace !== undefined)
        problem(['sampleSpace'], 'a dependsOn task learns over the entire space; drop sampleSpace or dependsOn');
    } else if (t.calibratorWeight !== undefined) {
      problem(['calibratorWeight'], "only a task with dependsOn has a calibrator (it bounds the task by dependsOn's)");
    }
    t.relatedTasks?.forEach((other, j) => {
      if (other === t.name) problem(['relatedTasks', j], 'must name another task, not this one');
      else if (!index.has(other)) problem(['relatedTasks', j], `"${other}" is not a task of this spec`);
      else if (t.relatedTasks!.indexOf(other) < j) problem(['relatedTasks', j], `"${other}" is listed twice`);
    });
  });
  const links = taskLinks(tasks);
  links.forEach((edges, i) =>
    edges.forEach(({ path, to }) => {
      const back = pathBetween(links, to, i);
      if (back)
        ctx.addIssue({
          code: 'custom',
          path: ['tasks', i, ...path],
          message: `forms a cycle: ${[i, ...back].map((k) => tasks[k].name).join(' → ')}`,
        });
    }),
  );
}

/** Per task, its links to other tasks of the spec (unknown names and self-links left out: reported on their own). */
function taskLinks(tasks: TaskOutput[]): { path: (string | number)[]; to: number }[][] {
  const index = new Map(tasks.map((t, i) => [t.name, i]));
  return tasks.map((t, i) => {
    const named: [(string | number)[], string | undefined][] = [
      [['conditionalOn'], t.conditionalOn],
      [['dependsOn'], t.dependsOn],
      ...(t.relatedTasks ?? []).map((r, j): [(string | number)[], string] => [['relatedTasks', j], r]),
    ];
    return named.flatMap(([path, name]) => {
      const to = name === undefined ? undefined : index.get(name);
      return to === undefined || to === i ? [] : [{ path, to }];
    });
  });
}

/** The tasks from `from` to `to` along the links (both ends included), breadth first; undefined when unreachable. */
function pathBetween(links: { to: number }[][], from: number, to: number): number[] | undefined {
  const previous = new Map<number, number>([[from, -1]]);
  for (const queue = [from]; queue.length > 0;) {
    const at = queue.shift()!;
    if (at === to) {
      const path = [at];
      for (let k = previous.get(at)!; k >= 0; k = previous.get(k)!) path.unshift(k);
      return path;
    }
    for (const { to: next } of links[at]) {
      if (!previous.has(next)) {
        previous.set(next, at);
        queue.push(next);
      }
    }
  }
  return undefined;
}

/** relationUnits shape the relation layers, which only tasks with relatedTasks have. */
function checkTowers(spec: SpecOutput, ctx: z.RefinementCtx): void {
  if (spec.model.relationUnits !== undefined && !spec.tasks.some((t) => t.relatedTasks !== undefined))
    ctx.addIssue({
      code: 'custom',
      path: ['model', 'relationUnits'],
      message: 'only tasks with relatedTasks have relation layers',
    });
}

/** Gradient-level balancing weighs tasks against each other: it needs two; uncertaintyWeighting is its own method. */
function checkLossBalancing(spec: SpecOutput, ctx: z.RefinementCtx): void {
  const { method } = spec.training.lossBalancing;
  if ((method === 'gradnorm' || method === 'pcgrad') && spec.tasks.length < 2)
    ctx.addIssue({
      code: 'custom',
      path: ['training', 'lossBalancing', 'method'],
      message: `${method} balances tasks against each other and needs at least two tasks`,
    });
  if (spec.model.uncertaintyWeighting && method !== 'fixed' && method !== 'uncertainty')
    ctx.addIssue({
      code: 'custom',
      path: ['model', 'uncertaintyWeighting'],
      message: `is training.lossBalancing {"method": "uncertainty"}, which cannot be combined with "${method}"; choose one`,
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

/**
 * An event-fed list belongs to the user (events name a user) and is fed by one of the spec's tasks, with the items'
 * ids or the value of an item-side categorical feature of theirs.
 */
function checkEventFed(
  f: Extract<FeatureOutput, { type: 'sequence' }>,
  i: number,
  spec: { features: FeatureOutput[]; tasks: TaskOutput[] },
  ctx: z.RefinementCtx,
): void {
  const { tasks } = spec;
  const side = featureSide(f);
  if (side !== 'user')
    ctx.addIssue({
      code: 'custom',
      path: ['features', i, 'fromEvents'],
      message: `only a user-side feature can be fed by events (this one is ${side}-side: name it user_… or set side "user")`,
    });
  const task = f.fromEvents!.task;
  if (!tasks.some((t) => t.name === task))
    ctx.addIssue({
      code: 'custom',
      path: ['features', i, 'fromEvents', 'task'],
      message: `"${task}" is not a task of this spec; name the task whose positive labels feed the list`,
    });
  const { itemFeature } = f.fromEvents!;
  if (itemFeature === undefined) return;
  const fedSide = featureSide(spec.features.find((other) => other.name === itemFeature) ?? { name: itemFeature });
  const why =
    notCategorical(spec.features, itemFeature) ??
    (fedSide === 'item' ? undefined : `"${itemFeature}" is ${fedSide}-side`);
  if (why)
    ctx.addIssue({
      code: 'custom',
      path: ['features', i, 'fromEvents', 'itemFeature'],
      message: `${why}; name an item-side categorical feature, whose value for the event's item is appended`,
    });
}

/** Why `name` is not a categorical feature of the spec; undefined when it is one. */
function notCategorical(features: FeatureOutput[], name: string): string | undefined {
  const found = features.find((f) => f.name === name);
  if (!found) return `"${name}" is not a feature of this spec`;
  return found.type === 'categorical' ? undefined : `"${name}" is a ${found.type} feature`;
}

/**
 * A shared table must exist and be a categorical one; its vocabulary and width are then the sequence's. Attention
 * pooling's target is its table when sharedEmbedding is absent.
 */
function checkSequence(
  f: Extract<FeatureOutput, { type: 'sequence' }>,
  i: number,
  features: FeatureOutput[],
  ctx: z.RefinementCtx,
): void {
  const at = (key: string) => ['features', i, key];
  if (f.pooling === 'attention') {
    if (!checkAttention(f, i, features, ctx)) return;
  } else
    for (const key of ['target', 'attentionUnits'] as const)
      if (f[key] !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: at(key),
          message: 'only attention pooling has it (set pooling "attention")',
        });
  const sharedName = f.sharedEmbedding ?? (f.pooling === 'attention' ? f.target : undefined);
  if (sharedName === undefined) return;
  const why = notCategorical(features, sharedName);
  if (why) {
    ctx.addIssue({ code: 'custom', path: at('sharedEmbedding'), message: `${why}; name a categorical feature` });
    return;
  }
  const shared = features.find((other) => other.name === sharedName)!;
  if (f.embeddingDim !== undefined && f.embeddingDim !== shared.embeddingDim) {
    ctx.addIssue({
      code: 'custom',
      path: at('embeddingDim'),
      message: `must equal the embeddingDim ${shared.embeddingDim} of "${shared.name}", whose table it shares`,
    });
  }
  for (const key of ['hashBuckets', 'maxVocab', 'minCount'] as const) {
    if (f[key] !== undefined)
      ctx.addIssue({ code: 'custom', path: at(key), message: `comes from "${shared.name}", whose table it shares` });
  }
}

/**
 * Attention pooling weighs each value against a categorical target in one embedding table: the sequence shares the
 * target's table (sharedEmbedding, given or defaulted to it by withAttentionDefaults). False when the target is not
 * such a feature (reported here).
 */
function checkAttention(
  f: Extract<FeatureOutput, { type: 'sequence' }>,
  i: number,
  features: FeatureOutput[],
  ctx: z.RefinementCtx,
): boolean {
  const at = (key: string) => ['features', i, key];
  if (f.target === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: at('target'),
      message: 'attention pooling needs a target: the categorical feature (e.g. item_id) each value is weighed against',
    });
    return false;
  }
  const why = notCategorical(features, f.target);
  if (why) {
    ctx.addIssue({ code: 'custom', path: at('target'), message: `${why}; name a categorical feature` });
    return false;
  }
  if (f.sharedEmbedding !== undefined && f.sharedEmbedding !== f.target) {
    ctx.addIssue({
      code: 'custom',
      path: at('sharedEmbedding'),
      message: `must be the target "${f.target}" (or absent): attention compares each value with the target in its table`,
    });
    return false;
  }
  return true;
}

/** Attention pooling reads the target's table: a sequence without sharedEmbedding gets the target's. */
function withAttentionDefaults<S extends { features: FeatureOutput[] }>(spec: S): S {
  const defaulted = (f: FeatureOutput) => f.type === 'sequence' && f.pooling === 'attention' && !f.sharedEmbedding;
  if (!spec.features.some(defaulted)) return spec;
  return { ...spec, features: spec.features.map((f) => (defaulted(f) ? { ...f, sharedEmbedding: f.target } : f)) };
}

export type ModelSpecInput = z.input<typeof modelSpecSchema>;
export type ModelSpec = z.output<typeof modelSpecSchema>;
export type FeatureSpec = ModelSpec['features'][number];
export type NumericFeatureSpec = Extract<FeatureSpec, { type: 'numeric' }>;
export type CategoricalFeatureSpec = Extract<FeatureSpec, { type: 'categorical' }>;
export type SequenceFeatureSpec = Extract<FeatureSpec, { type: 'sequence' }>;
export type Pooling = SequenceFeatureSpec['pooling'];
/** The attention unit's hidden layers when a spec gives none. */
export const DEFAULT_ATTENTION_UNITS = [16];
export type TaskSpec = ModelSpec['tasks'][number];
export type GateSpec = ModelSpec['model']['gate'];
export type Architecture = ModelSpec['model']['architecture'];
export type LossBalancing = ModelSpec['training']['lossBalancing'];

/** The calibrator's weight α when a dependsOn task does not give one: the AITM reference code's. */
export const DEFAULT_CALIBRATOR_WEIGHT = 0.6;

/** How the spec weighs its task losses (model.uncertaintyWeighting is the older spelling of "uncertainty"). */
export function lossBalancingOf(spec: Pick<ModelSpec, 'model' | 'training'>): LossBalancing {
  const balancing = spec.training.lossBalancing;
  return spec.model.uncertaintyWeighting && balancing.method === 'fixed' ? { method: 'uncertainty' } : balancing;
}
