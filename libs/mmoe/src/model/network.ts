import * as tf from '@tensorflow/tfjs';

import { DEFAULT_ARTIFACT_LIMITS } from '../artifact/artifact.codec';
import { embeddingRows, PreprocessingState } from '../data/preprocessor';
import { attentionLayerName, attentionLayers } from '../features/sequence.feature';
import { attentionPool, DenseWeights, poolSequence, SequenceBatch } from '../features/sequence.pooling';
import { SpecValidationError } from '../model-spec/model-spec';
import { DEFAULT_CALIBRATOR_WEIGHT, lossBalancingOf, ModelSpec, Pooling } from '../model-spec/model-spec.schema';
import { conditionalTasks, parentFirst, parentTasks } from '../model-spec/task-space.rules';
import { Rng } from '../util/random';
import { dense, linear } from './dense.layer';
import { EmbeddingTables } from './embedding-table';
import { GateOutput, noisyTopKGate, softmaxGate } from './gating';
import { plannedParameters } from './parameter-count';
import {
  fuseTopology,
  gateOfTask,
  relationLayers,
  runTowers,
  sharedExperts,
  Topology,
  topologyOf,
  towerWidths,
} from './topology';

/** One mini-batch as tensors: standardised numerics, the rows to look up in each embedding table, sequences. */
export interface BatchInputs {
  size: number;
  numeric: tf.Tensor2D | undefined;
  /** Per table of EmbeddingTables: [size × features of the table] row ids, offsets included. */
  categorical: tf.Tensor1D[];
  /** Per sequence feature, its values' rows in the variable it reads (SequenceSource), offsets included. */
  sequences: SequenceBatch[];
}

/**
 * The variable a sequence feature's values are looked up in, and where its rows start there; for attention pooling,
 * the target's column among the categoricals (its rows are in the same variable) and the attention unit's layers.
 */
export interface SequenceSource {
  variable: string;
  offset: number;
  pooling: Pooling;
  attention?: { target: number; layers: string[] };
}

/**
 * A weight as the artifact and the ONNX export name and shape it, and where it lives among the trainable variables:
 * rows `rowOffset…` of `variable` (an embedding in its table) or, for layers reading the input row, rows
 * `rowIndex[r]` (the input columns grouped by embedding table).
 */
interface WeightView {
  name: string;
  shape: number[];
  variable: string;
  rowOffset: number;
  rowIndex?: Int32Array;
  /** Columns `columnOffset…` of a variable `variableWidth` wide: one expert's share of the wide first layer. */
  columnOffset?: number;
  variableWidth?: number;
}

/**
 * Widest single-layer experts still run as one wide layer. `npm run bench:experts` (AMD EPYC, wasm, batch 512, 8
 * experts, one training step): 363 kernels per-expert against 101 wide; the wide layer 1.5× faster at 16 units and
 * 1.2× at 64, but 0.86× at 128 and 0.71× at 256, where the batched matmul of the fusion (no XNNPACK path) costs more
 * than the dispatch it saves.
 */
const MAX_WIDE_EXPERT_UNITS = 64;
const WIDE_EXPERTS = 'experts/dense0';
/** The AIT unit's projections, each a [d, d] kernel without bias. */
const ATTENTION_ROLES = ['query', 'key', 'value'] as const;

export interface ForwardOutput {
  /**
   * [batch, tasks]: logits for binary tasks (of the joint event for a conditional task), standardised values for
   * regression ones.
   */
  logits: tf.Tensor2D;
  /**
   * [batch, conditional tasks]: P(task | previous step) of each task with a parent (conditionalTasks): an ESMM task's
   * head, an AITM task's probability over its parent's (at most 1).
   */
  conditional?: tf.Tensor2D;
  /** One per gate of the topology. */
  gates: GateOutput[];
  /** Sum of the gates' balance losses times balanceLossWeight (0 without top-k gating). */
  balanceLoss: tf.Scalar;
  /**
   * AITM's calibrator terms, each its task's: calibratorWeight · mean over the batch of max(p_task − p_parent, 0).
   * Empty without dependsOn tasks.
   */
  calibrators: { task: number; loss: tf.Scalar }[];
}

