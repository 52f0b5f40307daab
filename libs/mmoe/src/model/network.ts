import * as tf from '@tensorflow/tfjs';

import { embeddingRows, PreprocessingState } from '../data/preprocessor';
import { ModelSpec } from '../model-spec/model-spec.schema';
import { Rng } from '../util/random';
import { dense } from './dense.layer';
import { GateOutput, noisyTopKGate, softmaxGate } from './gating';
import { gateOfTask, Topology, topologyOf } from './topology';

/** One mini-batch as tensors: standardised numerics and one index vector per categorical feature. */
export interface BatchInputs {
  numeric: tf.Tensor2D | undefined;
  categorical: tf.Tensor1D[];
}

export interface ForwardOutput {
  /** [batch, tasks]: logits for binary tasks, standardised values for regression ones. */
  logits: tf.Tensor2D;
  /** One per gate of the topology. */
  gates: GateOutput[];
  /** Sum of the gates' balance losses times balanceLossWeight (0 without top-k gating). */
  balanceLoss: tf.Scalar;
}

export interface ForwardOptions {
  training: boolean;
  /** Draws the gate noise seeds; required when training with noisy gates. */
  rng?: Rng;
}

/**
 * The multi-task network: embeddings + numerics → experts → per-task gated fusion → towers. Parameters are plain
 * named variables (stable names are the contract with the artifact and the ONNX export).
 */
export class MultiTaskNetwork {
  readonly topology: Topology;
  readonly params = new Map<string, tf.Variable>();
  readonly inputWidth: number;

  constructor(
    readonly spec: ModelSpec,
    readonly preprocessing: PreprocessingState,
    seed = spec.training.seed,
  ) {
    this.topology = topologyOf(spec);
    const rng = new Rng(seed);
    const { expertCount, expertUnits, gates } = this.topology;
    this.inputWidth = preprocessing.numeric.length + preprocessing.categorical.reduce((s, c) => s + c.embeddingDim, 0);

    for (const c of preprocessing.categorical) {
      this.add(`embedding/${c.name}`, [embeddingRows(c), c.embeddingDim], () => (rng.next() - 0.5) * 0.1);
    }
    // Separate 2-D matmuls per expert and gate: slicing one wide product apart costs more on wasm than it saves.
    for (let e = 0; e < expertCount; e++) {
      expertUnits.forEach((units, l) =>
        this.addDense(`experts/${e}/dense${l}`, l === 0 ? this.inputWidth : expertUnits[l - 1], units, rng),
      );
    }
    gates.forEach((g, i) => {
      this.addDense(`gates/${i}`, this.inputWidth, g.experts.length, rng);
      if (this.noisyGate?.noise) this.addDense(`gates/${i}/noise`, this.inputWidth, g.experts.length, rng);
    });
    const expertOut = expertUnits[expertUnits.length - 1];
    spec.tasks.forEach((task) => {
      const units = [expertOut, ...spec.model.towerUnits, 1];
      for (let l = 1; l < units.length; l++)
        this.addDense(`towers/${task.name}/dense${l}`, units[l - 1], units[l], rng);
    });
    if (spec.model.uncertaintyWeighting) this.add('uncertainty/logVariance', [spec.tasks.length], () => 0);
  }

  get noisyGate() {
    const gate = this.spec.model.gate;
    return gate.type === 'noisy-top-k' && this.topology.gates.length > 0 ? gate : undefined;
  }

