/**
 * The synthetic experiment of the MMoE paper (Ma et al., KDD 2018, §4), run as the paper ran it: two regression tasks
 * whose correlation p is a knob; shared-bottom (113 units), OMoE and MMoE (8 experts of 16 units), towers of 8 units;
 * Adam with the learning rate picked per architecture from {1e-4, 1e-3, 1e-2} on validation; a fixed training budget
 * on the sum of both tasks' MSE; many seeds, each with new data and a new init shared by the three architectures, so
 * that their losses can be compared seed by seed.
 *
 *   npm run bench:synthetic -- [--quick] [--seeds 20] [--correlations 0.5,0.9,1] [--epochs 12] [--train 10000]
 *     [--batch 128] [--lr-seeds 2] [--lr 0.001] [--json out.json] [--backend wasm|cpu|tensorflow]
 *   npm run bench:synthetic -- --replay out.json     # the tables of a saved run, without training
 */
import { readFileSync, writeFileSync } from 'node:fs';

import {
  Architecture,
  BACKEND_NAMES,
  BackendName,
  createTaskPair,
  EncodedDataset,
  expectedLabelCorrelation,
  initBackend,
  ModelSpec,
  MultiTaskNetwork,
  parseModelSpec,
  predict,
  PreprocessingState,
  sampleSplits,
  SyntheticSplit,
  trainNetwork,
} from '@app/mmoe';

import {
  cpuModel,
  flagValue,
  formatCount,
  hasFlag,
  log,
  markdownTable,
  meanStd,
  pairedDifferences,
  pearson,
  positiveIntFlag,
  quantile,
  standardError,
  stopwatch,
} from './bench.util';

const DIM = 100;
const ARCHITECTURES: Architecture[] = ['shared-bottom', 'omoe', 'mmoe'];
const EXPERTS = 8;
const EXPERT_UNITS = [16];
const TOWER_UNITS = [8];
/** The paper's width for shared-bottom, chosen there to match MMoE's parameter count. */
const BOTTOM_UNITS = [113];
const LEARNING_RATES = [1e-4, 1e-3, 1e-2];
/** Learning-rate selection runs on seeds of their own, so that the evaluation seeds' test data never picks anything. */
const SELECTION_SEED_BASE = 10_000;
/** The early stopping of the former protocol, replayed on each run's validation curve. */
const OLD_PATIENCE = 3;

interface Plan {
  seeds: number;
  correlations: number[];
  sizes: { train: number; validation: number; test: number };
  epochs: number;
  batchSize: number;
  /** Seeds per (architecture, learning rate) of the selection, at the lowest correlation. */
  lrSeeds: number;
  /** Skips the selection and uses this rate for every architecture. */
  fixedLr?: number;
}

// 198 trainings (180 + 18 for the selection) of 5–25 s each on one shared core: about 33 minutes. 20 epochs would
// have taken about an hour here; the loss curve it prints shows how far from flat 12 epochs leave each model.
const FULL: Plan = {
  seeds: 20,
  correlations: [0.5, 0.9, 1],
  sizes: { train: 10_000, validation: 1000, test: 2000 },
  epochs: 12,
  batchSize: 128,
  lrSeeds: 2,
};
const QUICK: Plan = {
  seeds: 3,
  correlations: [0.5, 1],
  sizes: { train: 1000, validation: 300, test: 300 },
  epochs: 3,
  batchSize: 128,
  lrSeeds: 1,
};

function planFromFlags(): Plan {
  const base = hasFlag('quick') ? QUICK : FULL;
  const correlations = flagValue('correlations')
    ?.split(',')
    .map((v) => {
      const p = Number(v);
      if (!(p >= -1 && p <= 1)) throw new Error(`--correlations: each value must be in [-1, 1] (got "${v}")`);
      return p;
    });
  const lr = flagValue('lr');
  if (lr !== undefined && !(Number(lr) > 0)) throw new Error(`--lr must be > 0 (got "${lr}")`);
  const train = positiveIntFlag('train', base.sizes.train);
  return {
    seeds: positiveIntFlag('seeds', base.seeds),
    correlations: correlations ?? base.correlations,
    sizes: { ...base.sizes, train },
    epochs: positiveIntFlag('epochs', base.epochs),
    batchSize: positiveIntFlag('batch', base.batchSize),
    lrSeeds: positiveIntFlag('lr-seeds', base.lrSeeds),
    fixedLr: lr === undefined ? undefined : Number(lr),
  };
}

