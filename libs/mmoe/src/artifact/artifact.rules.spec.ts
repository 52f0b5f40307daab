import { createHash } from 'node:crypto';

import { MultiTaskModel } from '../mmoe.model';
import { parseModelSpec } from '../model-spec/model-spec';
import { ArtifactHeader, decodeArtifact, encodeArtifact } from './artifact.codec';

const spec = parseModelSpec({
  features: [{ name: 'item_id', type: 'categorical', embeddingDim: 64, hashBuckets: 2_000_000 }],
  tasks: [{ name: 'click', label: 'clicked', type: 'binary' }],
  model: { experts: 2, expertUnits: [4] },
});
const preprocessing = {
  numeric: [],
  categorical: [{ name: 'item_id', embeddingDim: 64, hashBuckets: 2_000_000 }],
  sequence: [],
  labels: [{ task: 'click', mean: 0, std: 1 }],
};

type Weights = Parameters<typeof encodeArtifact>[1];
const weight = (...shape: number[]) => ({ shape, values: new Float32Array(shape.reduce((a, b) => a * b, 1)) });

/** A valid checksum around whatever header and weights: only the size checks can refuse it. */
function crafted(header: Partial<ArtifactHeader>, weights: Weights = new Map([['embedding/item_id', weight(4, 64)]])) {
  return encodeArtifact({ createdAt: '', spec, preprocessing, metadata: {}, ...header } as ArtifactHeader, weights);
}

