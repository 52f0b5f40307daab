import { checkWasmUsable, noteWasmFailure, wasmAborted, WasmMemoryError } from '../backend/wasm.guard';
import { EncodedDataset } from '../data/preprocessor';
import { evaluate, EvaluationReport } from '../eval/evaluator';
import { primaryMetric, taskMetric } from '../model-spec/model-spec';
import { parentTasks } from '../model-spec/task-space.rules';
import { AdamState, MultiTaskNetwork } from '../model/network';
import { predict } from '../model/predict';
import type { ScoreResult } from '../serving/scorer';
import { taskType } from '../tasks/task-types';
import { Rng } from '../util/random';
import { ParallelTimings } from './parallel/data-parallel.runner';
import { createStepRunner } from './step-runner';
import type { AdamStart } from './training-step';

export interface TrainProgress {
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  /** Mean training loss over the epoch so far. */
  loss: number;
  examplesPerSec: number;
}

export interface EpochReport {
  epoch: number;
  epochs: number;
  loss: number;
  valid: EvaluationReport;
  seconds: number;
  /** Whether this epoch improved the first task's validation metric (and its weights were kept). */
  improved: boolean;
}

export interface TrainOptions {
  onProgress?: (p: TrainProgress) => void;
  onEpochEnd?: (e: EpochReport) => void;
  /** How often (in steps) the loss is read back and onProgress called; reading forces a sync on GPU backends. */
  progressEvery?: number;
  /** Stops between steps when it returns true (e.g. a cancelled job). */
  shouldStop?: () => boolean;
  /** Data-parallel training threads (wasm only); overrides training.threads, whose default is every core. */
  threads?: number;
  /** Overrides training.epochs for this run only (a refit's one more epoch): the model keeps its spec's. */
  epochs?: number;
  /**
   * Adam's state to go on from, laid out as the network's weights (a parent's, grown by warmStartNetwork); absent, a
   * fresh Adam. The fused step's only: tfjs's own Adam (native backend) always starts afresh.
   */
  optimizer?: AdamState;
  /**
   * Leave the best epoch's Adam state on the network (MultiTaskNetwork.optimizerState) for a refit to go on with. Off
   * by default: it is twice the weights' memory, and most trainings are never continued.
   */
  keepOptimizer?: boolean;
}

export interface TrainSummary {
  epochsRun: number;
  bestEpoch: number;
  stoppedEarly: boolean;
  /** Validation report of the kept (best) weights. */
  valid: EvaluationReport;
  /**
   * Per epoch: training loss, validation loss (the spec-weighted task losses: log loss, and squared error on
   * standardised targets, as training sees them, without uncertainty or balance terms), the first task's metric and
   * each task's metric (AUC for binary tasks, RMSE in label units for regression ones; an ESMM or AITM task's
   * conditional AUC also, under `<task>|<parent>`), each task loss's weight at the epoch's end (the spec's, or as
   * training.lossBalancing learnt it) and, with pcgrad, the share of task pairs whose gradients conflicted.
   */
  history: {
    epoch: number;
    loss: number;
    validLoss: number;
    metric: number;
    tasks: Record<string, number>;
    /** Absent in the stored history of versions trained before lossBalancing. */
    taskWeights?: Record<string, number>;
    gradientConflicts?: number;
  }[];
  /** Training throughput, validation excluded. */
  examplesPerSec: number;
  /** Examples trained on, over every epoch run. */
  examplesTrained: number;
  /** Wall time including validation. */
  seconds: number;
  /** Training threads used, and with several the cost of starting, feeding and stopping them. */
  threads: number;
  parallel?: ParallelTimings;
  /** Whether Adam went on from a given state (TrainOptions.optimizer, on the fused step), or started afresh. */
  optimizer: AdamStart;
}

export interface TrainedNetwork {
  summary: TrainSummary;
  /**
   * The kept weights' raw outputs on the validation set, gate weights included, as its report was made from: what a
   * calibration is fitted on and a calibrated report made from, instead of running the network over it again.
   */
  validPrediction: ScoreResult;
}

/**
 * Mini-batch Adam with seeded shuffling, validation after every epoch and early stopping on the first task's metric;
 * the best epoch's weights are restored at the end. Yields to the event loop between steps so that a worker process
 * keeps its queue lock and heartbeats alive.
 */
export async function trainNetwork(
  net: MultiTaskNetwork,
  train: EncodedDataset,
  valid: EncodedDataset,
  options: TrainOptions = {},
): Promise<TrainedNetwork> {
  if (train.size === 0) throw new Error('the training set is empty');
  if (valid.size === 0) throw new Error('the validation set is empty');
  // After a trap, every call into this thread's wasm fails at random or never returns: fail at once, with the cause.
  checkWasmUsable();
  try {
    return await trainEpochs(net, train, valid, options);
  } catch (e) {
    if (e instanceof WasmMemoryError)
      throw new WasmMemoryError(
        `training ran out of wasm memory: ${e.message}. It holds the model's ${net.parameterCount()} parameters, ` +
          'their gradients (one per lookup of an embedding table: a sequence sharing a table adds one) and a ' +
          'batch: lower hashBuckets, maxVocab or embeddingDim of the largest tables, or training.batchSize',
        { cause: e },
      );
    throw noteWasmFailure(e);
  }
}

