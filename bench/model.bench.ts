/**
 * Speed of the two model shapes of ../shared/bench/README.md (the reference MMoE and the census-income one) on each
 * TensorFlow.js backend, next to the PyTorch reference script run on the same shape: training examples/s and ms per
 * step through the real training loop, kernels (ops) per training step, and inference latency of `predict`.
 *
 *   npm run bench:model [-- --quick] [--shape reference|census]   PyTorch, then every available backend, per shape
 *   tsx bench/model.bench.ts --backend wasm --shape census --json   one backend (a process keeps its backend)
 *   tsx bench/model.bench.ts --adult --threads 2                     one epoch of ../shared/data/adult
 * `--threads N` sets the training threads (default: every core).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';

import {
  BACKEND_NAMES,
  BackendName,
  BatchBuilder,
  createTrainingStep,
  disposeBatch,
  EncodedDataset,
  FeatureEncoder,
  fitPreprocessing,
  initBackend,
  ModelSpec,
  MultiTaskNetwork,
  ParallelTimings,
  predict,
  RawTable,
  Rng,
  trainNetwork,
} from '@app/mmoe';

import { adultEpoch, AdultEpochResult } from './adult-epoch';
import {
  cpuModel,
  flagValue,
  formatCount,
  formatMs,
  formatRatio,
  hasFlag,
  log,
  markdownTable,
  positiveIntFlag,
  stopwatch,
  timeRuns,
  Timing,
  TimingPlan,
} from './bench.util';
import { BENCH_SHAPES, BenchShape, shapeSpec } from './reference-model';

const INFER_SIZES = [1, 100, 1000] as const;
type InferSize = (typeof INFER_SIZES)[number];
/** Parameter counts of the PyTorch script's shapes, used when it cannot be run. */
const TORCH_PARAMS: Record<BenchShape['name'], number> = { reference: 707_090, census: 24_378 };
/** Training speed against PyTorch with 2 threads, same shape, same run (issue 13). */
const TARGET_TRAIN_VS_TORCH: Record<BenchShape['name'], number> = { reference: 1.0, census: 1.5 };
const TARGET_INFER_1000_MS = 40;
const REPO = path.resolve(__dirname, '..');

interface Plan {
  trainRows: number;
  validRows: number;
  /** Untimed training batches before the timed epoch. */
  warmupBatches: number;
  /** Per inference size. */
  infer: TimingPlan;
}

/**
 * The cpu backend trains ~100× slower than wasm here (~17 s per batch of 512, most of it the pure-JS gradient of the
 * embedding lookups): 1,024 rows (two batches, the fewest that hold every category) and a time budget per inference
 * size keep it to about a minute. Its first-step overhead (~0.5 s) is lost in such steps, so it gets no training warm-up.
 */
function planFor(backend: BackendName, shape: BenchShape, quick: boolean): Plan {
  if (backend === 'cpu') {
    const infer = quick ? { warmup: 1, runs: 3 } : { warmup: 1, runs: 30, minRuns: 5, budgetMs: 5000 };
    return { trainRows: shape.name === 'census' ? 2048 : 1024, validRows: 512, warmupBatches: 0, infer };
  }
  if (quick) return { trainRows: 2048, validRows: 512, warmupBatches: 2, infer: { warmup: 2, runs: 10 } };
  // The census shape runs ~10× more steps per second; more rows keep its timed epoch at several seconds.
  const trainRows = shape.name === 'census' ? 102_400 : 20_480;
  return { trainRows, validRows: 2048, warmupBatches: 5, infer: { warmup: 5, runs: 50 } };
}

interface BackendResult {
  shape: BenchShape['name'];
  backend: BackendName;
  detail: string;
  tfjsVersion: string;
  parameterCount: number;
  /** Parameters in the missing/out-of-vocabulary embedding rows, which the PyTorch reference does not have. */
  oovParameters: number;
  train: { rows: number; examplesPerSec: number; msPerStep: number; validAuc: number };
  /** Kernels run by one training step (forward, gradients, update) of one replica, from tfjs's profiler. */
  opsPerStep: number;
  threads: number;
  parallel?: ParallelTimings;
  infer: Record<InferSize, Timing>;
}

interface TorchResult {
  torch: string;
  variant: string;
  threads: number;
  nParams: number;
  openblasCoretype?: string;
  train: { examplesPerSec: number; msPerStepMean: number };
  infer: Record<InferSize, { medianMs: number; p90Ms: number }>;
}