export interface ForwardOptions {
  training: boolean;
  /** Draws the gate noise seeds; required when training with noisy gates. */
  rng?: Rng;
}

/** Adam's moments in the public weights' layout (one entry per weight, same length), and its step count. */
export interface AdamState {
  step: number;
  first: Map<string, Float32Array>;
  second: Map<string, Float32Array>;
}

/**
 * The multi-task network: embeddings + numerics → experts → per-task gated fusion → towers. `params` are the
 * trainable variables, laid out for speed (embeddings stacked per dimension); `weights()` is the public view by
 * stable name — one embedding per feature, input rows in spec order — the contract with the artifact and the ONNX
 * export.
 */
export class MultiTaskNetwork {
  readonly topology: Topology;
  /**
   * The best epoch's Adam state of the last training of these weights, when it was asked to keep it
   * (TrainOptions.keepOptimizer): what a refit goes on with. Not saved in the artifact.
   */
  optimizerState?: AdamState;
  readonly params = new Map<string, tf.Variable>();
  readonly inputWidth: number;
  readonly embeddings: EmbeddingTables;
  readonly sequenceSources: SequenceSource[];
  /**
   * Single-layer experts that read the input row and are seen whole by every gate (mmoe, omoe) are one wide layer,
   * [input, experts × units], and each gate fuses them with one batched matmul: a handful of kernels per step
   * instead of a few per expert.
   */
  private readonly wideExperts: boolean;
  private readonly views: WeightView[] = [];
  /** Per task, the previous step of its funnel (conditionalOn or dependsOn), or -1. */
  private readonly parents: number[];
  private readonly parentOrder: number[];
  /** The tasks with a parent, in spec order: the columns of ForwardOutput.conditional. */
  readonly conditionalTasks: number[];
  /** Public row → network row of layers reading the input row; undefined when the orders agree. */
  private readonly inputRows: Int32Array | undefined;

