import { calibrateInPlace, Calibration } from '../calibration/calibration';
import { EncodedDataset } from '../data/preprocessor';
import { labelledRows, parentTasks, sampleSpaceTasks } from '../model-spec/task-space.rules';
import { MultiTaskNetwork } from '../model/network';
import { predict } from '../model/predict';
import type { ScoreResult } from '../serving/scorer';
import { taskType } from '../tasks/task-types';
import { binaryMetrics, expectedCalibrationError, logLoss, ReliabilityBin, reliabilityCurve } from './metrics';

export type TaskMetrics = Record<string, number>;

export interface GateReport {
  /** Experts this task's gate mixes (indices into the model's experts). */
  experts: number[];
  /** Mean gate weight per expert: near one-hot means the gate collapsed onto few experts. */
  utilisation: number[];
  /**
   * Mean entropy (nats) of an example's gate weights: ln(experts) for a uniform mix, 0 when every example is routed
   * to a single expert (a polarised gate).
   */
  entropy: number;
  /** The largest mean weight of one expert: 1 / experts when balanced, near 1 when the gate collapsed onto it. */
  largestShare: number;
  /** top-k only: share of examples routed to each expert. */
  load?: number[];
}

export interface CalibrationQuality {
  ece: number;
  logloss: number;
  /** Reliability curve over ECE_BINS equal-mass bins. */
  curve: ReliabilityBin[];
}

/** A binary task's probabilities before (the network's) and after its calibration (what is served). */
export interface TaskCalibrationReport {
  method: 'none' | 'platt' | 'isotonic';
  before: CalibrationQuality;
  after: CalibrationQuality;
}

export interface EvaluationReport {
  examples: number;
  /** Metrics of the served (calibrated) scores. */
  tasks: Record<string, TaskMetrics>;
  gates: Record<string, GateReport>;
  /** Binary tasks only. */
  calibration: Record<string, TaskCalibrationReport>;
}

export interface EvaluateOptions {
  /** Group id per row (RawTable.groupIds()): binary tasks then report gauc. */
  groups?: Int32Array;
  /** The model's calibration: metrics are of the calibrated scores, and the report compares them with the raw ones. */
  calibration?: Calibration;
  /** The network's raw outputs on `data` (gate weights included), when the caller has them: not computed again. */
  prediction?: ScoreResult;
}

export function evaluate(net: MultiTaskNetwork, data: EncodedDataset, options: EvaluateOptions = {}): EvaluationReport {
  const given = options.prediction;
  if (given && (given.scores[0]?.length !== data.size || given.gateWeights === undefined))
    throw new Error('evaluate: the prediction given is not of these rows, with gate weights');
  const { scores: raw, gateWeights, conditional } = given ?? predict(net, data, { gateWeights: true });
  const tasks: Record<string, TaskMetrics> = {};
  const calibration: Record<string, TaskCalibrationReport> = {};
  const weights = net.spec.training.weightedMetrics ? data.weights : undefined;
  const spaces = sampleSpaceTasks(net.spec.tasks);
  const parents = parentTasks(net.spec.tasks);
  net.spec.tasks.forEach((task, t) => {
    const type = taskType(task);
    const labels = data.labels[t];
    const mask = labelledRows(data.labels, t, spaces[t]);
    const calibrator = options.calibration?.[t] ?? null;
    const served = calibrator ? raw[t].slice() : raw[t];
    calibrateInPlace(calibrator, served);
    if (type.calibrated) {
      calibration[task.name] = {
        method: calibrator?.type ?? 'none',
        before: quality(raw[t], labels, mask),
        after: quality(served, labels, mask),
      };
    }
    tasks[task.name] = type.metrics(served, labels, mask, options.groups, weights);
    if (parents[t] >= 0) {
      // P(task | parent) on the parent's positives, where the conditional event is observed.
      const probs = conditional![net.conditionalTasks.indexOf(t)];
      const given = binaryMetrics(probs, labels, labelledRows(data.labels, t, parents[t]), options.groups, weights);
      for (const [key, value] of Object.entries(given))
        tasks[task.name][`conditional${key[0].toUpperCase()}${key.slice(1)}`] = value;
    }
  });
  const gates: Record<string, GateReport> = {};
  const topK = net.noisyGate;
  net.topology.gates.forEach((gate, g) => {
    const width = gate.experts.length;
    const utilisation = new Array<number>(width).fill(0);
    const load = new Array<number>(width).fill(0);
    const weights = gateWeights![g];
    let entropy = 0;
    for (let i = 0; i < data.size; i++) {
      for (let e = 0; e < width; e++) {
        const w = weights[i * width + e];
        utilisation[e] += w;
        if (w > 0) {
          load[e]++;
          entropy -= w * Math.log(w);
        }
      }
    }
    const n = Math.max(data.size, 1);
    const report: GateReport = {
      experts: gate.experts,
      utilisation: utilisation.map((u) => u / n),
      entropy: entropy / n,
      largestShare: Math.max(...utilisation) / n,
      ...(topK ? { load: load.map((l) => l / Math.max(data.size, 1)) } : {}),
    };
    for (const t of gate.tasks) gates[net.spec.tasks[t].name] = report;
  });
  return { examples: data.size, tasks, gates, calibration };
}

function quality(probs: Float32Array, labels: Float32Array, mask: Uint8Array): CalibrationQuality {
  return {
    ece: expectedCalibrationError(probs, labels, mask),
    logloss: logLoss(probs, labels, mask),
    curve: reliabilityCurve(probs, labels, mask),
  };
}