/**
 * Rows whose labels depend on per-value effects and numerics, so training does real work (and the AUC shows it);
 * the two tasks share part of their signal, as clicks and likes do.
 */
function syntheticTable(shape: BenchShape, spec: ModelSpec, rows: number, seed: number): RawTable {
  const { categorical: CATEGORICAL, vocab: VOCAB, numeric: NUMERIC } = shape;
  const rng = new Rng(seed);
  const effects = Array.from({ length: CATEGORICAL }, () =>
    Float64Array.from({ length: VOCAB }, () => rng.gaussian() * 0.5),
  );
  const weights = Float64Array.from({ length: NUMERIC }, () => rng.gaussian() * 0.3);
  const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
  const table = new RawTable(spec);
  for (let i = 0; i < rows; i++) {
    const record: Record<string, string | number> = {};
    let shared = 0;
    let own = 0;
    for (let j = 0; j < CATEGORICAL; j++) {
      // The first VOCAB rows hold every value, so the vocabulary (and the parameter count) is the full one however
      // few rows are drawn.
      const v = i < VOCAB ? (i + 97 * j) % VOCAB : rng.int(VOCAB);
      record[`c${j}`] = `v${v}`;
      if (j % 2 === 0) shared += effects[j][v];
      else own += effects[j][v];
    }
    for (let j = 0; j < NUMERIC; j++) {
      const x = rng.gaussian();
      record[`n${j}`] = x;
      if (j % 2 === 0) shared += weights[j] * x;
      else own += weights[j] * x;
    }
    record.click = rng.next() < sigmoid(shared - 1) ? 1 : 0;
    record.like = rng.next() < sigmoid(0.5 * shared + own - 2) ? 1 : 0;
    table.add(record);
  }
  return table;
}

/** Kernels of one training step, counted by tfjs's profiler (one untimed step; it moves the weights a little). */
async function opsPerStep(network: MultiTaskNetwork, train: EncodedDataset): Promise<number> {
  const { batchSize } = network.spec.training;
  const step = createTrainingStep(network);
  const batch = new BatchBuilder(network, train, batchSize).training(
    0,
    Math.min(batchSize, train.size),
    Uint32Array.from({ length: train.size }, (_, i) => i),
  );
  const rng = new Rng(1);
  const profile = await tf.profile(() => step.run(batch, rng));
  disposeBatch(batch);
  step.dispose();
  return profile.kernels.length;
}

async function measureBackend(backend: BackendName, shape: BenchShape, quick: boolean): Promise<BackendResult> {
  const info = await initBackend(backend);
  const plan = planFor(backend, shape, quick);
  const spec = shapeSpec(shape);
  const table = syntheticTable(shape, spec, plan.trainRows + plan.validRows, 7);
  const range = (start: number, n: number) => Uint32Array.from({ length: n }, (_, i) => start + i);
  const trainRows = range(0, plan.trainRows);
  const preprocessing = fitPreprocessing(spec, table, trainRows);
  const encoder = new FeatureEncoder(preprocessing);
  const train = encoder.encodeTable(table, trainRows);
  const valid = encoder.encodeTable(table, range(plan.trainRows, plan.validRows));
  const network = new MultiTaskNetwork(spec, preprocessing);
  const tag = `[${shape.name}/${backend}]`;
  log(
    `${tag} ${info.detail}; ${formatCount(network.parameterCount())} parameters; training on ${formatCount(train.size)} rows`,
  );

  // The first steps compile kernels and allocate buffers (~0.6 s on wasm, a tenth of the epoch); the PyTorch script
  // warms up too. These few Adam steps also move the weights a little before the timed epoch, which does not matter.
  if (plan.warmupBatches > 0) {
    await trainNetwork(
      network,
      encoder.encodeTable(table, range(0, plan.warmupBatches * spec.training.batchSize)),
      valid,
    );
  }
  const { summary } = await trainNetwork(network, train, valid, { threads: threadsFlag() });
  const msPerStep = (spec.training.batchSize / summary.examplesPerSec) * 1000;
  log(
    `${tag} train: ${formatCount(summary.examplesPerSec)} ex/s, ${formatMs(msPerStep)} ms/step, validation AUC(click) ${summary.valid.tasks.click.auc.toFixed(3)}`,
  );
  const ops = await opsPerStep(network, train);
  log(`${tag} ${ops} kernels per training step`);

  const infer = {} as Record<InferSize, Timing>;
  for (const size of INFER_SIZES) {
    const data = encoder.encodeTable(table, range(0, size));
    infer[size] = timeRuns(() => predict(network, data, { batchSize: 4096 }), plan.infer);
    log(`${tag} infer ${size} rows: median ${formatMs(infer[size].medianMs)} ms over ${infer[size].runs} runs`);
  }
  const result: BackendResult = {
    shape: shape.name,
    backend,
    detail: info.detail,
    tfjsVersion: tf.version_core,
    parameterCount: network.parameterCount(),
    oovParameters: preprocessing.categorical.reduce((s, c) => s + c.embeddingDim, 0),
    train: {
      rows: train.size,
      examplesPerSec: summary.examplesPerSec,
      msPerStep,
      validAuc: summary.valid.tasks.click.auc,
    },
    opsPerStep: ops,
    threads: summary.threads,
    parallel: summary.parallel,
    infer,
  };
  network.dispose();
  return result;
}