async function trainEpochs(
  net: MultiTaskNetwork,
  train: EncodedDataset,
  valid: EncodedDataset,
  options: TrainOptions,
): Promise<TrainedNetwork> {
  const { batchSize, seed, earlyStoppingPatience } = net.spec.training;
  const epochs = options.epochs ?? net.spec.training.epochs;
  const target = primaryMetric(net.spec);
  const rng = new Rng(seed);
  // A state from an earlier training belongs to other weights than those this one ends with.
  net.optimizerState = undefined;
  const runner = await createStepRunner(net, train, rng, options.threads, options.optimizer);
  const steps = Math.ceil(train.size / batchSize);
  const progressEvery = options.progressEvery ?? 10;
  const history: TrainSummary['history'] = [];
  const started = performance.now();
  let best:
    | {
        epoch: number;
        metric: number;
        validLoss: number;
        weights: Map<string, Float32Array>;
        optimizer?: AdamState;
        report: EvaluationReport;
        prediction: ScoreResult;
      }
    | undefined;
  let epochsRun = 0;
  let stoppedEarly = false;
  let examplesSeen = 0;
  let trainingMs = 0;

  try {
    for (let epoch = 1; epoch <= epochs; epoch++) {
      const epochStart = performance.now();
      runner.beginEpoch(rng.permutation(train.size), steps);
      for (let step = 0; step < steps; step++) {
        if (options.shouldStop?.()) throw new TrainingCancelledError();
        const start = step * batchSize;
        const end = Math.min(start + batchSize, train.size);
        await runner.step(start, end);
        examplesSeen += end - start;
        if (options.onProgress && ((step + 1) % progressEvery === 0 || step + 1 === steps)) {
          const elapsed = (performance.now() - epochStart) / 1000;
          options.onProgress({
            epoch,
            epochs,
            step: step + 1,
            steps,
            loss: runner.lossSum() / end,
            examplesPerSec: end / Math.max(elapsed, 1e-9),
          });
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
      const loss = runner.lossSum() / train.size;
      trainingMs += performance.now() - epochStart;
      epochsRun = epoch;

      const prediction = predict(net, valid, { gateWeights: true });
      const report = evaluate(net, valid, { prediction });
      const metric = report.tasks[target.task][target.metric];
      const validLoss = validationLoss(net, report);
      const improved = best === undefined || beats({ metric, validLoss }, best, target.higherIsBetter);
      // The kept state is the best epoch's, as the weights restored are: a later epoch's moments would carry on from
      // weights the network no longer has.
      if (improved)
        best = {
          epoch,
          metric,
          validLoss,
          weights: net.snapshot(),
          optimizer: options.keepOptimizer ? runner.optimizerState() : undefined,
          report,
          prediction,
        };
      const { taskWeights, gradientConflicts } = runner.balanceReport();
      history.push({
        epoch,
        loss,
        validLoss,
        metric,
        tasks: taskMetrics(net, report),
        taskWeights: Object.fromEntries(net.spec.tasks.map((t, i) => [t.name, taskWeights[i]])),
        ...(gradientConflicts === undefined ? {} : { gradientConflicts }),
      });
      options.onEpochEnd?.({
        epoch,
        epochs,
        loss,
        valid: report,
        seconds: (performance.now() - epochStart) / 1000,
        improved,
      });
      if (earlyStoppingPatience > 0 && epoch - best!.epoch >= earlyStoppingPatience && epoch < epochs) {
        stoppedEarly = true;
        break;
      }
    }
  } catch (e) {
    // Noted before the runner is disposed: releasing a trapped instance's tensors may fail too, and the trap is the cause.
    throw noteWasmFailure(e);
  } finally {
    await runner.dispose().catch((e: unknown) => {
      if (!wasmAborted()) throw e;
    });
  }

  net.restore(best!.weights);
  net.optimizerState = best!.optimizer;
  const seconds = (performance.now() - started) / 1000;
  const summary: TrainSummary = {
    epochsRun,
    bestEpoch: best!.epoch,
    stoppedEarly,
    valid: best!.report,
    history,
    examplesPerSec: (examplesSeen / trainingMs) * 1000,
    examplesTrained: examplesSeen,
    seconds,
    threads: runner.threads,
    parallel: runner.timings,
    optimizer: runner.optimizer,
  };
  return { summary, validPrediction: best!.prediction };
}

/**
 * Whether an epoch beats the best so far: by the first task's metric; while that is undefined on the validation set
 * (a single class: no AUC), by the validation loss, which is defined; a defined metric beats an undefined one. With
 * the metric alone, such a run kept its first epoch and stopped early, whatever its loss did.
 */
function beats(
  epoch: { metric: number; validLoss: number },
  best: { metric: number; validLoss: number },
  higherIsBetter: boolean,
): boolean {
  if (Number.isNaN(epoch.metric)) return Number.isNaN(best.metric) && epoch.validLoss < best.validLoss;
  if (Number.isNaN(best.metric)) return true;
  return higherIsBetter ? epoch.metric > best.metric : epoch.metric < best.metric;
}

function validationLoss(net: MultiTaskNetwork, report: EvaluationReport): number {
  return net.spec.tasks.reduce(
    (sum, task, t) =>
      sum + task.weight * taskType(task).validationLoss(report.tasks[task.name], net.preprocessing.labels[t]),
    0,
  );
}

/** Each task's metric, and for an ESMM or AITM task also its conditional AUC under `<task>|<parent>`. */
function taskMetrics(net: MultiTaskNetwork, report: EvaluationReport): Record<string, number> {
  const parents = parentTasks(net.spec.tasks);
  return Object.fromEntries(
    net.spec.tasks.flatMap((task, t) => {
      const metrics = report.tasks[task.name];
      const own: [string, number] = [task.name, metrics[taskMetric(task).metric]];
      if (parents[t] < 0) return [own];
      return [own, [`${task.name}|${net.spec.tasks[parents[t]].name}`, metrics.conditionalAuc] as [string, number]];
    }),
  );
}

export class TrainingCancelledError extends Error {
  constructor() {
    super('training was cancelled');
    this.name = 'TrainingCancelledError';
  }
}
