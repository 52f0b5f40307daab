/**
 * Speed of the reference MMoE (../shared/bench/README.md) on each TensorFlow.js backend, next to the PyTorch
 * reference script: training examples/s through the real training loop and inference latency of `predict`.
 *
 *   npm run bench:model [-- --quick]                         PyTorch, then every available backend, as one table
 *   tsx bench/model.bench.ts --backend wasm --json [--quick]  one backend (a process keeps the backend it started with)
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';

import {
  BACKEND_NAMES,
  BackendName,
  FeatureEncoder,
  fitPreprocessing,
  initBackend,
  ModelSpec,
  MultiTaskNetwork,
  predict,
  RawTable,
  Rng,
  trainNetwork,
} from '@app/mmoe';

import {
  flagValue,
  formatCount,
  formatMs,
  formatRatio,
  hasFlag,
  log,
  markdownTable,
  stopwatch,
  timeRuns,
  Timing,
  TimingPlan,
} from './bench.util';
import { CATEGORICAL, NUMERIC, referenceSpec, VOCAB } from './reference-model';

const INFER_SIZES = [1, 100, 1000] as const;
type InferSize = (typeof INFER_SIZES)[number];
/** Parameter count of the PyTorch reference (README), used when the script cannot be run. */
const REFERENCE_PARAMS = 707_090;
const TARGET_TRAIN_EX_PER_SEC = 4000;
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
function planFor(backend: BackendName, quick: boolean): Plan {
  if (backend === 'cpu') {
    const infer = quick ? { warmup: 1, runs: 3 } : { warmup: 1, runs: 30, minRuns: 5, budgetMs: 5000 };
    return { trainRows: 1024, validRows: 512, warmupBatches: 0, infer };
  }
  return quick
    ? { trainRows: 2048, validRows: 512, warmupBatches: 2, infer: { warmup: 2, runs: 10 } }
    : { trainRows: 20_480, validRows: 2048, warmupBatches: 5, infer: { warmup: 5, runs: 50 } };
}

interface BackendResult {
  backend: BackendName;
  detail: string;
  tfjsVersion: string;
  parameterCount: number;
  /** Parameters in the missing/out-of-vocabulary embedding rows, which the PyTorch reference does not have. */
  oovParameters: number;
  train: { rows: number; examplesPerSec: number; validAuc: number };
  infer: Record<InferSize, Timing>;
}

interface TorchResult {
  torch: string;
  variant: string;
  threads: number;
  nParams: number;
  train: { examplesPerSec: number };
  infer: Record<InferSize, { medianMs: number; p90Ms: number }>;
}

/**
 * Rows whose labels depend on per-value effects and numerics, so training does real work (and the AUC shows it);
 * the two tasks share part of their signal, as clicks and likes do.
 */