describe('artifact size rules', () => {
  it('refuses a header declaring 2,000,000 hash buckets × 64 over a few KB of weights, at once', () => {
    const started = performance.now();
    expect(() => MultiTaskModel.fromArtifact(crafted({}))).toThrow(
      /"preprocessing\.categorical\[0\]" declares 2000001 rows × 64 for "item_id", but its weight "embedding\/item_id" has shape \[4,64\]/,
    );
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('refuses layers wider than the weights present', () => {
    const wide = parseModelSpec({ ...spec, model: { experts: 256, expertUnits: [65_536, 65_536] } });
    const small = { ...preprocessing, categorical: [{ name: 'item_id', embeddingDim: 4, hashBuckets: 3 }] };
    const artifact = encodeArtifact(
      { createdAt: '', spec: wide, preprocessing: small, metadata: {} },
      new Map([['embedding/item_id', weight(4, 4)]]),
    );
    expect(() => MultiTaskModel.fromArtifact(artifact)).toThrow(
      /"spec\.model" declares a network of \d+ parameters, the artifact holds 16/,
    );
  });

  it('checks weight shapes against the bytes present and the limit before allocating them', () => {
    const entries = withWeightList;
    expect(() => decodeArtifact(entries([{ name: 'w', shape: [200_000, 64] }]))).toThrow(
      /truncated: header field "weights\[0\]\.shape" \[200000,64\] needs 12800000 floats, the file holds 0/,
    );
    expect(() => decodeArtifact(entries([{ name: 'w', shape: [1e9, 1e9] }]))).toThrow(
      /"weights\[0\]\.shape" \[1000000000,1000000000\] takes the weights past the limit of 100000000 parameters/,
    );
    expect(() => decodeArtifact(crafted({}), { maxParameters: 100 })).toThrow(/past the limit of 100 parameters/);
    expect(() => decodeArtifact(entries('x'))).toThrow('artifact header field "weights" must be an array');
    expect(() => decodeArtifact(entries([{ name: 'w', shape: 'abc' }]))).toThrow(
      'artifact header field "weights[0].shape" must be a list of positive integers',
    );
    expect(() => decodeArtifact(entries([{ name: 'w', shape: [-1] }]))).toThrow(/"weights\[0\]\.shape"/);
    expect(() => decodeArtifact(entries([{ shape: [1] }]))).toThrow(/"weights\[0\]\.name" must be a non-empty string/);
    expect(() => decodeArtifact(entries([null]))).toThrow(/"weights\[0\]\.name"/);
  });

  it('refuses a weight that is NaN or infinite, naming it: such a network scores every item NaN', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const values = new Float32Array(4 * 64);
      values[7] = bad;
      // Not written (a diverged training fails its job) …
      expect(() => crafted({}, new Map([['embedding/item_id', { shape: [4, 64], values }]]))).toThrow(
        `weight embedding/item_id holds ${bad} at index 7`,
      );
      // … nor read (an upload, or a version stored before).
      const artifact = crafted({});
      const body = artifact.subarray(48);
      body.writeFloatLE(bad, artifact.readUInt32LE(44) + 7 * 4);
      createHash('sha256').update(body).digest().copy(artifact, 12);
      expect(() => decodeArtifact(artifact)).toThrow(`weight embedding/item_id holds ${bad} at index 7`);
    }
    expect(decodeArtifact(crafted({})).weights.get('embedding/item_id')).toHaveLength(256);
  });

  it('names each malformed preprocessing field', () => {
    const broken = (patch: object) => () =>
      MultiTaskModel.fromArtifact(crafted({ preprocessing: { ...preprocessing, ...patch } as never }));
    expect(broken({ categorical: 'x' })).toThrow('"preprocessing.categorical" must be a list of objects');
    expect(broken({ categorical: [{ name: 'item_id', embeddingDim: 64, hashBuckets: -3 }] })).toThrow(
      '"preprocessing.categorical[0].hashBuckets" must be a positive integer',
    );
    expect(broken({ categorical: [{ name: 'item_id', embeddingDim: 64, vocab: [1] }] })).toThrow(
      '"preprocessing.categorical[0].vocab" must be a list of strings',
    );
    expect(broken({ categorical: [{ name: 'item_id', embeddingDim: 64, buckets: [1, 1] }] })).toThrow(
      '"preprocessing.categorical[0].buckets" must be a non-empty, strictly increasing list of finite numbers',
    );
    expect(broken({ categorical: [{ name: 'item_id', embeddingDim: 64, buckets: [1, 2, 3] }] })).toThrow(
      /declares 5 rows × 64 for "item_id", but its weight "embedding\/item_id" has shape \[4,64\]/,
    );
    expect(broken({ numeric: [{ name: 'x', mean: 0, std: 0 }] })).toThrow('"preprocessing.numeric[0].std"');
    // Beyond what training writes (its labels are within ±1e18): every regression score was infinite, served null.
    expect(broken({ labels: [{ task: 'click', mean: 0, std: 1e300 }] })).toThrow(
      '"preprocessing.labels[0].std" must be a number within ±1e18',
    );
    expect(broken({ numeric: [{ name: 'x', mean: 0, std: 1, transform: 'log' }] })).toThrow(
      '"preprocessing.numeric[0].transform" must be "log1p" or absent',
    );
    expect(broken({ labels: [{ task: 3, mean: 0, std: 1 }] })).toThrow('"preprocessing.labels[0].task"');
    const list = { name: 'history', separator: '|', embeddingDim: 64, maxLength: 3, sharedEmbedding: 'item_id' };
    expect(
      broken({ sequence: [{ ...list, pooling: 'attention', attention: { target: 'genre', units: [4] } }] }),
    ).toThrow(
      '"preprocessing.sequence[0].attention.target" must be the name of the categorical feature whose table it shares',
    );
    expect(
      broken({ sequence: [{ ...list, pooling: 'attention', attention: { target: 'item_id', units: [0] } }] }),
    ).toThrow('"preprocessing.sequence[0].attention.units" must be a non-empty list of positive integers');
    expect(broken({ sequence: [{ ...list, pooling: 'attention' }] })).toThrow(
      '"preprocessing.sequence[0].attention.target"',
    );
  });

  it("refuses a preprocessing that is not its spec's: each feature's state, each task's label in order", () => {
    const small = { ...preprocessing, categorical: [{ name: 'item_id', embeddingDim: 4, hashBuckets: 3 }] };
    const load = (patch: object) => () =>
      MultiTaskModel.fromArtifact(
        encodeArtifact(
          { createdAt: '', spec, preprocessing: { ...small, ...patch } as never, metadata: {} },
          new Map([['embedding/item_id', weight(4, 4)]]),
        ),
      );
    expect(load({ labels: [] })).toThrow(
      'artifact header field "preprocessing.labels" must hold the tasks ["click"] in that order',
    );
    expect(load({ labels: [{ task: 'click', mean: 0, std: 0 }] })).toThrow(
      '"preprocessing.labels[0].std" must be positive',
    );
    expect(load({ numeric: [{ name: 'price', mean: 0, std: 1 }] })).toThrow(
      'artifact header field "preprocessing" covers the features ["item_id","price"], its spec declares ["item_id"]',
    );
  });
});

/** A checksummed artifact whose header lists `weights` (anything), with no weight bytes after it. */
function withWeightList(weights: unknown): Buffer {
  const header = Buffer.from(JSON.stringify({ createdAt: '', spec, preprocessing, metadata: {}, weights }), 'utf8');
  const prefix = Buffer.from(crafted({}, new Map()).subarray(0, 48));
  createHash('sha256').update(header).digest().copy(prefix, 12);
  prefix.writeUInt32LE(header.length, 44);
  return Buffer.concat([prefix, header]);
}