/** One epoch's MSE per task in label units, on validation and test, of the weights at the end of that epoch. */
interface EpochPoint {
  valid: [number, number];
  test: [number, number];
}

interface Run {
  architecture: Architecture;
  p: number;
  seed: number;
  learningRate: number;
  curve: EpochPoint[];
  /** MMoE only: mean over test rows of the total-variation distance between the two tasks' gates, last epoch. */
  gateDistance?: number;
  seconds: number;
}

type Splits = Record<keyof Plan['sizes'], SyntheticSplit>;

const sum = (pair: [number, number]) => pair[0] + pair[1];
const finalTest = (run: Run) => sum(run.curve.at(-1)!.test);

function specFor(architecture: Architecture, plan: Plan, seed: number, learningRate: number): ModelSpec {
  return parseModelSpec({
    features: Array.from({ length: DIM }, (_, j) => ({ name: `x${j}`, type: 'numeric' })),
    tasks: [
      { name: 'y1', label: 'y1', type: 'regression' },
      { name: 'y2', label: 'y2', type: 'regression' },
    ],
    model: {
      architecture,
      experts: EXPERTS,
      expertUnits: EXPERT_UNITS,
      towerUnits: TOWER_UNITS,
      bottomUnits: architecture === 'shared-bottom' ? BOTTOM_UNITS : undefined,
    },
    // No early stopping: every run gets the same budget, and its last epoch's weights are the ones measured.
    training: {
      epochs: plan.epochs,
      batchSize: plan.batchSize,
      learningRate,
      seed,
      earlyStoppingPatience: 0,
      threads: 1,
    },
  });
}

function labelStats(y: Float32Array): { mean: number; std: number } {
  const mean = y.reduce((s, v) => s + v, 0) / y.length;
  return { mean, std: Math.sqrt(y.reduce((s, v) => s + (v - mean) ** 2, 0) / y.length) };
}

/**
 * x is drawn from N(0, I), so its standardisation is the identity; the labels are standardised with the training
 * split's statistics, as fitPreprocessing would, so that predictions come back in label units.
 */
function preprocessingFor(train: SyntheticSplit): PreprocessingState {
  return {
    numeric: Array.from({ length: DIM }, (_, j) => ({ name: `x${j}`, mean: 0, std: 1 })),
    categorical: [],
    sequence: [],
    labels: [
      { task: 'y1', ...labelStats(train.y1) },
      { task: 'y2', ...labelStats(train.y2) },
    ],
  };
}

/** Built from the arrays directly: the rows are already model-ready, and a RawTable of 10⁶ strings would only cost time. */
function encoded(split: SyntheticSplit): EncodedDataset {
  return {
    size: split.n,
    numericWidth: split.dim,
    numeric: split.x,
    categorical: [],
    sequences: [],
    labels: [split.y1, split.y2],
  };
}

function parameterCount(spec: ModelSpec, preprocessing: PreprocessingState): number {
  const network = new MultiTaskNetwork(spec, preprocessing);
  const count = network.parameterCount();
  network.dispose();
  return count;
}

/** Test MSE per task in label units and, for two gates, how far apart they weigh the experts (0: alike, 1: disjoint). */
function onTest(network: MultiTaskNetwork, test: SyntheticSplit, gates: boolean) {
  const { scores, gateWeights } = predict(network, encoded(test), { batchSize: 4096, gateWeights: gates });
  const mse = (pred: Float32Array, y: Float32Array) => pred.reduce((s, v, i) => s + (v - y[i]) ** 2, 0) / y.length;
  const [g1, g2] = gateWeights ?? [];
  const gateDistance = g2 ? g1.reduce((s, v, i) => s + Math.abs(v - g2[i]), 0) / 2 / test.n : undefined;
  return { mse: [mse(scores[0], test.y1), mse(scores[1], test.y2)] as [number, number], gateDistance };
}

