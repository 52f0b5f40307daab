import { embeddingRows, PreprocessingState } from '../data/preprocessor';
import {
  attentionLayerName,
  attentionLayers,
  exportAttentionPooling,
  exportSequencePooling,
  sequenceTable,
} from '../features/sequence.feature';
import { requestSides, rowSides } from '../model-spec/feature-side';
import { ModelSpec } from '../model-spec/model-spec.schema';
import { conditionalTasks, parentFirst, parentTasks } from '../model-spec/task-space.rules';
import { fuseTopology, gateOfTask, relationLayers, runTowers, topologyOf, towerWidths } from '../model/topology';
import { taskType } from '../tasks/task-types';
import { ONNX_BATCH_DIM, ONNX_FLOAT, ONNX_INT32, ONNX_INT64, OnnxGraphBuilder } from './onnx-graph.builder';

export { ONNX_BATCH_DIM };
/** Rows of a request graph's shared inputs: 1 (one request, broadcast over its N candidates) or N (rows that share nothing). */
export const ONNX_SHARED_DIM = 'S';

/** `rows`: every input per row (batch prediction, the stored graph); `request`: user and context inputs once. */
export type GraphLayout = 'rows' | 'request';
/** `int8`: the dense layers' weights dynamically quantised (OnnxGraphBuilder's int8Weights); embeddings stay float. */
export type GraphPrecision = 'fp32' | 'int8';

const ONNX_OPSET = 13;
const ONNX_IR_VERSION = 8;

/**
 * What a graph is built from. An artifact holds all of it (header and weights), so a server builds graphs without
 * TensorFlow.js; a trained network gives it as `{spec, preprocessing, weights: network.snapshot()}`.
 */
export interface ExportSource {
  spec: ModelSpec;
  preprocessing: PreprocessingState;
  /** The public weights by name (MultiTaskNetwork.snapshot(), decodeArtifact's weights); extra ones are ignored. */
  weights: ReadonlyMap<string, Float32Array>;
}

/**
 * The network's inference path as an ONNX model (opset 13), with the trained weights as initializers named after
 * the network's parameters.
 *
 * Inputs:  `numeric` float [N, numericWidth] (absent without numeric features), already standardised;
 *          `cat_<i>` int32 [N] per categorical feature in preprocessing order: the embedding row, 0 for missing / OOV;
 *          `seq_<i>` int32 [N, maxLength] per sequence feature: its embedding rows, left-aligned, padded with -1.
 *          int32 because that is what EncodedDataset holds (no copy), and onnxruntime's Gather takes int32 indices.
 * Outputs: `scores` float [N, tasks]: probabilities for binary tasks (of the joint event for a conditional task),
 *          label units for regression ones;
 *          `conditional` float [N, conditional tasks] (only with conditionalOn tasks): P(task | parent);
 *          `gates_<g>` float [N, experts of gate g] per gate of the topology (none for shared-bottom; for a
 *          multi-level PLE every level's, its shared gate included).
 *
 * The `request` layout (serving) takes the user- and context-side features (feature-side.ts) at ONNX_SHARED_DIM rows:
 * their `cat_<i>` [S] and `seq_<i>` [S, maxLength], and their numerics as `shared_numeric` [S, shared numerics]
 * (`numeric` holds the item-side ones); every layer reading the input row multiplies them once (splitDense). With no
 * shared feature it is the row graph.
 */