/** Runs a command with progress passed through to stderr; resolves to the JSON of its last stdout line. */
function runJson<T>(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`${path.basename(command)} ${args.join(' ')} exited with ${code}`));
      try {
        resolve(JSON.parse(last) as T);
      } catch {
        reject(new Error(`${path.basename(command)} ${args.join(' ')} printed no JSON result (last line: "${last}")`));
      }
    });
  });
}

function availableBackends(): BackendName[] {
  const hasNative = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'].some((pkg) => {
    try {
      require.resolve(pkg);
      return true;
    } catch {
      return false;
    }
  });
  return BACKEND_NAMES.filter((name) => name !== 'tensorflow' || hasNative);
}

function sharedDir(): string {
  return process.env.MMOE_SHARED_DIR ?? path.join(REPO, '..', 'shared');
}

function torchPython(): string | undefined {
  return ['/usr/bin/python3', 'python3'].find(
    (python) => spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0,
  );
}

async function runTorch(shape: BenchShape, quick: boolean, notes: string[]): Promise<TorchResult | undefined> {
  const python = torchPython();
  if (!python) {
    notes.push('PyTorch reference skipped: no python3 with torch (tried /usr/bin/python3, python3).');
    return undefined;
  }
  const script = path.join(sharedDir(), 'bench', 'pytorch_mmoe_reference.py');
  if (!existsSync(script)) {
    notes.push(`PyTorch reference skipped: ${script} not found (set MMOE_SHARED_DIR).`);
    return undefined;
  }
  const args = [
    script,
    '--shape',
    shape.name,
    '--threads',
    '2',
    '--variant',
    'modulelist',
    ...(quick ? ['--steps', '5', '--runs', '10'] : []),
  ];
  try {
    // The script names OpenBLAS's core type for the CPU it finds (README); it reports which in openblasCoretype.
    return await runJson<TorchResult>(python, args);
  } catch (e) {
    notes.push(`PyTorch reference failed: ${(e as Error).message}`);
    return undefined;
  }
}

/** "1 row / 100 rows / 1,000 rows" figures of one statistic. */
function latencies(
  infer: Record<InferSize, { medianMs: number; p90Ms: number }>,
  statistic: 'medianMs' | 'p90Ms',
): string {
  return INFER_SIZES.map((size) => formatMs(infer[size][statistic])).join(' / ');
}

function comparison(result: BackendResult, torch: TorchResult | undefined): string {
  if (!torch) return '—';
  const train = formatRatio(result.train.examplesPerSec / torch.train.examplesPerSec);
  const latency = INFER_SIZES.map((size) => formatRatio(result.infer[size].medianMs / torch.infer[size].medianMs)).join(
    ' / ',
  );
  return `${train}× torch train; ${latency}× torch latency`;
}

function targetLine(what: string, measured: string, met: boolean): string {
  return `target ${what}: measured ${measured} → ${met ? 'met' : 'not met'}`;
}

interface ShapeRun {
  shape: BenchShape;
  torch: TorchResult | undefined;
  results: BackendResult[];
}