async function trainOnce(spec: ModelSpec, splits: Splits, p: number, architecture: Architecture): Promise<Run> {
  const network = new MultiTaskNetwork(spec, preprocessingFor(splits.train));
  const curve: EpochPoint[] = [];
  let gateDistance: number | undefined;
  const seconds = stopwatch();
  try {
    await trainNetwork(network, encoded(splits.train), encoded(splits.validation), {
      // Called with the epoch's own weights, before the trainer restores its best epoch's: the last point is the
      // fixed-budget result, and the whole curve lets the former early-stopping protocol be replayed on the same run.
      onEpochEnd: ({ epoch, epochs, valid }) => {
        const rmse = (task: string) => valid.tasks[task].rmse!;
        const test = onTest(network, splits.test, architecture === 'mmoe' && epoch === epochs);
        curve.push({ valid: [rmse('y1') ** 2, rmse('y2') ** 2], test: test.mse });
        gateDistance ??= test.gateDistance;
      },
    });
  } finally {
    network.dispose();
  }
  const { seed, learningRate } = spec.training;
  return { architecture, p, seed, learningRate, curve, gateDistance, seconds: seconds() };
}

/** The former protocol: stop once y1's validation MSE has not improved for `patience` epochs; its best epoch (1-based). */
function earlyStoppedOnY1(run: Run, patience: number): number {
  let best = 0;
  for (let e = 1; e < run.curve.length && e - best < patience; e++)
    if (run.curve[e].valid[0] < run.curve[best].valid[0]) best = e;
  return best + 1;
}

function splitsFor(p: number, seed: number, plan: Plan): Splits {
  return sampleSplits(createTaskPair({ p, seed, dim: DIM }), plan.sizes, seed);
}

function parseBackend(): BackendName | undefined {
  const value = flagValue('backend');
  if (value === undefined) return undefined;
  if (!(BACKEND_NAMES as readonly string[]).includes(value))
    throw new Error(`--backend must be one of ${BACKEND_NAMES.join(', ')} (got "${value}")`);
  return value as BackendName;
}

