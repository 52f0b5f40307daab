import * as tf from '@tensorflow/tfjs';

import { EncodedDataset } from '../data/preprocessor';
import type { ScoreResult } from '../serving/scorer';
import { taskType } from '../tasks/task-types';
import { BatchBuilder, disposeBatch } from './batch';
import { MultiTaskNetwork } from './network';

export interface PredictOptions {
  batchSize?: number;
  gateWeights?: boolean;
}

/** Inference mode: no gate noise, batches of `batchSize` rows, no tensor left behind. */
export function predict(net: MultiTaskNetwork, data: EncodedDataset, options: PredictOptions = {}): ScoreResult {
  const batchSize = options.batchSize ?? 4096;
  const tasks = net.spec.tasks;
  const gates = net.topology.gates;
  const scores = tasks.map(() => new Float32Array(data.size));
  const gateWeights = options.gateWeights
    ? gates.map((g) => new Float32Array(data.size * g.experts.length))
    : undefined;
  const conditional =
    net.conditionalTasks.length > 0 ? net.conditionalTasks.map(() => new Float32Array(data.size)) : undefined;
  const builder = new BatchBuilder(net, data, Math.min(batchSize, data.size));
  for (let start = 0; start < data.size; start += batchSize) {
    const end = Math.min(start + batchSize, data.size);
    const inputs = builder.inputs(start, end);
    const [logits, conditionalProbs, ...weights] = tf.tidy(() => {
      const out = net.forward(inputs, { training: false });
      return [out.logits, out.conditional ?? tf.zeros([0]), ...(gateWeights ? out.gates.map((g) => g.weights) : [])];
    });
    disposeBatch(inputs);
    const values = logits.dataSync();
    const width = tasks.length;
    tasks.forEach((task, t) => {
      const { serve } = taskType(task);
      const scale = net.preprocessing.labels[t];
      const out = scores[t];
      for (let i = 0; i < end - start; i++) out[start + i] = serve(values[i * width + t], scale);
    });
    if (conditional) {
      const probs = conditionalProbs.dataSync();
      conditional.forEach((out, c) => {
        for (let i = 0; i < end - start; i++) out[start + i] = probs[i * conditional.length + c];
      });
    }
    weights.forEach((w, g) => gateWeights![g].set(w.dataSync(), start * gates[g].experts.length));
    tf.dispose([logits, conditionalProbs, ...weights]);
  }
  return { scores, gateWeights, ...(conditional ? { conditional } : {}) };
}
