import { exportSequencePooling, sequenceTable } from '../features/sequence.feature';
import { MultiTaskNetwork } from '../model/network';
import { gateOfTask } from '../model/topology';
import { ONNX_BATCH_DIM, ONNX_FLOAT, ONNX_INT32, ONNX_INT64, OnnxGraphBuilder } from './onnx-graph.builder';

export { ONNX_BATCH_DIM };

const ONNX_OPSET = 13;
const ONNX_IR_VERSION = 8;

/**
 * The network's inference path as an ONNX model (opset 13), with the trained weights as initializers named after
 * the network's parameters.
 *
 * Inputs:  `numeric` float [N, numericWidth] (absent without numeric features), already standardised;
 *          `cat_<i>` int32 [N] per categorical feature in preprocessing order: the embedding row, 0 for missing / OOV;
 *          `seq_<i>` int32 [N, maxLength] per sequence feature: its embedding rows, left-aligned, padded with -1.
 *          int32 because that is what EncodedDataset holds (no copy), and onnxruntime's Gather takes int32 indices.
 * Outputs: `scores` float [N, tasks]: probabilities for binary tasks, label units for regression ones;
 *          `gates_<g>` float [N, experts of gate g] per gate of the topology (none for shared-bottom).
 */
export function exportOnnx(network: MultiTaskNetwork): Uint8Array {
  const { spec, preprocessing, topology } = network;
  const g = new OnnxGraphBuilder();
  const values = network.snapshot();
  const shapes = network.weightShapes();
  const weight = (name: string): string => {
    const v = values.get(name);
    if (!v) throw new Error(`the network has no parameter "${name}"`);
    return g.initializer(name, ONNX_FLOAT, shapes.get(name)!, v);
  };
  const dense = (x: string, name: string, relu: boolean): string => {
    const y = g.op('Gemm', [x, weight(`${name}/kernel`), weight(`${name}/bias`)]);
    return relu ? g.op('Relu', [y]) : y;
  };

  const tables = new Map<string, string>();
  const table = (feature: string) =>
    tables.get(feature) ?? tables.set(feature, weight(`embedding/${feature}`)).get(feature)!;
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

  const experts = Array.from({ length: topology.expertCount }, (_, e) =>
    topology.expertUnits.reduce((h, _units, l) => dense(h, `experts/${e}/dense${l}`, true), x),
  );

  const topK = network.noisyGate;
  const { temperature } = spec.model.gate.type === 'softmax' ? spec.model.gate : { temperature: 1 };
  // The gate's temperature as tfjs applies it (a division, for parity to the last bit); no dropout at inference.
  const softmax = (logits: string, name: string) => {
    const scaled =
      temperature === 1
        ? logits
        : g.op('Div', [logits, g.initializer(`${name}/temperature`, ONNX_FLOAT, [], [temperature])]);
    return g.op('Softmax', [scaled], { axis: 1 }, name);
  };
  const fused = topology.gates.map((gate, i) => {
    const logits = dense(x, `gates/${i}`, false);
    const name = `gates_${i}`;
    const weights = topK ? topKSoftmax(g, logits, topK.k, name) : softmax(logits, name);
    g.output(name, ONNX_FLOAT, [ONNX_BATCH_DIM, gate.experts.length]);
    const columns = g.ops('Split', [weights], gate.experts.length, { axis: 1 });
    return g.op(
      'Sum',
      gate.experts.map((e, j) => g.op('Mul', [experts[e], columns[j]])),
    );
  });

  const layers = spec.model.towerUnits.length + 1;
  const scores = spec.tasks.map((task, t) => {
    const gate = gateOfTask(topology, t);
    let h = gate === undefined ? experts[0] : fused[gate];
    for (let l = 1; l <= layers; l++) h = dense(h, `towers/${task.name}/dense${l}`, l < layers);
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