  constructor(
    readonly spec: ModelSpec,
    readonly preprocessing: PreprocessingState,
    seed = spec.training.seed,
  ) {
    const planned = plannedParameters(spec, preprocessing);
    const { maxParameters } = DEFAULT_ARTIFACT_LIMITS;
    // Before anything is allocated: a spec whose layers (or vocabularies) are too wide would otherwise grind through
    // gigabytes and end, if ever, with a model no artifact reader loads.
    if (planned > maxParameters)
      throw new SpecValidationError([
        {
          path: 'model',
          message: `the network would have ${planned} parameters, more than the ${maxParameters} an artifact may hold (narrower layers, fewer experts, or a smaller maxVocab / hashBuckets)`,
        },
      ]);
    this.topology = topologyOf(spec);
    this.parents = parentTasks(spec.tasks);
    this.parentOrder = parentFirst(spec.tasks);
    this.conditionalTasks = conditionalTasks(spec.tasks);
    const rng = new Rng(seed);
    const { experts, expertUnits, gates } = this.topology;
    const expertOut = expertUnits[expertUnits.length - 1];
    // A PLE level past the first reads an earlier gate's fused output instead of the input row.
    const widthOf = (source: number | undefined) => (source === undefined ? this.inputWidth : expertOut);
    this.embeddings = new EmbeddingTables(preprocessing.categorical);
    // Input row: [embedding tables | sequences | numerics]; the public order has the categoricals in spec order.
    this.inputWidth =
      preprocessing.numeric.length +
      this.embeddings.width +
      preprocessing.sequence.reduce((s, f) => s + f.embeddingDim, 0);
    this.inputRows = inverseWithNumerics(this.embeddings.inputColumns(), this.inputWidth);

    // Drawn feature by feature in spec order, as when every feature had its own table.
    const tables = this.embeddings.tables.map((t) => new Float32Array(t.rows * t.dim));
    for (const slot of this.embeddings.slots) {
      const { dim } = this.embeddings.tables[slot.table];
      const values = tables[slot.table].subarray(slot.offset * dim, (slot.offset + slot.rows) * dim);
      for (let i = 0; i < values.length; i++) values[i] = (rng.next() - 0.5) * 0.1;
      this.views.push({
        name: `embedding/${slot.feature}`,
        shape: [slot.rows, dim],
        variable: tableName(slot.table),
        rowOffset: slot.offset,
      });
    }
    this.embeddings.tables.forEach((t, i) => this.addVariable(tableName(i), [t.rows, t.dim], tables[i]));
    // A sequence with its own table keeps it apart (its own gather); a shared one reads its feature's rows. An
    // attention pooling's unit (all the draws a spec without one does not make) comes after its table.
    this.sequenceSources = preprocessing.sequence.map((s): SequenceSource => {
      let source: SequenceSource;
      if ('sharedEmbedding' in s) {
        const slot = this.embeddings.slots.find((c) => c.feature === s.sharedEmbedding)!;
        source = { variable: tableName(slot.table), offset: slot.offset, pooling: s.pooling };
      } else {
        this.add(`embedding/${s.name}`, [embeddingRows(s), s.embeddingDim], () => (rng.next() - 0.5) * 0.1);
        source = { variable: `embedding/${s.name}`, offset: 0, pooling: s.pooling };
      }
      if (!s.attention) return source;
      const widths = attentionLayers(s);
      const layers = widths.slice(1).map((units, l) => {
        this.addDense(attentionLayerName(s.name, l), widths[l], units, rng);
        return attentionLayerName(s.name, l);
      });
      const target = preprocessing.categorical.findIndex((c) => c.name === s.attention!.target);
      return { ...source, attention: { target, layers } };
    });
    this.wideExperts =
      expertUnits.length === 1 &&
      expertUnits[0] <= MAX_WIDE_EXPERT_UNITS &&
      experts.length > 1 &&
      experts.every(({ input }) => input === undefined) &&
      gates.length > 0 &&
      gates.every((g) => g.experts.length === experts.length && g.experts.every((e, j) => e === j));
    if (this.wideExperts) this.addWideExperts(experts.length, expertUnits[0], rng);
    // Otherwise separate 2-D matmuls (XNNPACK) per expert.
    else
      experts.forEach(({ input }, e) => {
        expertUnits.forEach((units, l) =>
          l === 0
            ? this.addDense(`experts/${e}/dense0`, widthOf(input), units, rng, input === undefined)
            : this.addDense(`experts/${e}/dense${l}`, expertUnits[l - 1], units, rng),
        );
      });
    gates.forEach((g, i) => {
      const width = widthOf(g.input);
      this.addDense(`gates/${i}`, width, g.experts.length, rng, g.input === undefined);
      if (this.noisyGate?.noise) this.addDense(`gates/${i}/noise`, width, g.experts.length, rng, g.input === undefined);
    });
    const widths = towerWidths(spec, this.topology);
    spec.tasks.forEach((task, t) => {
      const own = [expertOut, ...spec.model.towerUnits];
      for (let l = 1; l < own.length; l++) this.addDense(`towers/${task.name}/dense${l}`, own[l - 1], own[l], rng);
      const { transferFrom, related } = this.topology.towers[t];
      if (transferFrom !== undefined) {
        this.addDense(`towers/${task.name}/transfer`, widths.representation[transferFrom], widths.own, rng);
        for (const role of ATTENTION_ROLES)
          this.addKernel(`towers/${task.name}/attention/${role}/kernel`, widths.own, widths.own, rng);
      }
      if (related.length > 0) {
        const units = relationLayers(spec, this.topology, t);
        for (let l = 1; l < units.length; l++)
          this.addDense(`towers/${task.name}/relation${l}`, units[l - 1], units[l], rng);
      }
      this.addDense(`towers/${task.name}/dense${own.length}`, widths.representation[t], 1, rng);
    });
    if (lossBalancingOf(spec).method === 'uncertainty')
      this.add('uncertainty/logVariance', [spec.tasks.length], () => 0);
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

  /** The kernels of the last layer of the shared experts (sharedExperts), the parameters GradNorm measures. */
  lastSharedKernels(): tf.Variable[] {
    if (this.wideExperts) return [this.params.get(`${WIDE_EXPERTS}/kernel`)!];
    const last = this.topology.expertUnits.length - 1;
    return sharedExperts(this.topology).map((e) => this.params.get(`experts/${e}/dense${last}/kernel`)!);
  }

  /** Call inside tf.tidy (or a gradient function): intermediate tensors are not disposed here. */
  forward(inputs: BatchInputs, options: ForwardOptions): ForwardOutput {
    const tables = this.embeddings.tables.map((_, i) => this.params.get(tableName(i)) as tf.Tensor2D);
    const parts = this.embeddings.lookup(tables, inputs.categorical, inputs.size);
    this.sequenceSources.forEach(({ variable, pooling, attention }, i) => {
      const table = this.params.get(variable) as tf.Tensor2D;
      parts.push(
        attention
          ? attentionPool(
              table,
              inputs.sequences[i],
              attention.layers.map((name) => this.denseWeights(name)),
            )
          : poolSequence(table, inputs.sequences[i], pooling),
      );
    });
    if (inputs.numeric) parts.push(inputs.numeric);
    const x = parts.length === 1 ? parts[0] : tf.concat(parts, 1);

    const expert = (e: number, input: tf.Tensor2D) => {
      let h = input;
      for (let l = 0; l < this.topology.expertUnits.length; l++) h = this.dense(h, `experts/${e}/dense${l}`, true);
      return h;
    };
    const gateOutputs: GateOutput[] = [];
    const gate = (g: number, input: tf.Tensor2D) => gateOutputs[gateOutputs.push(this.gate(g, input, options)) - 1];
    let fusedPerGate: tf.Tensor2D[];
    if (this.wideExperts) {
      // [batch, experts × units] viewed as [batch, experts, units] (no copy); a gate's [batch, 1, experts] times it.
      const [batch, experts, units] = [inputs.size, this.topology.experts.length, this.topology.expertUnits[0]];
      const h = tf.reshape(this.dense(x, WIDE_EXPERTS, true), [batch, experts, units]) as tf.Tensor3D;
      fusedPerGate = this.topology.gates.map((_, g) => {
        const weights = tf.reshape(gate(g, x).weights, [batch, 1, experts]) as tf.Tensor3D;
        return tf.reshape(tf.matMul(weights, h), [batch, units]) as tf.Tensor2D;
      });
    } else {
      // Gated fusion as a sum of scaled experts: stacking them costs a full copy (and its gradient another) on wasm.
      fusedPerGate = fuseTopology(this.topology, x, expert, (g, input, experts) => {
        const weights = tf.split(gate(g, input).weights, experts.length, 1);
        return tf.addN(experts.map((h, j) => tf.mul(h, weights[j]))) as tf.Tensor2D;
      });
    }

    const bottom = this.topology.gates.length === 0 ? expert(0, x) : undefined;
    const { tasks } = this.spec;
    const ownLayers = this.spec.model.towerUnits.length;
    const relationDepth = this.spec.model.relationUnits?.length ?? 1; // relationLayers' default: one layer
    const representation = runTowers(this.topology, {
      own: (t) => {
        const gate = gateOfTask(this.topology, t);
        let h = gate === undefined ? bottom! : fusedPerGate[gate];
        for (let l = 1; l <= ownLayers; l++) h = this.dense(h, `towers/${tasks[t].name}/dense${l}`, true);
        return h;
      },
      transfer: (t, own, from) => this.transfer(tasks[t].name, own, from),
      relate: (t, own, related) => {
        let h = tf.concat([own, ...related], 1) as tf.Tensor2D;
        for (let l = 1; l <= relationDepth; l++) h = this.dense(h, `towers/${tasks[t].name}/relation${l}`, true);
        return h;
      },
    });
    const heads = tasks.map((task, t) =>
      this.dense(representation[t], `towers/${task.name}/dense${ownLayers + 1}`, false),
    );
    // ESMM: a conditional task's logit is its joint event's, from its parent's (itself joint in a chain).
    const logits = heads.slice();
    for (const t of this.parentOrder)
      if (tasks[t].conditionalOn !== undefined) logits[t] = jointLogit(logits[this.parents[t]], heads[t]);
    const conditional = this.conditionalTasks.map((t) =>
      tasks[t].conditionalOn !== undefined
        ? tf.sigmoid(heads[t])
        : probabilityRatio(logits[t], logits[this.parents[t]]),
    );
    const calibrators = this.conditionalTasks.flatMap((t) => {
      if (tasks[t].dependsOn === undefined) return [];
      const excess = tf.relu(tf.sub(tf.sigmoid(logits[t]), tf.sigmoid(logits[this.parents[t]])));
      const weight = tasks[t].calibratorWeight ?? DEFAULT_CALIBRATOR_WEIGHT;
      return [{ task: t, loss: tf.mul(tf.mean(excess), weight) as tf.Scalar }];
    });

    const weight = this.noisyGate?.balanceLossWeight ?? 0;
    const balanceLoss =
      weight > 0 && gateOutputs.length > 0
        ? (tf.mul(weight, tf.addN(gateOutputs.map((g) => g.balanceLoss))) as tf.Scalar)
        : tf.scalar(0);
    return {
      logits: concatColumns(logits),
      conditional: conditional.length === 0 ? undefined : concatColumns(conditional),
      gates: gateOutputs,
      balanceLoss,
      calibrators,
    };
  }

  /** The public weights' names and shapes, in a stable order. */
  weightShapes(): Map<string, number[]> {
    return new Map(this.views.map((w) => [w.name, w.shape]));
  }

  /** Copies of the public weights (for keeping the best epoch, the artifact and the ONNX export). */
  snapshot(): Map<string, Float32Array> {
    return this.toPublic(new Map([...this.params].map(([name, v]) => [name, v.dataSync() as Float32Array])));
  }

  /** Sets every weight from public values (as snapshot returns them). */
  restore(weights: Map<string, Float32Array>): void {
    const variables = this.fromPublic(weights);
    for (const [name, v] of this.params) tf.tidy(() => v.assign(tf.tensor(variables.get(name)!, v.shape)));
  }

  /** Per-variable values (the weights, or anything laid out like them: Adam's moments) in the public layout. */
  toPublic(variables: ReadonlyMap<string, Float32Array>): Map<string, Float32Array> {
    return new Map(this.views.map((w) => [w.name, this.extract(w, variables.get(w.variable)!)]));
  }

  /**
   * The inverse of toPublic: per-variable values from public ones, each checked against its shape; written into
   * `variables` when given (zeroed arrays, one per variable: views of one flat buffer, say).
   */
  fromPublic(
    values: ReadonlyMap<string, Float32Array>,
    variables: Map<string, Float32Array> = new Map(
      [...this.params].map(([name, v]) => [name, new Float32Array(v.size)]),
    ),
  ): Map<string, Float32Array> {
    for (const w of this.views) {
      const value = values.get(w.name);
      if (!value) throw new Error(`missing weight "${w.name}"`);
      const size = w.shape.reduce((a, b) => a * b, 1);
      if (value.length !== size)
        throw new Error(
          `weight "${w.name}" has ${value.length} values, the model expects ${size} (shape [${w.shape}])`,
        );
      this.insert(w, value, variables.get(w.variable)!);
    }
    return variables;
  }

  /** Frees the weights and the optimizer state; disposing again does nothing. */
  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
    this.optimizerState = undefined;
  }

