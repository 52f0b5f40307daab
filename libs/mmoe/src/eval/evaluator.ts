import { EncodedDataset } from '../data/preprocessor';
import { MultiTaskNetwork } from '../model/network';
import { predict } from '../model/predict';
import { binaryMetrics, regressionMetrics } from './metrics';

export type TaskMetrics = Record<string, number>;

export interface GateReport {
  /** Experts this task's gate mixes (indices into the model's experts). */
  experts: number[];
  /** Mean gate weight per expert: near one-hot means the gate collapsed onto few experts. */
  utilisation: number[];
  /** top-k only: share of examples routed to each expert. */
  load?: number[];
}

export interface EvaluationReport {
  examples: number;
  tasks: Record<string, TaskMetrics>;
  gates: Record<string, GateReport>;
}

export function evaluate(net: MultiTaskNetwork, data: EncodedDataset): EvaluationReport {
  const { scores, gateWeights } = predict(net, data, { gateWeights: true });
  const tasks: Record<string, TaskMetrics> = {};
  net.spec.tasks.forEach((task, t) => {
    const labels = data.labels[t];
    const mask = Uint8Array.from(labels, (y) => (Number.isNaN(y) ? 0 : 1));
    const metrics =
      task.type === 'binary' ? binaryMetrics(scores[t], labels, mask) : regressionMetrics(scores[t], labels, mask);
    tasks[task.name] = { ...metrics };
  });
  const gates: Record<string, GateReport> = {};
  const topK = net.noisyGate;
  net.topology.gates.forEach((gate, g) => {
    const width = gate.experts.length;
    const utilisation = new Array<number>(width).fill(0);
    const load = new Array<number>(width).fill(0);
    const weights = gateWeights![g];
    for (let i = 0; i < data.size; i++) {
      for (let e = 0; e < width; e++) {
        const w = weights[i * width + e];
        utilisation[e] += w;
        if (w > 0) load[e]++;
      }
    }
    const report: GateReport = {
      experts: gate.experts,
      utilisation: utilisation.map((u) => u / Math.max(data.size, 1)),
      ...(topK ? { load: load.map((l) => l / Math.max(data.size, 1)) } : {}),
    };
    for (const t of gate.tasks) gates[net.spec.tasks[t].name] = report;
  });
  return { examples: data.size, tasks, gates };
}