export function exportOnnx(
  { spec, preprocessing, weights }: ExportSource,
  layout: GraphLayout = 'rows',
  precision: GraphPrecision = 'fp32',
): Uint8Array {
  const topology = topologyOf(spec);
  const g = new OnnxGraphBuilder({ int8Weights: precision === 'int8' });
  // Shapes follow from the spec and preprocessing, as the network lays its weights out; a weight of another size
  // (an artifact that does not match its spec) is an error naming it.
  const checked = (name: string, shape: number[]): Float32Array => {
    const values = weights.get(name);
    const size = shape.reduce((a, b) => a * b, 1);
    if (values?.length !== size)
      throw new Error(
        values
          ? `weight "${name}" has ${values.length} values, the spec needs ${size} (shape [${shape}])`
          : `the model has no weight "${name}"`,
      );
    return values;
  };
  const weight = (name: string, shape: number[]) => g.initializer(name, ONNX_FLOAT, shape, checked(name, shape));
  const dense = (
    x: string,
    name: string,
    inputs: number,
    units: number,
    relu: boolean,
    kernel = checked(`${name}/kernel`, [inputs, units]),
  ): string => {
    const w = g.initializer(`${name}/kernel`, ONNX_FLOAT, [inputs, units], kernel);
    const y = g.op('Gemm', [x, w, weight(`${name}/bias`, [units])]);
    return relu ? g.op('Relu', [y]) : y;
  };

  // int8 quantises the first layers' input with one range per run (DynamicQuantizeLinear): next to standardised
  // numerics (±3), embeddings (±0.05) would keep a level or two. So each table column is stored scaled to a largest
  // |value| of 1, and the kernel rows that read it are scaled by the inverse: the same products, at full resolution.
  const int8 = precision === 'int8';
  const tables = new Map<string, { name: string; columnScales?: Float32Array }>();
  const table = (feature: string) => {
    if (!tables.has(feature)) {
      const c = preprocessing.categorical.find((f) => f.name === feature) ?? sequenceState(preprocessing, feature);
      const name = `embedding/${feature}`;
      const shape = [embeddingRows(c), c.embeddingDim];
      if (!int8) tables.set(feature, { name: weight(name, shape) });
      else {
        const { scaled, columnScales } = unitColumns(checked(name, shape), c.embeddingDim);
        tables.set(feature, { name: g.initializer(name, ONNX_FLOAT, shape, scaled), columnScales });
      }
    }
    return tables.get(feature)!;
  };
  /** Per input row, the factor its kernel rows take (the inverse of its table column's scaling; 1 for numerics). */
  const rowScales: number[] = [];
  // The input row in the network's public order — [categoricals | sequences | numerics] — with each side's parts and
  // the rows of the first layers' kernels they multiply.
  const sides = layout === 'request' ? requestSides(spec, preprocessing) : rowSides(preprocessing);
  const side = { item: new InputSide(g, ONNX_BATCH_DIM), shared: new InputSide(g, ONNX_SHARED_DIM) };
  let row = 0;
  preprocessing.categorical.forEach((c, i) => {
    const part = sides.categorical.shared.includes(i) ? side.shared : side.item;
    const { name, columnScales } = table(c.name);
    part.add(g.op('Gather', [name, g.input(`cat_${i}`, ONNX_INT32, [part.dim])]), range(row, c.embeddingDim));
    rowScales.push(...(columnScales ?? new Float32Array(c.embeddingDim).fill(1)));
    row += c.embeddingDim;
  });
  preprocessing.sequence.forEach((s, i) => {
    const shared = sides.sequence.shared.includes(i);
    const input = g.input(`seq_${i}`, ONNX_INT32, [shared ? ONNX_SHARED_DIM : ONNX_BATCH_DIM, s.maxLength]);
    const { name, columnScales } = table(sequenceTable(s));
    let pooled: string;
    let part = shared ? side.shared : side.item;
    if (s.pooling === 'attention') {
      // Weighed per candidate: the pooled value is the item's unless the target is shared too.
      const target = preprocessing.categorical.findIndex((c) => c.name === s.attention.target);
      if (!sides.categorical.shared.includes(target)) part = side.item;
      const widths = attentionLayers(s);
      const unit = widths.slice(1).map((units, l) => ({
        kernel: checked(`${attentionLayerName(s.name, l)}/kernel`, [widths[l], units]),
        bias: checked(`${attentionLayerName(s.name, l)}/bias`, [units]),
      }));
      const io = { table: name, input, target: `cat_${target}`, feature: s.name };
      pooled = exportAttentionPooling(g, io, unit, widths, columnScales);
    } else pooled = exportSequencePooling(g, name, input, s.pooling);
    part.add(pooled, range(row, s.embeddingDim));
    rowScales.push(...(columnScales ?? new Float32Array(s.embeddingDim).fill(1)));
    row += s.embeddingDim;
  });
  for (const [part, indices, name] of [
    [side.item, sides.numeric.item, 'numeric'],
    [side.shared, sides.numeric.shared, 'shared_numeric'],
  ] as const) {
    if (indices.length === 0) continue;
    part.add(
      g.input(name, ONNX_FLOAT, [part.dim, indices.length]),
      indices.map((j) => row + j),
    );
  }
  const inputWidth = row + preprocessing.numeric.length;

  // A layer reading the input row takes the shared side's share once (splitDense), when there is one.
  const x = side.item.value();
  const inputKernel = (name: string, units: number) => {
    const kernel = checked(`${name}/kernel`, [inputWidth, units]);
    return int8 ? scaleRows(kernel, units, rowScales) : kernel;
  };
  const inputLayer = (name: string, units: number, relu: boolean) =>
    side.shared.parts.length === 0
      ? dense(x, name, inputWidth, units, relu, inputKernel(name, units))
      : splitDense(
          g,
          side.item,
          side.shared,
          { name, units, relu },
          {
            kernel: inputKernel(name, units),
            bias: checked(`${name}/bias`, [units]),
          },
        );

  const { expertUnits } = topology;
  const expertOut = expertUnits[expertUnits.length - 1];
  // A PLE level past the first reads an earlier gate's fused output (expertOut wide) instead of the input row.
  const expert = (e: number, input: string) =>
    expertUnits.reduce(
      (h, units, l) =>
        l === 0 && topology.experts[e].input === undefined
          ? inputLayer(`experts/${e}/dense0`, units, true)
          : dense(h, `experts/${e}/dense${l}`, l === 0 ? expertOut : expertUnits[l - 1], units, true),
      input,
    );

  const topK = spec.model.gate.type === 'noisy-top-k' && topology.gates.length > 0 ? spec.model.gate : undefined;
  const { temperature } = spec.model.gate.type === 'softmax' ? spec.model.gate : { temperature: 1 };
  // The gate's temperature as tfjs applies it (a division, for parity to the last bit); no dropout at inference.
  const softmax = (logits: string, name: string) => {
    const scaled =
      temperature === 1
        ? logits
        : g.op('Div', [logits, g.initializer(`${name}/temperature`, ONNX_FLOAT, [], [temperature])]);
    return g.op('Softmax', [scaled], { axis: 1 }, name);
  };
  const fused = fuseTopology(topology, x, expert, (i, input, experts) => {
    const logits =
      topology.gates[i].input === undefined
        ? inputLayer(`gates/${i}`, experts.length, false)
        : dense(input, `gates/${i}`, expertOut, experts.length, false);
    const name = `gates_${i}`;
    const gateWeights = topK ? topKSoftmax(g, logits, topK.k, name) : softmax(logits, name);
    g.output(name, ONNX_FLOAT, [ONNX_BATCH_DIM, experts.length]);
    const columns = g.ops('Split', [gateWeights], experts.length, { axis: 1 });
    return g.op(
      'Sum',
      experts.map((h, j) => g.op('Mul', [h, columns[j]])),
    );
  });

  const bottom = topology.gates.length === 0 ? expert(0, x) : undefined;
  const ownUnits = [expertOut, ...spec.model.towerUnits];
  const widths = towerWidths(spec, topology);
  const representation = runTowers(topology, {
    own: (t) => {
      const gate = gateOfTask(topology, t);
      let h = gate === undefined ? bottom! : fused[gate];
      for (let l = 1; l < ownUnits.length; l++)
        h = dense(h, `towers/${spec.tasks[t].name}/dense${l}`, ownUnits[l - 1], ownUnits[l], true);
      return h;
    },
    transfer: (t, own, from) => {
      const task = spec.tasks[t].name;
      const fromWidth = widths.representation[topology.towers[t].transferFrom!];
      const transferred = dense(from, `towers/${task}/transfer`, fromWidth, widths.own, true);
      return attentionTransfer(g, `towers/${task}/attention`, own, transferred, widths.own, weight);
    },
    relate: (t, own, related) => {
      const units = relationLayers(spec, topology, t);
      let h = g.op('Concat', [own, ...related], { axis: 1 });
      for (let l = 1; l < units.length; l++)
        h = dense(h, `towers/${spec.tasks[t].name}/relation${l}`, units[l - 1], units[l], true);
      return h;
    },
  });
  // Each task's network output ([N, 1]: a logit, a standardised value), then its served value.
  const outputs = spec.tasks.map((task, t) =>
    dense(representation[t], `towers/${task.name}/dense${ownUnits.length}`, widths.representation[t], 1, false),
  );
  const scores = spec.tasks.map((task, t) =>
    taskType(task).exportHead(g, outputs[t], task.name, preprocessing.labels[t]),
  );
  // ESMM: P(parent ∧ task) = P(parent) · P(task | parent), parents first (a parent may itself be joint).
  const parents = parentTasks(spec.tasks);
  const heads = scores.slice();
  const esmm = (t: number) => spec.tasks[t].conditionalOn !== undefined;
  for (const t of parentFirst(spec.tasks)) if (esmm(t)) scores[t] = g.op('Mul', [scores[parents[t]], heads[t]]);
  const conditional = conditionalTasks(spec.tasks);
  if (conditional.length > 0) {
    // ESMM's head is P(task | parent); an AITM step's is its probability over its parent's, from the logits (the
    // parent's joint logit for an ESMM parent) as the network computes it.
    const logit = (t: number): string => (esmm(t) ? jointLogit(g, logit(parents[t]), outputs[t]) : outputs[t]);
    g.op(
      'Concat',
      conditional.map((t) => (esmm(t) ? heads[t] : probabilityRatio(g, logit(t), logit(parents[t])))),
      { axis: 1 },
      'conditional',
    );
    g.output('conditional', ONNX_FLOAT, [ONNX_BATCH_DIM, conditional.length]);
  }
  g.op('Concat', scores, { axis: 1 }, 'scores');
  g.output('scores', ONNX_FLOAT, [ONNX_BATCH_DIM, spec.tasks.length]);

  return g.build({
    opset: ONNX_OPSET,
    irVersion: ONNX_IR_VERSION,
    producer: 'mmoe-recsys',
    graphName: spec.model.architecture,
  });
}