const fmt = (v: number, digits = 4) => v.toFixed(digits);
const signed = (v: number, digits = 4) => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(digits)}`;
const meanSe = (values: number[]) => `${fmt(meanStd(values).mean)} ± ${fmt(standardError(values))}`;

/** Picks each architecture's learning rate by its mean final validation loss (sum of both tasks' MSE). */
async function selectLearningRates(plan: Plan, elapsed: () => number): Promise<Map<Architecture, number>> {
  if (plan.fixedLr !== undefined) return new Map(ARCHITECTURES.map((a) => [a, plan.fixedLr!]));
  const p = Math.min(...plan.correlations);
  const loss = new Map<string, number[]>();
  for (let s = 1; s <= plan.lrSeeds; s++) {
    const seed = SELECTION_SEED_BASE + s;
    const splits = splitsFor(p, seed, plan);
    for (const architecture of ARCHITECTURES)
      for (const lr of LEARNING_RATES) {
        const run = await trainOnce(specFor(architecture, plan, seed, lr), splits, p, architecture);
        const valid = sum(run.curve.at(-1)!.valid);
        loss.set(`${architecture}@${lr}`, [...(loss.get(`${architecture}@${lr}`) ?? []), valid]);
        log(
          `lr selection p=${p} seed=${seed} ${architecture} lr ${lr}: validation loss ${fmt(valid)} (${elapsed().toFixed(0)} s)`,
        );
      }
  }
  const mean = (a: Architecture, lr: number) => meanStd(loss.get(`${a}@${lr}`)!).mean;
  const chosen = new Map(
    ARCHITECTURES.map((a) => [a, LEARNING_RATES.reduce((best, lr) => (mean(a, lr) < mean(a, best) ? lr : best))]),
  );
  console.log(
    `\nLearning rate, picked per architecture by the mean validation loss (MSE y1 + MSE y2, label units) after the ` +
      `full budget, on ${plan.lrSeeds} selection seed(s) (${SELECTION_SEED_BASE + 1}…, data apart from the evaluation ` +
      `seeds) at p = ${p}:\n`,
  );
  console.log(
    markdownTable(
      ['architecture', ...LEARNING_RATES.map((lr) => `lr ${lr}`), 'picked'],
      ARCHITECTURES.map((a) => [a, ...LEARNING_RATES.map((lr) => fmt(mean(a, lr))), String(chosen.get(a))]),
    ),
  );
  return chosen;
}

/** The achieved correlation of the labels: p is the linear parts' correlation, the sines bend it seed by seed. */
function printLabelCheck(plan: Plan): void {
  const rows = plan.correlations.map((p) => {
    const achieved: number[] = [];
    const expected: number[] = [];
    const std: number[] = [];
    const ratio: number[] = [];
    for (let seed = 1; seed <= plan.seeds; seed++) {
      const pair = createTaskPair({ p, seed, dim: DIM });
      const { train } = sampleSplits(pair, { train: plan.sizes.train }, seed);
      achieved.push(pearson(train.y1, train.y2));
      expected.push(expectedLabelCorrelation(pair));
      const [s1, s2] = [labelStats(train.y1).std, labelStats(train.y2).std];
      std.push(s1, s2);
      ratio.push(s2 / s1);
    }
    const range = (v: number[], d: number) =>
      `${fmt(meanStd(v).mean, d)} [${fmt(Math.min(...v), d)}, ${fmt(Math.max(...v), d)}]`;
    return [fmt(p, 2), range(achieved, 3), range(expected, 3), range(std, 2), range(ratio, 3)];
  });
  console.log(
    '\nLabels per p over the evaluation seeds, mean [min, max]: Pearson correlation of y1 and y2 on the training rows, ' +
      'its closed-form expectation, the labels’ std (label units, what the MSE is measured in), and std(y2) / std(y1): ' +
      'training standardises each task by its own std, so near 1 the standardised loss is the sum of MSEs over one ' +
      'common factor (y1 and y2 have the same distribution: w1ᵀx and w2ᵀx are both N(0, c²))\n',
  );
  console.log(markdownTable(['p', 'Pearson(y1, y2)', 'expected', 'std of y1, y2', 'std(y2) / std(y1)'], rows));
}

const PAIRS: [Architecture, Architecture][] = [
  ['mmoe', 'shared-bottom'],
  ['mmoe', 'omoe'],
  ['omoe', 'shared-bottom'],
];

/** Every run of one (architecture, p), in seed order, so that cells pair up seed by seed. */
type Cells = (architecture: Architecture, p: number) => Run[];

/** Mean ± standard error and the spread over seeds of one loss, then its paired differences between architectures. */
function printComparison(plan: Plan, cell: Cells, what: string, loss: (run: Run) => number): void {
  const n = plan.seeds;
  console.log(
    `\n${what}: mean ± standard error over ${n} seeds, and the spread over seeds (the paper's trainability figure)\n`,
  );
  console.log(
    markdownTable(
      ['p', 'architecture', 'test loss', 'std', 'min', 'q25', 'median', 'q75', 'max'],
      plan.correlations.flatMap((p) =>
        ARCHITECTURES.map((a) => {
          const v = cell(a, p).map(loss);
          const q = (x: number) => fmt(quantile(v, x));
          return [fmt(p, 2), a, meanSe(v), fmt(meanStd(v).std), q(0), q(0.25), q(0.5), q(0.75), q(1)];
        }),
      ),
    ),
  );
  console.log(
    `\n${what}, paired difference (same data, same seed): mean ± standard error over ${n} seeds, and in how many ` +
      'seeds the first architecture had the lower loss\n',
  );
  console.log(
    markdownTable(
      ['p', ...PAIRS.map(([a, b]) => `${a} − ${b}`)],
      plan.correlations.map((p) => [
        fmt(p, 2),
        ...PAIRS.map(([a, b]) => {
          const d = pairedDifferences(cell(a, p).map(loss), cell(b, p).map(loss));
          return `${signed(meanStd(d).mean)} ± ${fmt(standardError(d))} (${d.filter((x) => x < 0).length}/${n} lower)`;
        }),
      ]),
    ),
  );
}

