// Type-only: the table is read by serving too (ONNX heads, label parsing), which must not load TensorFlow.js; the
// training loss gets the tfjs namespace from its caller.
import type * as tf from '@tensorflow/tfjs';

import { parseBoundedNumber, quoted, RowError } from '../data/row-error';
import { liveBinaryMetrics, liveRegressionMetrics, type LiveTaskMetrics } from '../eval/live-task-metrics';
import { binaryMetrics, regressionMetrics, Values } from '../eval/metrics';
import { BinaryAggregate, RegressionAggregate, type TaskAggregate } from '../eval/task-aggregate';
import { ONNX_FLOAT, OnnxGraphBuilder } from '../export/onnx-graph.builder';

/** How a task's labels are scaled for training: regression targets are learnt standardised, binary ones as 0/1. */
export interface LabelScale {
  mean: number;
  std: number;
}

/**
 * Everything that depends on what kind of target a task has, in one place (as torch-rechub's get_loss_func and
 * get_metric_func): a new task type is one more entry of TASK_TYPES. `A` is the summary of its live predictions.
 */
export interface TaskType<A extends TaskAggregate = TaskAggregate> {
  /**
   * The metric that judges the task (history, early stopping, promotion gate), and its direction. Live, an `auc`
   * task has a GAUC over each request's items, and it is what a rollout policy gates on; an `rmse` one is what the
   * policy's regressionError guardrail watches.
   */
  metric: 'auc' | 'rmse';
  higherIsBetter: boolean;
  /** Its metrics' names in a report, in order (those a report has). */
  reportMetrics: readonly string[];
  /** Whether the served values are probabilities that post-hoc calibration may fit (training.calibration). */
  calibrated: boolean;
  /** Whether the targets are standardised with the training rows' mean and std (LabelScale). */
  standardised: boolean;
  /** Whether a served value is a probability: it enters a product fusion as it is, any other through a transform. */
  probability: boolean;
  /** A label cell or event value: a number, NaN when missing, RowError naming `field` when unreadable. */
  parseLabel(raw: unknown, field: string): number;
  /** What is wrong with a label an event reports (a finite number), said after the field's name; undefined if nothing. */
  eventLabelProblem(value: number): string | undefined;
  /**
   * The per-example loss of every [batch, tasks] output against the (scaled) labels; the caller keeps this type's
   * columns. `ops` is TensorFlow.js.
   */
  loss(ops: typeof tf, outputs: tf.Tensor2D, labels: tf.Tensor2D): tf.Tensor2D;
  /** c_t of uncertainty weighting (Kendall et al. 2018): 1 for a classification likelihood, 1/2 for a Gaussian. */
  uncertaintyScale: number;
  /** The network's output (a logit, a standardised value) → the served value. */
  serve(output: number, scale: LabelScale): number;
  /** The same as a node of an ONNX graph: `output` is the [N, 1] network output, the result the served [N, 1]. */
  exportHead(g: OnnxGraphBuilder, output: string, task: string, scale: LabelScale): string;
  /** Metrics of served values on the rows with mask 1 (`groups` adds GAUC, `weights` weigh the rows). */
  metrics(served: Values, labels: Values, mask: Uint8Array, groups?: Values, weights?: Values): Record<string, number>;
  /** The loss training minimised, from a report's metrics (the history's validation loss). */
  validationLoss(metrics: Record<string, number>, scale: LabelScale): number;
  /** An empty additive summary of live labelled predictions, over `clusters` user buckets (task-aggregate.ts). */
  aggregate(clusters: number): A;
  /** Its kind in the summary's stored form (task-aggregate.codec.ts): a byte, never reused. */
  aggregateCode: number;
  /** The task's live metrics, read from that summary. */
  liveMetrics(aggregate: A): LiveTaskMetrics;
}

const binary: TaskType<BinaryAggregate> = {
  metric: 'auc',
  higherIsBetter: true,
  reportMetrics: ['auc', 'gauc', 'logloss', 'ece', 'labelRate', 'count', 'conditionalAuc', 'conditionalCount'],
  calibrated: true,
  standardised: false,
  probability: true,
  parseLabel(raw, field) {
    if (raw === undefined || raw === null || raw === '') return NaN;
    const text = String(raw).trim().toLowerCase();
    if (text === '1' || text === 'true') return 1;
    if (text === '0' || text === 'false') return 0;
    throw new RowError(field, `binary label must be 0/1 or true/false (got ${quoted(raw)})`);
  },
  eventLabelProblem: (value) => (value !== 0 && value !== 1 ? `must be 0 or 1 (binary task), got ${value}` : undefined),
  // Sigmoid cross-entropy from logits, stable for any |z|: max(z, 0) − z·y + log(1 + e^−|z|).
  loss: (ops, z, y) => ops.add(ops.sub(ops.relu(z), ops.mul(z, y)), ops.log1p(ops.exp(ops.neg(ops.abs(z))))),
  uncertaintyScale: 1,
  serve: (z) => 1 / (1 + Math.exp(-z)),
  exportHead: (g, z) => g.op('Sigmoid', [z]),
  metrics: (p, y, mask, groups, weights) => ({ ...binaryMetrics(p, y, mask, groups, weights) }),
  validationLoss: (m) => m.logloss,
  aggregate: (clusters) => new BinaryAggregate(clusters),
  aggregateCode: 1,
  liveMetrics: liveBinaryMetrics,
};

const regression: TaskType<RegressionAggregate> = {
  metric: 'rmse',
  higherIsBetter: false,
  reportMetrics: ['rmse', 'mae', 'count'],
  calibrated: false,
  standardised: true,
  probability: false,
  parseLabel: parseBoundedNumber,
  // Already a finite number: any is a regression label.
  eventLabelProblem: () => undefined,
  loss: (ops, z, y) => ops.squaredDifference(z, y),
  uncertaintyScale: 0.5,
  serve: (z, { mean, std }) => z * std + mean,
  exportHead(g, z, task, { mean, std }) {
    const scaled = g.op('Mul', [z, g.initializer(`labels/${task}/std`, ONNX_FLOAT, [], [std])]);
    return g.op('Add', [scaled, g.initializer(`labels/${task}/mean`, ONNX_FLOAT, [], [mean])]);
  },
  metrics: (v, y, mask, _groups, weights) => ({ ...regressionMetrics(v, y, mask, weights) }),
  // Squared error on standardised targets, as training sees it.
  validationLoss: (m, { std }) => (m.rmse / std) ** 2,
  aggregate: (clusters) => new RegressionAggregate(clusters),
  aggregateCode: 2,
  liveMetrics: liveRegressionMetrics,
};

export const TASK_TYPES = { binary, regression } as const;

export type TaskTypeName = keyof typeof TASK_TYPES;

/** The names, for the spec's schema (its enum and error message). */
export const TASK_TYPE_NAMES = Object.keys(TASK_TYPES) as [TaskTypeName, ...TaskTypeName[]];

export function taskType(task: { type: TaskTypeName }): TaskType {
  return TASK_TYPES[task.type];
}

/** The live metrics of a task from the summary of its predictions (whose kind is its task type). */
export function liveTaskMetrics(aggregate: TaskAggregate): LiveTaskMetrics {
  return taskType({ type: aggregate.kind }).liveMetrics(aggregate);
}