async function runShape(shape: BenchShape, quick: boolean, notes: string[]): Promise<ShapeRun> {
  // PyTorch first, next in time to the fast backends: its two OpenMP threads suffer most when others load the machine.
  const torchTime = stopwatch();
  const torch = await runTorch(shape, quick, notes);
  log(`[${shape.name}/pytorch] done in ${torchTime().toFixed(0)} s`);
  const results: BackendResult[] = [];
  for (const backend of availableBackends()) {
    const childTime = stopwatch();
    try {
      const args = [
        ...process.execArgv,
        __filename,
        '--backend',
        backend,
        '--shape',
        shape.name,
        '--json',
        ...(quick ? ['--quick'] : []),
        ...(flagValue('threads') ? ['--threads', flagValue('threads')!] : []),
      ];
      results.push(await runJson<BackendResult>(process.execPath, args));
    } catch (e) {
      notes.push(`${shape.name}/${backend} failed: ${(e as Error).message}`);
    }
    log(`[${shape.name}/${backend}] done in ${childTime().toFixed(0)} s`);
  }
  return { shape, torch, results };
}

function printShape({ shape, torch, results }: ShapeRun): void {
  const rows = results.map((r) => [
    `TensorFlow.js ${r.tfjsVersion} ${r.backend}, ${r.threads} thread${r.threads > 1 ? 's' : ''} (${formatCount(r.train.rows)} training rows)`,
    formatCount(r.train.examplesPerSec),
    formatMs(r.train.msPerStep),
    formatCount(r.opsPerStep),
    latencies(r.infer, 'medianMs'),
    latencies(r.infer, 'p90Ms'),
    comparison(r, torch),
  ]);
  if (torch) {
    rows.push([
      `PyTorch ${torch.torch} (${torch.variant}, OpenBLAS ${torch.openblasCoretype ?? 'default'}), ${torch.threads} threads`,
      formatCount(torch.train.examplesPerSec),
      formatMs(torch.train.msPerStepMean),
      '—',
      latencies(torch.infer, 'medianMs'),
      latencies(torch.infer, 'p90Ms'),
      '1×',
    ]);
  }
  console.log(`\n### ${shape.name} shape\n`);
  console.log(
    markdownTable(
      [
        'engine',
        'train ex/s @512',
        'ms/step',
        'kernels/step',
        'infer 1 / 100 / 1000 rows, median ms',
        'p90 ms',
        'vs PyTorch',
      ],
      rows,
    ),
  );
  console.log();

  for (const r of results.filter((r) => r.parallel)) {
    const { threads, startupMs, handoffMs, teardownMs, computeMs, barrierWaitMs } = r.parallel!;
    const waitShare = (100 * barrierWaitMs) / (barrierWaitMs + computeMs);
    console.log(
      `${r.backend} threads (${threads}): start-up ${formatCount(startupMs)} ms, data hand-off ${formatMs(handoffMs)} ms, ` +
        `teardown ${formatMs(teardownMs)} ms; the main thread waited at the gradient barrier ${waitShare.toFixed(0)}% of its step time`,
    );
  }
  const referenceParams = torch?.nParams ?? TORCH_PARAMS[shape.name];
  for (const r of results) {
    const difference = r.parameterCount - referenceParams;
    console.log(
      `parameters (${r.backend}): ${formatCount(r.parameterCount)} vs reference ${formatCount(referenceParams)} ` +
        `(difference ${formatCount(difference)}; the missing/OOV embedding rows account for ${formatCount(r.oovParameters)})`,
    );
  }
  // The toy labels are learnable, so an AUC above 0.5 shows that the timed steps trained the model.
  console.log(
    `validation AUC (click) after the timed epoch: ${results.map((r) => `${r.backend} ${r.train.validAuc.toFixed(3)}`).join(', ')}`,
  );
  const wasm = results.find((r) => r.backend === 'wasm');
  const target = TARGET_TRAIN_VS_TORCH[shape.name];
  if (wasm && torch) {
    const ratio = wasm.train.examplesPerSec / torch.train.examplesPerSec;
    console.log(
      targetLine(`${shape.name}: wasm ≥ ${target}× PyTorch's train ex/s`, `${formatRatio(ratio)}×`, ratio >= target),
    );
  } else {
    console.log(`target ${shape.name}: wasm ≥ ${target}× PyTorch's train ex/s: not measured (a run failed)`);
  }
  if (wasm && shape.name === 'reference') {
    console.log(
      targetLine(
        `wasm ≤ ${TARGET_INFER_1000_MS} ms for 1,000 rows`,
        `${formatMs(wasm.infer[1000].medianMs)} ms`,
        wasm.infer[1000].medianMs <= TARGET_INFER_1000_MS,
      ),
    );
  }
}