  private gate(i: number, x: tf.Tensor2D, { training, rng }: ForwardOptions): GateOutput {
    const topK = this.noisyGate;
    const logits = this.dense(x, `gates/${i}`, false);
    if (!topK) {
      const { temperature, dropout } = this.spec.model.gate as Extract<ModelSpec['model']['gate'], { type: 'softmax' }>;
      if (!(training && dropout > 0)) return softmaxGate(logits, { temperature });
      if (!rng) throw new Error('gate dropout in training needs an rng');
      return softmaxGate(logits, { temperature, dropout: { rate: dropout, seed: rng.seed() } });
    }
    if (!(training && topK.noise)) return noisyTopKGate(logits, topK.k);
    if (!rng) throw new Error('noisy gating in training needs an rng');
    const noiseLogits = this.dense(x, `gates/${i}/noise`, false);
    return noisyTopKGate(logits, topK.k, {
      logits: noiseLogits,
      standardNormal: tf.randomNormal(logits.shape, 0, 1, 'float32', rng.seed()),
    });
  }

  /**
   * AITM's adaptive information transfer (Xi et al. 2021, §3.2): the transferred p = relu(from·W + b) and the tower's
   * own q are each projected to a query, key and value (no bias); their weights are the softmax over the two of
   * ⟨query, key⟩ / √d, the output the weighted sum of their values. A softmax over two is the sigmoid of the
   * difference: fewer kernels, the same numbers (the ONNX export writes the same).
   */
  private transfer(task: string, own: tf.Tensor2D, from: tf.Tensor2D): tf.Tensor2D {
    const transferred = this.dense(from, `towers/${task}/transfer`, true);
    const kernel = (role: string) => this.params.get(`towers/${task}/attention/${role}/kernel`) as tf.Tensor2D;
    const score = (h: tf.Tensor2D) => tf.sum(tf.mul(linear(h, kernel('query')), linear(h, kernel('key'))), 1, true);
    const ownWeight = tf.sigmoid(tf.div(tf.sub(score(own), score(transferred)), Math.sqrt(own.shape[1])));
    const [ownValue, transferredValue] = [own, transferred].map((h) => linear(h, kernel('value')));
    return tf.add(transferredValue, tf.mul(ownWeight, tf.sub(ownValue, transferredValue))) as tf.Tensor2D;
  }