function printResults(plan: Plan, runs: Run[]): void {
  const cell: Cells = (a, p) => runs.filter((r) => r.architecture === a && r.p === p).sort((x, y) => x.seed - y.seed);
  // A seed's label variance ranges over more than an order of magnitude (the sines can cancel or add to wᵀx), and
  // the MSE in label units scales with it; divided by the test labels' variance each seed counts alike (1 − R²).
  const variances = new Map<string, [number, number]>();
  for (const p of plan.correlations)
    for (let seed = 1; seed <= plan.seeds; seed++) {
      const { test } = sampleSplits(createTaskPair({ p, seed, dim: DIM }), { test: plan.sizes.test }, seed);
      variances.set(`${p}/${seed}`, [labelStats(test.y1).std ** 2, labelStats(test.y2).std ** 2]);
    }
  const normalised = (r: Run, point: EpochPoint) => {
    const [v1, v2] = variances.get(`${r.p}/${r.seed}`)!;
    return point.test[0] / v1 + point.test[1] / v2;
  };
  const old = (r: Run) => earlyStoppedOnY1(r, OLD_PATIENCE);

  printComparison(plan, cell, 'Test loss after the budget, MSE(y1) + MSE(y2) in label units', finalTest);
  printComparison(
    plan,
    cell,
    'Test loss after the budget divided by the labels’ variance, MSE(y1)/Var(y1) + MSE(y2)/Var(y2)',
    (r) => normalised(r, r.curve.at(-1)!),
  );
  printComparison(
    plan,
    cell,
    `The former protocol replayed on the same runs (early stopping on y1's validation MSE, patience ${OLD_PATIENCE}, ` +
      'best epoch kept), label units',
    (r) => sum(r.curve[old(r) - 1].test),
  );

  const checkpoints = [...new Set([1, 2, 5, 10, 20, 50, 100, plan.epochs].filter((e) => e <= plan.epochs))];
  console.log('\nLoss curve: mean over seeds of the normalised test loss (as above) after each number of epochs\n');
  console.log(
    markdownTable(
      ['p', 'architecture', ...checkpoints.map((e) => `epoch ${e}`)],
      plan.correlations.flatMap((p) =>
        ARCHITECTURES.map((a) => [
          fmt(p, 2),
          a,
          ...checkpoints.map((e) => fmt(meanStd(cell(a, p).map((r) => normalised(r, r.curve[e - 1]))).mean)),
        ]),
      ),
    ),
  );

  const distances = plan.correlations.map((p) => cell('mmoe', p).flatMap((r) => r.gateDistance ?? []));
  if (distances.every((d) => d.length > 0)) {
    console.log(
      '\nMMoE gates after the budget: total-variation distance between the two tasks’ expert weights, mean over ' +
        'test rows (0: both tasks mix the experts alike, 1: disjoint experts), mean ± standard error over seeds\n',
    );
    console.log(
      markdownTable(
        ['p', 'gate distance'],
        plan.correlations.map((p, i) => [fmt(p, 2), meanSe(distances[i])]),
      ),
    );
  }

  console.log(
    '\nPer task, mean test MSE in label units: after the budget, and under the former protocol (with its mean ' +
      'best epoch), whose stopping watches y1 only\n',
  );
  console.log(
    markdownTable(
      [
        'p',
        'architecture',
        'budget: y1',
        'budget: y2',
        'former: y1',
        'former: y2',
        'former: best epoch (runs whose stop came within the budget)',
      ],
      plan.correlations.flatMap((p) =>
        ARCHITECTURES.map((a) => {
          const runsOf = cell(a, p);
          const mean = (f: (r: Run) => number) => fmt(meanStd(runsOf.map(f)).mean);
          const at = (r: Run) => r.curve[old(r) - 1].test;
          return [
            fmt(p, 2),
            a,
            mean((r) => r.curve.at(-1)!.test[0]),
            mean((r) => r.curve.at(-1)!.test[1]),
            mean((r) => at(r)[0]),
            mean((r) => at(r)[1]),
            `${fmt(meanStd(runsOf.map((r) => old(r))).mean, 1)} (${runsOf.filter((r) => old(r) + OLD_PATIENCE <= r.curve.length).length}/${runsOf.length} stopped)`,
          ];
        }),
      ),
    ),
  );
}

