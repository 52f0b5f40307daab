/**
 * The multi-task methods of the model library on data built for them, mean ± standard error over seeds and paired
 * differences (same data and seed) with a t-test's verdict:
 *
 * 1. a three-step funnel (impression → click → conversion → repurchase, bench:esmm's selection-biased world with a
 *    third step): MMoE on each step's joint event, ESMM (conditionalOn chain) and AITM (dependsOn chain), all on the
 *    same MMoE backbone; each step's AUC over every impression, the calibration (ECE) of the chained probabilities
 *    and how often a step scores above the previous one;
 * 2. loss balancing (fixed, uncertainty, gradnorm, pcgrad) on two pairs of tasks built to conflict: a rare purchase
 *    beside a spend in money units, and two tasks pulling shared features in opposite directions; each task's metric,
 *    the learnt weights, PCGrad's conflict share and the cost of a training step (one thread).
 *
 *   npm run bench:mtl [-- --quick] [--seeds N] [--train ROWS] [--parallel]
 *
 * --parallel adds the cost of a step on two data-parallel threads for each balancing method (one seed).
 */
import { cpus, loadavg } from 'node:os';

import {
  auc,
  conflictFeatures,
  ConflictScenario,
  conflictTasks,
  createSelectionBiasWorld,
  expectedCalibrationError,
  funnelFeatures,
  initBackend,
  MultiTaskModel,
  parseModelSpec,
  rmse,
  sampleConflict,
  sampleSelectionBias,
  type ModelSpecInput,
  type TrainSummary,
} from '@app/mmoe';

import {
  cpuModel,
  formatCount,
  hasFlag,
  log,
  markdownTable,
  meanStd,
  pairedDifferences,
  pairedVerdict,
  positiveIntFlag,
  standardError,
  stopwatch,
} from './bench.util';

interface Plan {
  seeds: number;
  train: number;
  test: number;
  epochs: number;
}
const FULL: Plan = { seeds: 5, train: 30_000, test: 30_000, epochs: 8 };
const QUICK: Plan = { seeds: 2, train: 4000, test: 4000, epochs: 2 };
const BATCH = 256;

const mean = (values: number[]) => meanStd(values).mean;
const meanSe = (values: number[], digits = 4) =>
  `${mean(values).toFixed(digits)} ± ${standardError(values).toFixed(digits)}`;

/** A metric of one seed's run, and its direction. */
interface Metric {
  name: string;
  higherIsBetter: boolean;
  digits?: number;
}

/** Per variant, per seed, the metrics' values in order. */
type Results<V extends string> = Map<V, number[][]>;

function resultsTable<V extends string>(results: Results<V>, metrics: Metric[]): string {
  return markdownTable(
    ['', ...metrics.map((m) => m.name)],
    [...results].map(([variant, runs]) => [
      variant,
      ...metrics.map((m, k) =>
        meanSe(
          runs.map((r) => r[k]),
          m.digits,
        ),
      ),
    ]),
  );
}

/** a − b per metric, paired by seed: mean ± standard error and the paired t-test's verdict for a. */
function differenceTable<V extends string>(results: Results<V>, metrics: Metric[], pairs: [V, V][]): string {
  return markdownTable(
    ['', ...metrics.map((m) => m.name)],
    pairs.map(([a, b]) => [
      `${a} − ${b}`,
      ...metrics.map((m, k) => {
        const d = pairedDifferences(
          results.get(a)!.map((r) => r[k]),
          results.get(b)!.map((r) => r[k]),
        );
        return `${meanSe(d, m.digits)} (${pairedVerdict(d, m.higherIsBetter)})`;
      }),
    ]),
  );
}

// 1. The funnel.

const FUNNEL = {
  MMoE: [{}, {}],
  ESMM: [{ conditionalOn: 'click' }, { conditionalOn: 'conversion' }],
  AITM: [{ dependsOn: 'click' }, { dependsOn: 'conversion' }],
} as const;
type FunnelVariant = keyof typeof FUNNEL;
const FUNNEL_METRICS: Metric[] = [
  { name: 'click AUC', higherIsBetter: true },
  { name: 'conversion AUC', higherIsBetter: true },
  { name: 'repurchase AUC', higherIsBetter: true },
  { name: 'conversion ECE', higherIsBetter: false },
  { name: 'repurchase ECE', higherIsBetter: false },
  { name: 'step above previous', higherIsBetter: false },
];

const funnelSpec = (variant: FunnelVariant, seed: number, epochs: number) => {
  const [conversion, repurchase] = FUNNEL[variant];
  return parseModelSpec({
    features: funnelFeatures,
    tasks: [
      { name: 'click', label: 'click', type: 'binary' },
      { name: 'conversion', label: 'conversion', type: 'binary', ...conversion },
      { name: 'repurchase', label: 'repurchase', type: 'binary', ...repurchase },
    ],
    model: { architecture: 'mmoe', experts: 3, expertUnits: [16], towerUnits: [8] },
    training: { epochs, batchSize: BATCH, learningRate: 0.005, seed, earlyStoppingPatience: 2 },
  });
};