  parameterCount(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  /** Call inside tf.tidy (or a gradient function): intermediate tensors are not disposed here. */
  forward(inputs: BatchInputs, options: ForwardOptions): ForwardOutput {
    const parts: tf.Tensor2D[] = this.preprocessing.categorical.map(
      (c, i) => tf.gather(this.params.get(`embedding/${c.name}`)!, inputs.categorical[i]) as tf.Tensor2D,
    );
    if (inputs.numeric) parts.push(inputs.numeric);
    const x = parts.length === 1 ? parts[0] : tf.concat(parts, 1);

    const { expertCount, expertUnits, gates } = this.topology;
    const experts = Array.from({ length: expertCount }, (_, e) => {
      let h = x;
      for (let l = 0; l < expertUnits.length; l++) h = this.dense(h, `experts/${e}/dense${l}`, true);
      return h;
    });

    const gateOutputs = this.gate(x, options);
    // Gated fusion as a sum of scaled experts: stacking them costs a full copy (and its gradient another) on wasm.
    const fusedPerGate = gates.map((g, i) => {
      const weights = tf.split(gateOutputs[i].weights, g.experts.length, 1);
      return tf.addN(g.experts.map((e, j) => tf.mul(experts[e], weights[j]))) as tf.Tensor2D;
    });

    const logits = this.spec.tasks.map((task, t) => {
      const gate = gateOfTask(this.topology, t);
      let h = gate === undefined ? experts[0] : fusedPerGate[gate];
      const layers = this.spec.model.towerUnits.length + 1;
      for (let l = 1; l <= layers; l++) {
        h = this.dense(h, `towers/${task.name}/dense${l}`, l < layers);
      }
      return h;
    });

    const weight = this.noisyGate?.balanceLossWeight ?? 0;
    const balanceLoss =
      weight > 0 && gateOutputs.length > 0
        ? (tf.mul(weight, tf.addN(gateOutputs.map((g) => g.balanceLoss))) as tf.Scalar)
        : tf.scalar(0);
    return { logits: logits.length === 1 ? logits[0] : tf.concat(logits, 1), gates: gateOutputs, balanceLoss };
  }

  /** Copies of the current weights (for keeping the best epoch). */
  snapshot(): Map<string, Float32Array> {
    return new Map([...this.params].map(([name, v]) => [name, v.dataSync() as Float32Array]));
  }

  restore(weights: Map<string, Float32Array>): void {
    for (const [name, v] of this.params) {
      const values = weights.get(name);
      if (!values) throw new Error(`missing weight "${name}"`);
      if (values.length !== v.size)
        throw new Error(
          `weight "${name}" has ${values.length} values, the model expects ${v.size} (shape [${v.shape}])`,
        );
      tf.tidy(() => v.assign(tf.tensor(values, v.shape)));
    }
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
  }

  private gate(x: tf.Tensor2D, { training, rng }: ForwardOptions): GateOutput[] {
    const topK = this.noisyGate;
    return this.topology.gates.map((_, i) => {
      const logits = this.dense(x, `gates/${i}`, false);
      if (!topK) return softmaxGate(logits);
      if (!(training && topK.noise)) return noisyTopKGate(logits, topK.k);
      if (!rng) throw new Error('noisy gating in training needs an rng');
      const noiseLogits = this.dense(x, `gates/${i}/noise`, false);
      return noisyTopKGate(logits, topK.k, {
        logits: noiseLogits,
        standardNormal: tf.randomNormal(logits.shape, 0, 1, 'float32', rng.seed()),
      });
    });
  }

  private dense(x: tf.Tensor2D, name: string, relu: boolean): tf.Tensor2D {
    return dense(
      x,
      this.params.get(`${name}/kernel`) as tf.Tensor2D,
      this.params.get(`${name}/bias`) as tf.Tensor1D,
      relu,
    );
  }

  private add(name: string, shape: number[], init: () => number): void {
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < values.length; i++) values[i] = init();
    const initial = tf.tensor(values, shape);
    this.params.set(name, tf.variable(initial)); // the variable takes a reference to the data, not the tensor
    initial.dispose();
  }

  /** Glorot-uniform kernel and zero bias. */
  private addDense(name: string, inputs: number, units: number, rng: Rng): void {
    const limit = Math.sqrt(6 / (inputs + units));
    this.add(`${name}/kernel`, [inputs, units], () => (rng.next() * 2 - 1) * limit);
    this.add(`${name}/bias`, [units], () => 0);
  }
}