interface SavedRun {
  plan: Plan;
  learningRates: Record<string, number>;
  runs: Run[];
}

async function main(): Promise<void> {
  const replay = flagValue('replay');
  if (replay !== undefined) {
    const saved = JSON.parse(readFileSync(replay, 'utf8')) as SavedRun;
    console.log(`Replayed from ${replay}, without training; the run's own log has its header (CPU, models, budget).`);
    printLabelCheck(saved.plan);
    printResults(saved.plan, saved.runs);
    console.log(`\nLearning rates used: ${JSON.stringify(saved.learningRates)}.`);
    return;
  }
  const plan = planFromFlags();
  const elapsed = stopwatch();
  const backend = await initBackend(parseBackend());
  log(`backend ${backend.name}: ${backend.detail}`);

  const probe = preprocessingFor(sampleSplits(createTaskPair({ p: 1, seed: 1, dim: DIM }), { train: 10 }, 1).train);
  const params = ARCHITECTURES.map((a) => `${a} ${formatCount(parameterCount(specFor(a, plan, 1, 1e-3), probe))}`);
  console.log(hasFlag('quick') ? '\nQUICK SMOKE RUN (few seeds, few rows, few epochs; not representative)\n' : '');
  console.log(`CPU: ${cpuModel()}; backend ${backend.name}; 1 training thread; Node ${process.version}.`);
  console.log(
    `MMoE paper synthetic data (§4.1): d = ${DIM}, c = 1, m = 10, α, β ~ N(0, 1), ε ~ N(0, 0.01) (std 0.1); ` +
      `train / validation / test = ${formatCount(plan.sizes.train)} / ${formatCount(plan.sizes.validation)} / ` +
      `${formatCount(plan.sizes.test)} rows; p ∈ {${plan.correlations.join(', ')}}; ${plan.seeds} seeds per p ` +
      '(seed s: its own u1, u2, α, β, rows and init, the same for all three architectures).',
  );
  console.log(
    `Models: omoe/mmoe ${EXPERTS} experts × [${EXPERT_UNITS}], shared-bottom [${BOTTOM_UNITS}], towers ` +
      `[${TOWER_UNITS}]; parameters ${params.join(', ')}. Adam, batch ${plan.batchSize}, a fixed budget of ` +
      `${plan.epochs} epochs (${formatCount(plan.epochs * Math.ceil(plan.sizes.train / plan.batchSize))} steps) on ` +
      'the sum of both tasks’ MSE (labels standardised per task), no early stopping, last epoch’s weights.',
  );
  printLabelCheck(plan);

  const lrs = await selectLearningRates(plan, elapsed);
  const runs: Run[] = [];
  for (const p of plan.correlations)
    for (let seed = 1; seed <= plan.seeds; seed++) {
      const splits = splitsFor(p, seed, plan);
      for (const architecture of ARCHITECTURES) {
        const run = await trainOnce(specFor(architecture, plan, seed, lrs.get(architecture)!), splits, p, architecture);
        runs.push(run);
        log(
          `p=${p} seed=${seed} ${architecture}: test loss ${fmt(finalTest(run))} ` +
            `(${run.seconds.toFixed(1)} s, ${elapsed().toFixed(0)} s total)`,
        );
      }
    }
  printResults(plan, runs);
  console.log(`\nLearning rates used: ${ARCHITECTURES.map((a) => `${a} ${lrs.get(a)}`).join(', ')}.`);
  const json = flagValue('json');
  if (json)
    writeFileSync(json, JSON.stringify({ plan, learningRates: Object.fromEntries(lrs), runs } satisfies SavedRun));
  console.log(`wall time: ${elapsed().toFixed(0)} s`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