  private dense(x: tf.Tensor2D, name: string, relu: boolean): tf.Tensor2D {
    const { kernel, bias } = this.denseWeights(name);
    return dense(x, kernel, bias, relu);
  }

  private denseWeights(name: string): DenseWeights {
    return {
      kernel: this.params.get(`${name}/kernel`) as tf.Tensor2D,
      bias: this.params.get(`${name}/bias`) as tf.Tensor1D,
    };
  }

  private extract(w: WeightView, source: Float32Array): Float32Array {
    const width = w.shape.length === 1 ? 1 : w.shape[1];
    if (!w.rowIndex && w.variableWidth === undefined)
      return source.slice(w.rowOffset * width, (w.rowOffset + w.shape[0]) * width);
    const out = new Float32Array(w.shape[0] * width);
    for (let r = 0; r < w.shape[0]; r++) out.set(source.subarray(...variableRow(w, r, width)), r * width);
    return out;
  }

  private insert(w: WeightView, values: Float32Array, target: Float32Array): void {
    const width = w.shape.length === 1 ? 1 : w.shape[1];
    if (!w.rowIndex && w.variableWidth === undefined) return target.set(values, w.rowOffset * width);
    for (let r = 0; r < w.shape[0]; r++)
      target.set(values.subarray(r * width, (r + 1) * width), variableRow(w, r, width)[0]);
  }

