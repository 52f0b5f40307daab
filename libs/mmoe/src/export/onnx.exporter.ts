import { embeddingRows, PreprocessingState } from '../data/preprocessor';
import { exportSequencePooling, sequenceTable } from '../features/sequence.feature';
import { ModelSpec } from '../model-spec/model-spec.schema';
import { fuseTopology, gateOfTask, topologyOf } from '../model/topology';
import { ONNX_BATCH_DIM, ONNX_FLOAT, ONNX_INT32, ONNX_INT64, OnnxGraphBuilder } from './onnx-graph.builder';

export { ONNX_BATCH_DIM };

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
 * Outputs: `scores` float [N, tasks]: probabilities for binary tasks, label units for regression ones;
 *          `gates_<g>` float [N, experts of gate g] per gate of the topology (none for shared-bottom; for a
 *          multi-level PLE every level's, its shared gate included).
 */
export function exportOnnx({ spec, preprocessing, weights }: ExportSource): Uint8Array {
  const topology = topologyOf(spec);
  const g = new OnnxGraphBuilder();
  // Shapes follow from the spec and preprocessing, as the network lays its weights out; a weight of another size
  // (an artifact that does not match its spec) is an error naming it.
  const weight = (name: string, shape: number[]): string => {
    const values = weights.get(name);
    const size = shape.reduce((a, b) => a * b, 1);
    if (values?.length !== size)
      throw new Error(
        values
          ? `weight "${name}" has ${values.length} values, the spec needs ${size} (shape [${shape}])`
          : `the model has no weight "${name}"`,
      );
    return g.initializer(name, ONNX_FLOAT, shape, values);
  };
  const dense = (x: string, name: string, inputs: number, units: number, relu: boolean): string => {
    const y = g.op('Gemm', [x, weight(`${name}/kernel`, [inputs, units]), weight(`${name}/bias`, [units])]);
    return relu ? g.op('Relu', [y]) : y;
  };

  const tables = new Map<string, string>();
  const table = (feature: string) => {
    if (!tables.has(feature)) {
      const c = preprocessing.categorical.find((f) => f.name === feature) ?? sequenceState(preprocessing, feature);
      tables.set(feature, weight(`embedding/${feature}`, [embeddingRows(c), c.embeddingDim]));
    }
    return tables.get(feature)!;
  };
  const parts = preprocessing.categorical.map((c, i) =>
    g.op('Gather', [table(c.name), g.input(`cat_${i}`, ONNX_INT32, [ONNX_BATCH_DIM])]),
  );
  preprocessing.sequence.forEach((s, i) => {
    const input = g.input(`seq_${i}`, ONNX_INT32, [ONNX_BATCH_DIM, s.maxLength]);
    parts.push(exportSequencePooling(g, table(sequenceTable(s)), input, s.pooling, `seq_${i}`));
  });
  const numericWidth = preprocessing.numeric.length;
  if (numericWidth > 0) parts.push(g.input('numeric', ONNX_FLOAT, [ONNX_BATCH_DIM, numericWidth]));
  const x = parts.length === 1 ? parts[0] : g.op('Concat', parts, { axis: 1 });
  const inputWidth = [...preprocessing.categorical, ...preprocessing.sequence].reduce(
    (s, f) => s + f.embeddingDim,
    numericWidth,
  );

  const { expertUnits } = topology;
  const expertOut = expertUnits[expertUnits.length - 1];
  // A PLE level past the first reads an earlier gate's fused output instead of the input row.
  const widthOf = (source: number | undefined) => (source === undefined ? inputWidth : expertOut);
  const expert = (e: number, input: string) =>
    expertUnits.reduce(
      (h, units, l) =>
        dense(
          h,
          `experts/${e}/dense${l}`,
          l === 0 ? widthOf(topology.experts[e].input) : expertUnits[l - 1],
          units,
          true,
        ),
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
    const logits = dense(input, `gates/${i}`, widthOf(topology.gates[i].input), experts.length, false);
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
  const towerUnits = [expertOut, ...spec.model.towerUnits, 1];
  const scores = spec.tasks.map((task, t) => {
    const gate = gateOfTask(topology, t);
    let h = gate === undefined ? bottom! : fused[gate];
    for (let l = 1; l < towerUnits.length; l++)
      h = dense(h, `towers/${task.name}/dense${l}`, towerUnits[l - 1], towerUnits[l], l < towerUnits.length - 1);
    if (task.type === 'binary') return g.op('Sigmoid', [h]);
    // Regression towers predict standardised values; serve them in label units.
    const { mean, std } = preprocessing.labels[t];
    const scaled = g.op('Mul', [h, g.initializer(`labels/${task.name}/std`, ONNX_FLOAT, [], [std])]);
    return g.op('Add', [scaled, g.initializer(`labels/${task.name}/mean`, ONNX_FLOAT, [], [mean])]);
  });
  g.op('Concat', scores, { axis: 1 }, 'scores');
  g.output('scores', ONNX_FLOAT, [ONNX_BATCH_DIM, spec.tasks.length]);

  return g.build({
    opset: ONNX_OPSET,
    irVersion: ONNX_IR_VERSION,
    producer: 'mmoe-recsys',
    graphName: spec.model.architecture,
  });
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