async function runAll(quick: boolean, only: BenchShape | undefined): Promise<void> {
  const elapsed = stopwatch();
  // Other processes on this 2-core machine compete for it; the load average tells how much the numbers may suffer.
  const loadBefore = loadavg()[0];
  const notes: string[] = [];
  if (!availableBackends().includes('tensorflow'))
    notes.push('tensorflow backend skipped: neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed.');
  const runs: ShapeRun[] = [];
  for (const shape of only ? [only] : BENCH_SHAPES) runs.push(await runShape(shape, quick, notes));
  const adult = quick ? [] : await runAdult(notes);

  console.log(quick ? '\nQUICK SMOKE RUN (few rows and runs; not representative)' : '');
  console.log(`\nCPU: ${cpuModel()} (${cpus().length} cores)`);
  runs.forEach(printShape);
  if (adult.length > 0) printAdult(adult);
  for (const note of notes) console.log(`note: ${note}`);
  console.log(
    `1-minute load average before / after: ${loadBefore.toFixed(2)} / ${loadavg()[0].toFixed(2)} on ${cpus().length} cores`,
  );
  console.log(`wall time: ${elapsed().toFixed(0)} s`);
}

/** `--threads N` overrides training.threads (default: every core). */
function threadsFlag(): number | undefined {
  return positiveIntFlag('threads');
}

/** One wasm epoch of the Adult data per thread count (1 and every core), each in its own process. */
async function runAdult(notes: string[]): Promise<AdultEpochResult[]> {
  if (!existsSync(path.join(sharedDir(), 'data', 'adult', 'adult_train.csv.gz'))) {
    notes.push(`Adult epoch skipped: no ${path.join(sharedDir(), 'data', 'adult')} (set MMOE_SHARED_DIR).`);
    return [];
  }
  const results: AdultEpochResult[] = [];
  for (const threads of [...new Set([1, cpus().length])]) {
    try {
      const args = [...process.execArgv, __filename, '--adult', '--threads', String(threads)];
      results.push(await runJson<AdultEpochResult>(process.execPath, args));
    } catch (e) {
      notes.push(`Adult epoch with ${threads} threads failed: ${(e as Error).message}`);
    }
  }
  return results;
}

function printAdult(results: AdultEpochResult[]): void {
  console.log(
    `\n### UCI Adult, one full epoch (examples/adult.spec.json, wasm, ${formatCount(results[0].trainRows)} training rows)\n`,
  );
  const single = results.find((r) => r.threads === 1);
  console.log(
    markdownTable(
      [
        'threads',
        'epoch s (training)',
        'train ex/s',
        'MultiTaskModel.train wall s',
        'thread start-up ms',
        'validation AUC (income)',
        'vs 1 thread',
      ],
      results.map((r) => [
        String(r.threads),
        r.epochSeconds.toFixed(2),
        formatCount(r.examplesPerSec),
        r.wallSeconds.toFixed(2),
        r.parallel ? formatCount(r.parallel.startupMs) : '—',
        r.validAuc.toFixed(4),
        single ? `${formatRatio(r.examplesPerSec / single.examplesPerSec)}×` : '—',
      ]),
    ),
  );
}

function shapeFlag(): BenchShape | undefined {
  const name = flagValue('shape');
  if (name === undefined) return undefined;
  const shape = BENCH_SHAPES.find((s) => s.name === name);
  if (!shape) throw new Error(`--shape must be one of ${BENCH_SHAPES.map((s) => s.name).join(', ')} (got "${name}")`);
  return shape;
}

async function main(): Promise<void> {
  const quick = hasFlag('quick');
  if (hasFlag('adult')) {
    console.log(JSON.stringify(await adultEpoch(REPO, sharedDir(), threadsFlag() ?? cpus().length)));
    return;
  }
  const shape = shapeFlag();
  const backend = flagValue('backend');
  if (backend === undefined) return runAll(quick, shape);
  if (!(BACKEND_NAMES as readonly string[]).includes(backend))
    throw new Error(`--backend must be one of ${BACKEND_NAMES.join(', ')} (got "${backend}")`);
  const result = await measureBackend(backend as BackendName, shape ?? BENCH_SHAPES[0], quick);
  console.log(hasFlag('json') ? JSON.stringify(result) : result);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