  /**
   * The experts' first layer as one [input, experts × units] kernel: expert e's public kernel is its columns
   * e × units…, drawn expert by expert in the order of separate layers, so a seed gives the same network either way.
   */
  private addWideExperts(experts: number, units: number, rng: Rng): void {
    const inputs = this.inputWidth;
    const width = experts * units;
    const limit = Math.sqrt(6 / (inputs + units));
    const kernel = new Float32Array(inputs * width);
    for (let e = 0; e < experts; e++) {
      for (let i = 0; i < inputs * units; i++)
        kernel[Math.floor(i / units) * width + e * units + (i % units)] = (rng.next() * 2 - 1) * limit;
      const name = `experts/${e}/dense0`;
      this.views.push({
        name: `${name}/kernel`,
        shape: [inputs, units],
        variable: `${WIDE_EXPERTS}/kernel`,
        rowOffset: 0,
        rowIndex: this.inputRows,
        columnOffset: e * units,
        variableWidth: width,
      });
      this.views.push({ name: `${name}/bias`, shape: [units], variable: `${WIDE_EXPERTS}/bias`, rowOffset: e * units });
    }
    this.addVariable(`${WIDE_EXPERTS}/kernel`, [inputs, width], kernel);
    this.addVariable(`${WIDE_EXPERTS}/bias`, [width], new Float32Array(width));
  }