/** One side's inputs (the item's, or those a request shares): its parts, and the input-row rows they fill. */
class InputSide {
  readonly parts: string[] = [];
  readonly rows: number[] = [];
  private concatenated: string | undefined;

  constructor(
    private readonly g: OnnxGraphBuilder,
    readonly dim: string,
  ) {}

  add(part: string, rows: Iterable<number>): void {
    this.parts.push(part);
    this.rows.push(...rows);
  }

  /** [dim, rows.length]: the parts side by side (made once). */
  value(): string {
    this.concatenated ??= this.parts.length === 1 ? this.parts[0] : this.g.op('Concat', this.parts, { axis: 1 });
    return this.concatenated;
  }
}

const range = (start: number, count: number) => Array.from({ length: count }, (_, k) => start + k);

/**
 * A layer reading the input row, with the user's share computed once per request: x·W + b = x_item·W_item +
 * (x_shared·W_shared + b), the second term a [S, units] MatMul that Gemm's C input broadcasts over the N candidates.
 * One Gemm per layer, as measured in ORT 1.30 on one thread (reference MMoE, half its features shared, 8 experts + 2
 * gates, N = 100 / 500 / 1,000 rows; the row graph 2.5 / 13.9 / 29.0 ms): 1.46 / 10.7 / 21.9 ms; one wide Gemm over
 * all these layers' item rows split afterwards, 1.52 / 11.8 / 24.6 ms (Split copies the [N, Σunits] product apart);
 * Gemm + a broadcast Add of the shared product, 1.58 / 11.6 / 22.8 ms (one more pass over [N, units]).
 */
