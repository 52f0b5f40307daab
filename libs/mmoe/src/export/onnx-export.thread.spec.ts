import { encodeArtifact } from '../artifact/artifact.codec';
import { initBackend } from '../backend/backend';
import { parseModelSpec } from '../model-spec/model-spec';
import { MultiTaskNetwork } from '../model/network';
import { exportOnnxOffThread } from './onnx-export.thread';
import { exportOnnx } from './onnx.exporter';

beforeAll(() => initBackend('wasm'));

const spec = parseModelSpec({
  features: [
    { name: 'age', type: 'numeric', side: 'user' },
    { name: 'genre', type: 'categorical', embeddingDim: 3 },
  ],
  tasks: [{ name: 'click', label: 'click', type: 'binary' }],
  model: { experts: 2, expertUnits: [8], towerUnits: [4] },
});

/** An untrained network's artifact: the graph does not depend on what the weights learnt. */
function artifactOf(): { artifact: Buffer; network: MultiTaskNetwork } {
  const network = new MultiTaskNetwork(spec, {
    numeric: [{ name: 'age', mean: 30, std: 5 }],
    categorical: [{ name: 'genre', embeddingDim: 3, vocab: ['a', 'b'] }],
    sequence: [],
    labels: [{ task: 'click', mean: 0, std: 1 }],
  });
  const shapes = network.weightShapes();
  const weights = new Map(
    [...network.snapshot()].map(([name, values]) => [name, { shape: shapes.get(name)!, values }]),
  );
  const header = { createdAt: '2026-12-06T00:00:00Z', spec, preprocessing: network.preprocessing, metadata: {} };
  return { artifact: encodeArtifact(header, weights), network };
}

describe('exportOnnxOffThread', () => {
  it("builds exportOnnx's graph on a thread of its own, the event loop free meanwhile", async () => {
    const { artifact, network } = artifactOf();
    const source = { spec, preprocessing: network.preprocessing, weights: network.snapshot() };
    for (const precision of ['fp32', 'int8'] as const) {
      let ticked = false;
      setTimeout(() => (ticked = true), 0);
      const graph = await exportOnnxOffThread(artifact, 'request', precision);
      // Built inline, the promise would have settled before any timer ran.
      expect(ticked).toBe(true);
      expect(Buffer.from(graph).equals(Buffer.from(exportOnnx(source, 'request', precision)))).toBe(true);
    }
    network.dispose();
  });

  it("rejects with the export's own error for an artifact it cannot read", async () => {
    await expect(exportOnnxOffThread(Buffer.from('not an artifact'), 'request', 'fp32')).rejects.toThrow(
      'not an MMoE model artifact (bad magic bytes)',
    );
  });
});