async function funnelRun(variant: FunnelVariant, seed: number, plan: Plan): Promise<number[]> {
  const spec = funnelSpec(variant, seed, plan.epochs);
  const world = createSelectionBiasWorld(seed);
  const train = sampleSelectionBias(spec, world, plan.train, 2 * seed);
  const test = sampleSelectionBias(spec, world, plan.test, 2 * seed + 1);
  const { model } = await MultiTaskModel.train(spec, train.table, undefined, { threads: 1 });
  try {
    // Every variant's scores are each step's event over every impression (ESMM's and AITM's by construction).
    const { scores } = model.predict(model.encode(test.table));
    const joint = [test.table.labelColumns()[0], test.clickAndConversion, test.clickConversionRepurchase];
    let above = 0;
    for (let i = 0; i < test.table.size; i++) {
      if (scores[1][i] > scores[0][i] + 1e-7) above++;
      if (scores[2][i] > scores[1][i] + 1e-7) above++;
    }
    return [
      ...scores.map((s, t) => auc(s, joint[t])),
      expectedCalibrationError(scores[1], joint[1]),
      expectedCalibrationError(scores[2], joint[2]),
      above / (2 * test.table.size),
    ];
  } finally {
    model.dispose();
  }
}

// 2. Loss balancing.

const METHODS = {
  fixed: { method: 'fixed' },
  uncertainty: { method: 'uncertainty' },
  'gradnorm α=1.5': { method: 'gradnorm', alpha: 1.5 },
  pcgrad: { method: 'pcgrad' },
} as const;
type Method = keyof typeof METHODS;

const SCENARIOS: Record<
  ConflictScenario,
  { title: string; model: ModelSpecInput['model']; metrics: Metric[]; columns: string[] }
> = {
  scale: {
    title: 'a rare purchase (≈ 2 % positives) beside a spend in money units (MMoE 3 × [16], towers [8])',
    model: { architecture: 'mmoe', experts: 3, expertUnits: [16], towerUnits: [8] },
    metrics: [
      { name: 'purchase AUC', higherIsBetter: true },
      { name: 'spend RMSE', higherIsBetter: false, digits: 2 },
    ],
    columns: ['purchase', 'spend'],
  },
  opposed: {
    title: 'a like and a skip driven by the same features with opposite signs (shared-bottom [8], towers [4])',
    model: { architecture: 'shared-bottom', expertUnits: [8], towerUnits: [4] },
    metrics: [
      { name: 'like AUC', higherIsBetter: true },
      { name: 'skip AUC', higherIsBetter: true },
    ],
    columns: ['like', 'skip'],
  },
};

interface BalancingRun {
  metrics: number[];
  msPerStep: number;
  weights: number[];
  conflicts?: number;
}

async function balancingRun(
  scenario: ConflictScenario,
  method: Method,
  seed: number,
  plan: Plan,
  threads = 1,
): Promise<BalancingRun> {
  const spec = parseModelSpec({
    features: conflictFeatures,
    tasks: conflictTasks[scenario],
    model: SCENARIOS[scenario].model,
    training: {
      epochs: plan.epochs,
      batchSize: BATCH,
      learningRate: 0.005,
      seed,
      earlyStoppingPatience: 2,
      lossBalancing: METHODS[method],
    },
  });
  const train = sampleConflict(spec, scenario, seed, plan.train, 2 * seed);
  const test = sampleConflict(spec, scenario, seed, plan.test, 2 * seed + 1);
  const { model, summary } = await MultiTaskModel.train(spec, train, undefined, { threads });
  try {
    const { scores } = model.predict(model.encode(test));
    const labels = test.labelColumns();
    const metrics = spec.tasks.map((task, t) =>
      task.type === 'binary' ? auc(scores[t], labels[t]) : rmse(scores[t], labels[t]),
    );
    const last = summary.history.at(-1)!;
    return {
      metrics,
      msPerStep: msPerStep(summary),
      weights: spec.tasks.map((t) => last.taskWeights![t.name]),
      conflicts: last.gradientConflicts,
    };
  } finally {
    model.dispose();
  }
}

/** Training time of a full batch: the summary's throughput is over training steps only (validation excluded). */
const msPerStep = (summary: TrainSummary) => (BATCH / summary.examplesPerSec) * 1000;

/** Each method's step on one thread and on two (scenario 2a, seed 1), measured back to back. */
async function parallelCosts(plan: Plan): Promise<Map<Method, { one: number; two: number }>> {
  const costs = new Map<Method, { one: number; two: number }>();
  for (const method of Object.keys(METHODS) as Method[]) {
    const one = (await balancingRun('scale', method, 1, plan, 1)).msPerStep;
    const two = (await balancingRun('scale', method, 1, plan, 2)).msPerStep;
    costs.set(method, { one, two });
    log(`parallel ${method}: ${one.toFixed(1)} / ${two.toFixed(1)} ms/step`);
  }
  return costs;
}