  private addVariable(name: string, shape: number[], values: Float32Array): void {
    const initial = tf.tensor(values, shape);
    this.params.set(name, tf.variable(initial)); // the variable takes a reference to the data, not the tensor
    initial.dispose();
  }

  private add(name: string, shape: number[], init: () => number, rowIndex?: Int32Array): void {
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < values.length; i++) values[i] = init();
    this.addVariable(name, shape, values);
    this.views.push({ name, shape, variable: name, rowOffset: 0, rowIndex });
  }

  /** A Glorot-uniform kernel without a bias. */
  private addKernel(name: string, inputs: number, units: number, rng: Rng): void {
    const limit = Math.sqrt(6 / (inputs + units));
    this.add(name, [inputs, units], () => (rng.next() * 2 - 1) * limit);
  }

  /** Glorot-uniform kernel and zero bias; `readsInput` for layers fed the input row (see EmbeddingTables). */
  private addDense(name: string, inputs: number, units: number, rng: Rng, readsInput = false): void {
    const limit = Math.sqrt(6 / (inputs + units));
    this.add(
      `${name}/kernel`,
      [inputs, units],
      () => (rng.next() * 2 - 1) * limit,
      readsInput ? this.inputRows : undefined,
    );
    this.add(`${name}/bias`, [units], () => 0);
  }
}

/** [start, end) in the variable of a view's public row r, `width` values wide. */
function variableRow(w: WeightView, r: number, width: number): [number, number] {
  const row = w.rowIndex ? w.rowIndex[r] : w.rowOffset + r;
  const start = row * (w.variableWidth ?? width) + (w.columnOffset ?? 0);
  return [start, start + width];
}

/**
 * The logit of P(parent ∧ task) = σ(a)·σ(b) from the parent's logit a and the conditional one b:
 * -log(e^-a + e^-b + e^-(a+b)), since 1/σ(a)σ(b) = (1 + e^-a)(1 + e^-b). Exact and stable in logits, so the joint
 * task keeps the usual cross-entropy from logits.
 */
function jointLogit(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  const terms = tf.concat([tf.neg(a), tf.neg(b), tf.neg(tf.add(a, b))], 1);
  return tf.neg(tf.logSumExp(terms, 1, true)) as tf.Tensor2D;
}

/**
 * min(1, σ(a) / σ(b)) from the logits, as exp(softplus(−b) − softplus(−a)): an AITM step's probability given its
 * parent's, finite whatever the logits.
 */
function probabilityRatio(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return tf.minimum(tf.exp(tf.sub(tf.softplus(tf.neg(b)), tf.softplus(tf.neg(a)))), 1) as tf.Tensor2D;
}

function concatColumns(columns: tf.Tensor2D[]): tf.Tensor2D {
  return columns.length === 1 ? columns[0] : tf.concat(columns, 1);
}

function tableName(i: number): string {
  return `embedding-table/${i}`;
}

/** Public input row → network input row, numerics (after the embeddings in both orders) unchanged. */
function inverseWithNumerics(columns: Int32Array | undefined, width: number): Int32Array | undefined {
  if (!columns) return undefined;
  const inverse = Int32Array.from({ length: width }, (_, i) => i);
  columns.forEach((publicColumn, networkColumn) => (inverse[publicColumn] = networkColumn));
  return inverse;
}