function syntheticTable(spec: ModelSpec, rows: number, seed: number): RawTable {
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

async function measureBackend(backend: BackendName, quick: boolean): Promise<BackendResult> {
  const info = await initBackend(backend);
  const plan = planFor(backend, quick);
  const spec = referenceSpec();
  const table = syntheticTable(spec, plan.trainRows + plan.validRows, 7);
  const range = (start: number, n: number) => Uint32Array.from({ length: n }, (_, i) => start + i);
  const trainRows = range(0, plan.trainRows);
  const preprocessing = fitPreprocessing(spec, table, trainRows);
  const encoder = new FeatureEncoder(preprocessing);
  const train = encoder.encodeTable(table, trainRows);
  const valid = encoder.encodeTable(table, range(plan.trainRows, plan.validRows));
  const network = new MultiTaskNetwork(spec, preprocessing);
  log(
    `[${backend}] ${info.detail}; ${formatCount(network.parameterCount())} parameters; training on ${formatCount(train.size)} rows`,
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
  const summary = await trainNetwork(network, train, valid);
  log(
    `[${backend}] train: ${formatCount(summary.examplesPerSec)} ex/s, validation AUC(click) ${summary.valid.tasks.click.auc.toFixed(3)}`,
  );

  const infer = {} as Record<InferSize, Timing>;
  for (const size of INFER_SIZES) {
    const data = encoder.encodeTable(table, range(0, size));
    infer[size] = timeRuns(() => predict(network, data, { batchSize: 4096 }), plan.infer);
    log(`[${backend}] infer ${size} rows: median ${formatMs(infer[size].medianMs)} ms over ${infer[size].runs} runs`);
  }
  const result: BackendResult = {
    backend,
    detail: info.detail,
    tfjsVersion: tf.version_core,
    parameterCount: network.parameterCount(),
    oovParameters: preprocessing.categorical.reduce((s, c) => s + c.embeddingDim, 0),
    train: { rows: train.size, examplesPerSec: summary.examplesPerSec, validAuc: summary.valid.tasks.click.auc },
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

function torchPython(): string | undefined {
  return ['/usr/bin/python3', 'python3'].find(
    (python) => spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0,
  );
}

async function runTorch(quick: boolean, notes: string[]): Promise<TorchResult | undefined> {
  const python = torchPython();
  if (!python) {
    notes.push('PyTorch reference skipped: no python3 with torch (tried /usr/bin/python3, python3).');
    return undefined;
  }
  const script = path.join(
    process.env.MMOE_SHARED_DIR ?? path.join(REPO, '..', 'shared'),
    'bench',
    'pytorch_mmoe_reference.py',
  );
  if (!existsSync(script)) {
    notes.push(`PyTorch reference skipped: ${script} not found (set MMOE_SHARED_DIR).`);
    return undefined;
  }
  const args = [
    script,
    '--threads',
    '2',
    '--variant',
    'modulelist',
    ...(quick ? ['--steps', '5', '--runs', '10'] : []),
  ];
  try {
    // This CPU is not recognised by OpenBLAS 0.3.21; naming the core type selects its AVX-512 kernels (README).
    return await runJson<TorchResult>(python, args, { ...process.env, OPENBLAS_CORETYPE: 'Cooperlake' });
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

async function runAll(quick: boolean): Promise<void> {
  const elapsed = stopwatch();
  // Other processes on this 2-core machine compete for it; the load average tells how much the numbers may suffer.
  const loadBefore = loadavg()[0];
  const notes: string[] = [];
  const results: BackendResult[] = [];
  // PyTorch first, next in time to the fast backends: its two OpenMP threads suffer most when others load the machine.
  const torchTime = stopwatch();
  const torch = await runTorch(quick, notes);
  log(`[pytorch] done in ${torchTime().toFixed(0)} s`);
  const backends = availableBackends();
  if (!backends.includes('tensorflow'))
    notes.push('tensorflow backend skipped: neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed.');
  for (const backend of backends) {
    const childTime = stopwatch();
    try {
      const args = [...process.execArgv, __filename, '--backend', backend, '--json', ...(quick ? ['--quick'] : [])];
      results.push(await runJson<BackendResult>(process.execPath, args));
    } catch (e) {
      notes.push(`${backend} failed: ${(e as Error).message}`);
    }
    log(`[${backend}] done in ${childTime().toFixed(0)} s`);
  }

  const rows = results.map((r) => [
    `TensorFlow.js ${r.tfjsVersion} ${r.backend} (${formatCount(r.train.rows)} training rows)`,
    formatCount(r.train.examplesPerSec),
    latencies(r.infer, 'medianMs'),
    latencies(r.infer, 'p90Ms'),
    comparison(r, torch),
  ]);
  if (torch) {
    rows.push([
      `PyTorch ${torch.torch} (${torch.variant}), ${torch.threads} threads`,
      formatCount(torch.train.examplesPerSec),
      latencies(torch.infer, 'medianMs'),
      latencies(torch.infer, 'p90Ms'),
      '1×',
    ]);
  }
  console.log(quick ? '\nQUICK SMOKE RUN (few rows and runs; not representative)\n' : '');
  console.log(
    markdownTable(['engine', 'train ex/s @512', 'infer 1 / 100 / 1000 rows, median ms', 'p90 ms', 'vs PyTorch'], rows),
  );
  console.log();

  const referenceParams = torch?.nParams ?? REFERENCE_PARAMS;
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
  if (wasm) {
    console.log(
      targetLine(
        `wasm ≥ ${formatCount(TARGET_TRAIN_EX_PER_SEC)} train ex/s`,
        `${formatCount(wasm.train.examplesPerSec)} ex/s`,
        wasm.train.examplesPerSec >= TARGET_TRAIN_EX_PER_SEC,
      ),
    );
    console.log(
      targetLine(
        `wasm ≤ ${TARGET_INFER_1000_MS} ms for 1,000 rows`,
        `${formatMs(wasm.infer[1000].medianMs)} ms`,
        wasm.infer[1000].medianMs <= TARGET_INFER_1000_MS,
      ),
    );
  } else {
    console.log('targets (wasm ≥ 4,000 train ex/s, ≤ 40 ms for 1,000 rows): not measured, the wasm run failed');
  }
  for (const note of notes) console.log(`note: ${note}`);
  console.log(
    `1-minute load average before / after: ${loadBefore.toFixed(2)} / ${loadavg()[0].toFixed(2)} on ${cpus().length} cores`,
  );
  console.log(`wall time: ${elapsed().toFixed(0)} s`);
}

async function main(): Promise<void> {
  const quick = hasFlag('quick');
  const backend = flagValue('backend');
  if (backend === undefined) return runAll(quick);
  if (!(BACKEND_NAMES as readonly string[]).includes(backend))
    throw new Error(`--backend must be one of ${BACKEND_NAMES.join(', ')} (got "${backend}")`);
  const result = await measureBackend(backend as BackendName, quick);
  console.log(hasFlag('json') ? JSON.stringify(result) : result);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