async function main(): Promise<void> {
  const quick = hasFlag('quick');
  const plan = { ...(quick ? QUICK : FULL) };
  plan.seeds = positiveIntFlag('seeds', plan.seeds);
  plan.train = positiveIntFlag('train', plan.train);
  await initBackend('wasm');
  const loadBefore = loadavg()[0];
  const elapsed = stopwatch();

  const funnel: Results<FunnelVariant> = new Map((Object.keys(FUNNEL) as FunnelVariant[]).map((v) => [v, []]));
  for (let seed = 1; seed <= plan.seeds; seed++) {
    for (const [variant, runs] of funnel) {
      runs.push(await funnelRun(variant, seed, plan));
      log(`funnel seed ${seed} ${variant}: ${runs.at(-1)!.map((v) => v.toFixed(4))} (${elapsed().toFixed(0)} s)`);
    }
  }

  const balancing = new Map<ConflictScenario, Map<Method, BalancingRun[]>>();
  for (const scenario of Object.keys(SCENARIOS) as ConflictScenario[]) {
    const runs = new Map((Object.keys(METHODS) as Method[]).map((m) => [m, [] as BalancingRun[]]));
    balancing.set(scenario, runs);
    for (let seed = 1; seed <= plan.seeds; seed++) {
      for (const [method, list] of runs) {
        list.push(await balancingRun(scenario, method, seed, plan));
        const run = list.at(-1)!;
        log(
          `${scenario} seed ${seed} ${method}: ${run.metrics.map((v) => v.toFixed(4))}, ` +
            `${run.msPerStep.toFixed(1)} ms/step (${elapsed().toFixed(0)} s)`,
        );
      }
    }
  }
  const parallel = hasFlag('parallel') ? await parallelCosts(plan) : undefined;

  console.log(quick ? '\nQUICK SMOKE RUN (few rows, few epochs; not representative)\n' : '');
  console.log(`CPU: ${cpuModel()} (${cpus().length} cores), tfjs wasm backend, one training thread.`);
  console.log(
    `${plan.seeds} seeds (each its own world and samples); train / test = ${formatCount(plan.train)} / ` +
      `${formatCount(plan.test)} rows per seed; Adam lr 0.005, batch ${BATCH}, ≤ ${plan.epochs} epochs, early stopping ` +
      `on the first task's validation metric (patience 2). Mean ± standard error over seeds; differences paired by ` +
      `seed, with a paired t-test's verdict at 5 %.`,
  );

  console.log('\n## 1. Three-step funnel: click → conversion → repurchase\n');
  console.log(
    'Each step is scored as its event over every impression (click, click ∧ conversion, click ∧ conversion ∧ ' +
      'repurchase) and judged against it; ECE over 15 equal-mass bins; "step above previous" is the share of ' +
      '(impression, step) pairs whose probability exceeds the previous step’s, which the funnel forbids. MMoE 3 × ' +
      '[16], towers [8], for all three.\n',
  );
  console.log(resultsTable(funnel, FUNNEL_METRICS));
  console.log('');
  console.log(
    differenceTable(funnel, FUNNEL_METRICS, [
      ['AITM', 'ESMM'],
      ['AITM', 'MMoE'],
      ['ESMM', 'MMoE'],
    ]),
  );

  for (const [scenario, runs] of balancing) {
    const { title, metrics, columns } = SCENARIOS[scenario];
    console.log(`\n## 2${scenario === 'scale' ? 'a' : 'b'}. Loss balancing: ${title}\n`);
    const results: Results<Method> = new Map([...runs].map(([m, list]) => [m, list.map((r) => r.metrics)]));
    console.log(resultsTable(results, metrics));
    console.log('');
    console.log(
      differenceTable(
        results,
        metrics,
        (['uncertainty', 'gradnorm α=1.5', 'pcgrad'] as Method[]).map((m) => [m, 'fixed']),
      ),
    );
    const fixedMs = mean(runs.get('fixed')!.map((r) => r.msPerStep));
    console.log('');
    console.log(
      markdownTable(
        ['', 'ms per step', '× fixed', ...columns.map((c) => `${c} weight, last epoch`), 'conflicting pairs'],
        [...runs].map(([method, list]) => {
          const ms = mean(list.map((r) => r.msPerStep));
          const conflicts = list.map((r) => r.conflicts).filter((c): c is number => c !== undefined);
          return [
            method,
            ms.toFixed(2),
            (ms / fixedMs).toFixed(2),
            ...columns.map((_, t) =>
              meanSe(
                list.map((r) => r.weights[t]),
                3,
              ),
            ),
            conflicts.length > 0 ? meanSe(conflicts, 3) : '–',
          ];
        }),
      ),
    );
  }

  if (parallel) {
    console.log('\n## Cost of a step on two data-parallel threads (2a, seed 1)\n');
    console.log(
      markdownTable(
        ['', 'ms per step, 1 thread', 'ms per step, 2 threads', '2 threads / 1'],
        [...parallel].map(([method, { one, two }]) => [method, one.toFixed(2), two.toFixed(2), (two / one).toFixed(2)]),
      ),
    );
  }
  console.log(
    `\nwall time: ${elapsed().toFixed(0)} s; 1-minute load average before / after: ${loadBefore.toFixed(2)} / ` +
      `${loadavg()[0].toFixed(2)}`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
