/**
 * Builds one serving graph from an artifact, off the thread that asked (exportOnnxOffThread), then exits: the graph is
 * posted back as its bytes.
 */
import { parentPort, workerData } from 'node:worker_threads';

import { decodeArtifact } from '../artifact/artifact.codec';
import { checkDeclaredNetwork } from '../artifact/artifact.rules';
import { parseModelSpec } from '../model-spec/model-spec';
import { exportOnnx, type GraphLayout, type GraphPrecision } from './onnx.exporter';

const { artifact, layout, precision } = workerData as {
  artifact: Uint8Array;
  layout: GraphLayout;
  precision: GraphPrecision;
};
const { header, weights } = decodeArtifact(artifact);
const spec = parseModelSpec(header.spec);
const preprocessing = checkDeclaredNetwork(spec, header.preprocessing, header.weights);
const graph = exportOnnx({ spec, preprocessing, weights }, layout, precision);
parentPort!.postMessage(graph, [graph.buffer as ArrayBuffer]);