function splitDense(
  g: OnnxGraphBuilder,
  item: InputSide,
  shared: InputSide,
  layer: { name: string; units: number; relu: boolean },
  { kernel, bias }: { kernel: Float32Array; bias: Float32Array },
): string {
  /** The kernel's rows of one side's inputs. */
  const rowsOf = (of: InputSide, name: string) => {
    const values = new Float32Array(of.rows.length * layer.units);
    of.rows.forEach((r, k) => values.set(kernel.subarray(r * layer.units, (r + 1) * layer.units), k * layer.units));
    return g.initializer(`${layer.name}/kernel/${name}`, ONNX_FLOAT, [of.rows.length, layer.units], values);
  };
  const sharedTerm = g.op('Add', [
    g.op('MatMul', [shared.value(), rowsOf(shared, 'shared')]),
    g.initializer(`${layer.name}/bias`, ONNX_FLOAT, [layer.units], bias),
  ]);
  const h = g.op('Gemm', [item.value(), rowsOf(item, 'item'), sharedTerm]);
  return layer.relu ? g.op('Relu', [h]) : h;
}

/** The table with each column divided by its largest |value| (1 for a column of zeros), and those factors. */
function unitColumns(values: Float32Array, dim: number): { scaled: Float32Array; columnScales: Float32Array } {
  const columnScales = new Float32Array(dim);
  for (let i = 0; i < values.length; i++) columnScales[i % dim] = Math.max(columnScales[i % dim], Math.abs(values[i]));
  columnScales.forEach((m, c) => (columnScales[c] = m > 0 ? m : 1));
  return { scaled: values.map((v, i) => v / columnScales[i % dim]), columnScales };
}

/** The kernel with row r multiplied by scales[r] (rows past the scales, the numerics, unchanged). */
function scaleRows(kernel: Float32Array, units: number, scales: number[]): Float32Array {
  return kernel.map((v, i) => v * (scales[Math.floor(i / units)] ?? 1));
}

/** A sequence feature with its own table (one sharing a categorical's table is found among the categoricals). */
function sequenceState(preprocessing: PreprocessingState, name: string) {
  const s = preprocessing.sequence.find((f) => f.name === name);
  if (!s || 'sharedEmbedding' in s) throw new Error(`no embedding table "${name}" in the preprocessing state`);
  return s;
}

/**
 * Inference-time noisy top-k gate: the k largest logits (TopK breaks ties by the lower index, as tfjs's topk does),
 * softmax over them, scattered back into zeros.
 */
function topKSoftmax(g: OnnxGraphBuilder, logits: string, k: number, output: string): string {
  const [values, indices] = g.ops('TopK', [logits, g.initializer(`${output}/k`, ONNX_INT64, [1], [k])], 2, {
    axis: 1,
    largest: 1,
    sorted: 1,
  });
  const zeros = g.op('ConstantOfShape', [g.op('Shape', [logits])]); // float 0 by default
  return g.op('ScatterElements', [zeros, indices, g.op('Softmax', [values], { axis: 1 })], { axis: 1 }, output);
}

/**
 * AITM's attention transfer unit as MultiTaskNetwork computes it: the own and the transferred representation each
 * projected to a query, key and value; the own one's weight σ((⟨q, k⟩_own − ⟨q, k⟩_transferred) / √d); the output
 * v_transferred + weight · (v_own − v_transferred).
 */
function attentionTransfer(
  g: OnnxGraphBuilder,
  name: string,
  own: string,
  transferred: string,
  width: number,
  weight: (name: string, shape: number[]) => string,
): string {
  const [query, key, value] = ['query', 'key', 'value'].map((role) => weight(`${name}/${role}/kernel`, [width, width]));
  const sumAxis = g.initializer(`${name}/axis`, ONNX_INT64, [1], [1]);
  const score = (h: string) =>
    g.op('ReduceSum', [g.op('Mul', [g.op('MatMul', [h, query]), g.op('MatMul', [h, key])]), sumAxis], { keepdims: 1 });
  const scale = g.initializer(`${name}/scale`, ONNX_FLOAT, [], [Math.sqrt(width)]);
  const ownWeight = g.op('Sigmoid', [g.op('Div', [g.op('Sub', [score(own), score(transferred)]), scale])]);
  const [ownValue, transferredValue] = [own, transferred].map((h) => g.op('MatMul', [h, value]));
  return g.op('Add', [transferredValue, g.op('Mul', [ownWeight, g.op('Sub', [ownValue, transferredValue])])]);
}

/** The joint logit −log(e^−a + e^−b + e^−(a+b)) of an ESMM task (MultiTaskNetwork's jointLogit). */
function jointLogit(g: OnnxGraphBuilder, a: string, b: string): string {
  const terms = g.op('Concat', [g.op('Neg', [a]), g.op('Neg', [b]), g.op('Neg', [g.op('Add', [a, b])])], { axis: 1 });
  return g.op('Neg', [g.op('ReduceLogSumExp', [terms], { axes: [1], keepdims: 1 })]);
}

/** min(1, σ(a) / σ(b)) as exp(softplus(−b) − softplus(−a)) (MultiTaskNetwork's probabilityRatio). */
function probabilityRatio(g: OnnxGraphBuilder, a: string, b: string): string {
  const ratio = g.op('Exp', [
    g.op('Sub', [g.op('Softplus', [g.op('Neg', [b])]), g.op('Softplus', [g.op('Neg', [a])])]),
  ]);
  return g.op('Min', [ratio, g.initializer(`${a}/${b}/one`, ONNX_FLOAT, [], [1])]);
}
