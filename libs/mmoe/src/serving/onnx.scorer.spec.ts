import { initBackend } from '../backend/backend';
import { expandRequest, type EncodedSlice, type RequestBatch } from '../data/encoded-slice';
import { EncodedDataset } from '../data/preprocessor';
import { RawTable } from '../data/raw-table';
import { exportOnnx } from '../export/onnx.exporter';
import { MultiTaskModel } from '../mmoe.model';
import { requestSides, type RequestSides } from '../model-spec/feature-side';
import { parseModelSpec } from '../model-spec/model-spec';
import { ModelSpec, ModelSpecInput, Pooling } from '../model-spec/model-spec.schema';
import { conditionalTasks, parentFirst, parentTasks } from '../model-spec/task-space.rules';
import { Rng } from '../util/random';
import { InferencePool } from './inference.pool';
import { OnnxScorer } from './onnx.scorer';
import { checkInt8 } from './precision.check';
import { DeadlineExpiredError, ScoreResult } from './scorer';
import { TfjsScorer } from './tfjs.scorer';

beforeAll(() => initBackend('wasm'));

type Features = ModelSpecInput['features'];

const mixedFeatures: Features = [
  { name: 'segment', type: 'categorical', embeddingDim: 4, minCount: 5 },
  { name: 'affinity', type: 'numeric' },
  { name: 'user', type: 'categorical', embeddingDim: 3, hashBuckets: 50 },
  { name: 'genre', type: 'categorical', embeddingDim: 5 },
  { name: 'noise', type: 'numeric' },
];

const threeTasks: ModelSpecInput['tasks'] = [
  { name: 'click', label: 'click', type: 'binary' },
  { name: 'watch', label: 'secs', type: 'regression' },
  { name: 'like', label: 'like', type: 'binary' },
];

const makeSpec = (
  model: Partial<ModelSpecInput['model']>,
  features: Features = mixedFeatures,
  tasks: ModelSpecInput['tasks'] = threeTasks,
) =>
  parseModelSpec({
    features,
    tasks,
    model: { architecture: 'mmoe', experts: 4, expertUnits: [16], towerUnits: [8], ...model },
    training: { epochs: 2, batchSize: 64, learningRate: 0.02, seed: 7, earlyStoppingPatience: 0 },
  });

/**
 * Rows with a learnable structure. With `unseen`, categories absent from training and missing values appear, which
 * the encoder maps to embedding row 0 (and numerics to the training mean).
 */
function rows(spec: ModelSpec, n: number, seed: number, unseen = false): RawTable {
  const rng = new Rng(seed);
  const table = new RawTable(spec);
  const maybe = (value: string) => (unseen && rng.next() < 0.1 ? '' : value);
  // A funnel step cannot happen without its parent (the table refuses such a row): the labels drawn are cut to it.
  const parents = parentTasks(spec.tasks);
  const funnel = (record: Record<string, string | string[]>) => {
    for (const t of parentFirst(spec.tasks))
      if (parents[t] >= 0 && record[spec.tasks[parents[t]].label] === '0') record[spec.tasks[t].label] = '0';
    return record;
  };
  for (let i = 0; i < n; i++) {
    const segment = rng.int(unseen ? 6 : 4);
    const genre = rng.int(unseen ? 8 : 6);
    const affinity = rng.gaussian();
    const genres = Array.from({ length: rng.int(unseen ? 7 : 5) }, () => `g${rng.int(unseen ? 8 : 6)}`);
    const clickLogit = (segment === genre % 4 ? 2 : -1) + 1.5 * affinity + (genres.includes('g1') ? 1 : 0);
    table.add(
      funnel({
        genres: genres.join('|'),
        history: genres.slice(0, 4),
        segment: maybe(`s${segment}`),
        genre: maybe(`g${genre}`),
        user: maybe(`u${rng.int(500)}`),
        affinity: maybe(String(affinity)),
        noise: maybe(String(rng.gaussian())),
        // Heavy-tailed, > -1: for log1p; missing without drawing (the other columns' draws stay as they were).
        spend: unseen && genre === 0 ? '' : String(Math.exp(2 * affinity) - 0.5),
        click: rng.next() < 1 / (1 + Math.exp(-clickLogit)) ? '1' : '0',
        like: rng.next() < 1 / (1 + Math.exp(-(affinity - (genre === 5 ? 0 : 1)))) ? '1' : '0',
        secs: String(30 + 10 * affinity + 3 * (segment % 2) + 2 * rng.gaussian()),
        // No draw of its own, so that every other column stays as it was: a favourite of well-matched genres.
        fav: genre % 3 === 0 ? '1' : '0',
        segments: [`s${segment}`, `s${(segment + genre) % 4}`],
      }),
    );
  }
  return table;
}

async function trainTiny(spec: ModelSpec): Promise<MultiTaskModel> {
  return (await MultiTaskModel.train(spec, rows(spec, 1500, 1))).model;
}

/**
 * Worst error per task and gate, listed when above tolerance: absolute for probabilities and gate weights, relative
 * for regression scores (in label units) of magnitude 1 and more.
 */
function expectParity(spec: ModelSpec, actual: ScoreResult, expected: ScoreResult, tolerance = 1e-5): void {
  const worst = (a: Float32Array, e: Float32Array, relative: boolean) => {
    expect(a).toHaveLength(e.length);
    let max = 0;
    for (let i = 0; i < e.length; i++) {
      // Relative for values of 1 and more: near 0 a relative error measures float rounding of the label mean.
      const err = Math.abs(a[i] - e[i]) / (relative ? Math.max(Math.abs(e[i]), 1) : 1);
      max = Number.isNaN(err) ? Infinity : Math.max(max, err);
    }
    return max;
  };
  const errors = [
    ...spec.tasks.map((task, t) => ({
      of: task.name,
      error: worst(actual.scores[t], expected.scores[t], task.type === 'regression'),
    })),
    ...(expected.gateWeights ?? []).map((e, g) => ({
      of: `gate ${g}`,
      error: worst(actual.gateWeights![g], e, false),
    })),
    ...(expected.conditional ?? []).map((e, c) => ({
      of: `conditional ${c}`,
      error: worst(actual.conditional![c], e, false),
    })),
  ];
  expect(actual.gateWeights?.length).toBe(expected.gateWeights?.length);
  expect(actual.conditional?.length).toBe(expected.conditional?.length);
  expect(errors.filter((e) => !(e.error < tolerance))).toEqual([]);
}

/** Trains a tiny model of the spec and checks ONNX against tfjs on `n` fresh rows (unseen values included). */
async function expectTrainedParity(spec: ModelSpec, n: number, checkData?: (data: EncodedDataset) => void) {
  const model = await trainTiny(spec);
  const scorer = await OnnxScorer.create(model.toOnnx(), spec, model.network.preprocessing, {
    batchSize: 300,
  });
  try {
    const data = model.encode(rows(spec, n, 3, true));
    checkData?.(data);
    expectParity(
      spec,
      await scorer.score(data, { gateWeights: true }),
      await new TfjsScorer(model).score(data, { gateWeights: true }),
    );
  } finally {
    await scorer.dispose();
    model.dispose();
  }
}

describe.each<[string, Partial<ModelSpecInput['model']>]>([
  ['mmoe, softmax gates', { towerUnits: [8] }],
  ['mmoe, gate temperature 2 and dropout', { gate: { type: 'softmax', temperature: 2, dropout: 0.3 } }],
  ['mmoe, noisy top-2 gates, no tower layer', { gate: { type: 'noisy-top-k', k: 2 }, towerUnits: [] }],
  ['omoe, two expert and two tower layers', { architecture: 'omoe', expertUnits: [12, 8], towerUnits: [8, 4] }],
  ['ple', { architecture: 'ple', experts: 2, taskExperts: 2, towerUnits: [6] }],
  ['ple, noisy top-1 gates', { architecture: 'ple', experts: 2, taskExperts: 1, gate: { type: 'noisy-top-k', k: 1 } }],
  [
    'ple, 2 levels',
    { architecture: 'ple', levels: 2, experts: 2, taskExperts: 2, expertUnits: [12, 8], towerUnits: [6] },
  ],
  [
    'ple, 3 levels, noisy top-2 gates',
    { architecture: 'ple', levels: 3, experts: 2, taskExperts: 1, gate: { type: 'noisy-top-k', k: 2 } },
  ],
  ['cgc', { architecture: 'cgc', experts: 2, taskExperts: 1 }],
  ['shared-bottom', { architecture: 'shared-bottom', bottomUnits: [16, 8], towerUnits: [8] }],
])('OnnxScorer on %s', (_name, model) => {
  const spec = makeSpec(model);
  let trained: MultiTaskModel;
  let data: EncodedDataset;
  let onnx: OnnxScorer;
  let reference: ScoreResult;

  beforeAll(async () => {
    trained = await trainTiny(spec);
    data = trained.encode(rows(spec, 1200, 2, true));
    // Batches smaller than the data: the scorer's row offsets are exercised too.
    onnx = await OnnxScorer.create(trained.toOnnx(), spec, trained.network.preprocessing, {
      batchSize: 500,
    });
    reference = await new TfjsScorer(trained).score(data, { gateWeights: true });
  });
  afterAll(async () => {
    await onnx.dispose();
    trained.dispose();
  });

  it('scores within 1e-5 of tfjs, gate weights included', async () => {
    expect(data.categorical.every((c) => c.includes(0))).toBe(true); // missing / unseen rows are in the sample
    expectParity(spec, await onnx.score(data, { gateWeights: true }), reference);
  });

  it('leaves gate weights out unless asked', async () => {
    const result = await onnx.score(data);
    expect(result.gateWeights).toBeUndefined();
    expectParity(spec, result, { scores: reference.scores });
  });
});

/** Request r of `size` candidates: the shared columns of its first row, the item columns of each of its rows. */
function requestOf(data: EncodedDataset, sides: RequestSides, start: number, size: number): RequestBatch {
  const width = data.numericWidth;
  const shared: EncodedSlice = {
    numeric: data.numeric.slice(start * width, (start + 1) * width),
    categorical: Int32Array.from(data.categorical, (c) => c[start]),
    sequences: data.sequences.map(({ offsets, ids }) => ids.slice(offsets[start], offsets[start + 1])),
    present: new Uint8Array(width + data.categorical.length + data.sequences.length).fill(1),
  };
  const end = start + size;
  const numeric = new Float32Array(size * sides.numeric.item.length);
  for (let i = start, o = 0; i < end; i++)
    for (const j of sides.numeric.item) numeric[o++] = data.numeric[i * width + j];
  return {
    size,
    shared,
    numeric,
    categorical: sides.categorical.item.map((j) => data.categorical[j].slice(start, end)),
    sequences: sides.sequence.item.map((j) => {
      const { offsets, ids } = data.sequences[j];
      return {
        offsets: offsets.slice(start, end + 1).map((o) => o - offsets[start]),
        ids: ids.slice(offsets[start], offsets[end]),
      };
    }),
  };
}

/**
 * A funnel of three steps, the last an AITM step over an ESMM one (fav conditional on click, like depending on fav),
 * and a regression task whose relation layers read two of them; listed children first.
 */
const funnelTasks: ModelSpecInput['tasks'] = [
  { name: 'watch', label: 'secs', type: 'regression', relatedTasks: ['like', 'click'] },
  { name: 'like', label: 'like', type: 'binary', dependsOn: 'fav', calibratorWeight: 1 },
  { name: 'click', label: 'click', type: 'binary' },
  { name: 'fav', label: 'fav', type: 'binary', conditionalOn: 'click' },
];

/** User and context features on the shared side (a numeric, a categorical and a sequence), the rest per item. */
const sidedFeatures: Features = [
  { name: 'segment', type: 'categorical', embeddingDim: 4, minCount: 5, side: 'user' },
  { name: 'affinity', type: 'numeric', side: 'context' },
  { name: 'user', type: 'categorical', embeddingDim: 3, hashBuckets: 50 },
  { name: 'genre', type: 'categorical', embeddingDim: 5 },
  { name: 'noise', type: 'numeric' },
  { name: 'genres', type: 'sequence', pooling: 'mean', maxLength: 5, embeddingDim: 3 },
  { name: 'history', type: 'sequence', pooling: 'max', maxLength: 3, sharedEmbedding: 'genre', side: 'user' },
];

describe.each<[string, Partial<ModelSpecInput['model']>, ModelSpecInput['tasks']?]>([
  ['mmoe', { towerUnits: [8] }],
  [
    'mmoe with an ESMM task (like conditional on click)',
    { towerUnits: [8] },
    threeTasks.map((t) => (t.name === 'like' ? { ...t, conditionalOn: 'click' } : t)),
  ],
  ['mmoe, noisy top-2 gates', { gate: { type: 'noisy-top-k', k: 2 }, expertUnits: [12, 8] }],
  ['shared-bottom with an AITM funnel and DBMTL relations', { architecture: 'shared-bottom' }, funnelTasks],
  ['ple', { architecture: 'ple', experts: 2, taskExperts: 2, towerUnits: [6] }],
  ['ple, 2 levels', { architecture: 'ple', levels: 2, experts: 2, taskExperts: 1, expertUnits: [12, 8] }],
  ['shared-bottom', { architecture: 'shared-bottom', bottomUnits: [16, 8], towerUnits: [8] }],
])('the request graph of %s (user and context features fed once)', (_name, modelSpec, tasks) => {
  const spec = makeSpec(modelSpec, sidedFeatures, tasks);
  const candidates = 100;
  let trained: MultiTaskModel;
  let data: EncodedDataset;
  let sides: RequestSides;
  let requests: RequestBatch[];
  let onnx: OnnxScorer;

  beforeAll(async () => {
    trained = await trainTiny(spec);
    data = trained.encode(rows(spec, 1200, 2, true));
    sides = requestSides(spec, trained.network.preprocessing);
    requests = Array.from({ length: data.size / candidates }, (_, r) =>
      requestOf(data, sides, r * candidates, candidates),
    );
    const graph = exportOnnx(
      { spec, preprocessing: trained.network.preprocessing, weights: trained.network.snapshot() },
      'request',
    );
    onnx = await OnnxScorer.create(graph, spec, trained.network.preprocessing, { layout: 'request', batchSize: 64 });
  });
  afterAll(async () => {
    await onnx.dispose();
    trained.dispose();
  });

  it('takes the shared inputs at [S] and [S, maxLength], and the item ones at [N]', async () => {
    expect(sides).toEqual({
      numeric: { shared: [0], item: [1] },
      categorical: { shared: [0], item: [1, 2] },
      sequence: { shared: [1], item: [0] },
    });
    await expect(
      OnnxScorer.create(trained.toOnnx(), spec, trained.network.preprocessing, { layout: 'request' }),
    ).rejects.toThrow(
      /it has inputs \{cat_0: int32\[N\];.*the spec needs \{cat_0: int32\[S\];.*shared_numeric: float32\[S, 1\]/,
    );
  });

  it('scores 12 requests of 100 candidates within 1e-5 of tfjs on their expanded rows, gate weights included', async () => {
    const tfjs = new TfjsScorer(trained);
    for (const request of requests) {
      expectParity(
        spec,
        await onnx.scoreRequest(request, { gateWeights: true }),
        await tfjs.score(expandRequest(sides, request), { gateWeights: true }),
      );
    }
  });

  it('takes the same requests on the row graph (expanded per candidate)', async () => {
    const rowGraph = await OnnxScorer.create(trained.toOnnx(), spec, trained.network.preprocessing);
    try {
      for (const request of requests.slice(0, 3))
        expectParity(spec, await rowGraph.scoreRequest(request), await onnx.scoreRequest(request));
    } finally {
      await rowGraph.dispose();
    }
  });

  it('scores full rows too (the shared inputs at S = N), within 1e-5 of tfjs', async () => {
    expectParity(
      spec,
      await onnx.score(data, { gateWeights: true }),
      await new TfjsScorer(trained).score(data, { gateWeights: true }),
    );
  });
});

/**
 * Target attention (DIN) on each side: a user's history weighed against each candidate's genre (a shared list, pooled
 * per candidate), an item's genres against its genre (all per item), a user's segments against the user's segment
 * (all shared: pooled once per request).
 */
const attentionFeatures: Features = [
  { name: 'segment', type: 'categorical', embeddingDim: 4, minCount: 5, side: 'user' },
  { name: 'affinity', type: 'numeric', side: 'context' },
  { name: 'user', type: 'categorical', embeddingDim: 3, hashBuckets: 50 },
  { name: 'genre', type: 'categorical', embeddingDim: 5 },
  { name: 'genres', type: 'sequence', pooling: 'attention', target: 'genre', maxLength: 5, attentionUnits: [6, 4] },
  { name: 'history', type: 'sequence', pooling: 'attention', target: 'genre', maxLength: 3, side: 'user' },
  { name: 'segments', type: 'sequence', pooling: 'attention', target: 'segment', maxLength: 2, side: 'user' },
];

describe('attention pooling', () => {
  const spec = makeSpec({ towerUnits: [8] }, attentionFeatures);
  const candidates = 100;
  let trained: MultiTaskModel;
  let data: EncodedDataset;
  let sides: RequestSides;
  let source: () => {
    spec: ModelSpec;
    preprocessing: MultiTaskModel['network']['preprocessing'];
    weights: Map<string, Float32Array>;
  };

  beforeAll(async () => {
    trained = await trainTiny(spec);
    data = trained.encode(rows(spec, 1200, 2, true));
    sides = requestSides(spec, trained.network.preprocessing);
    source = () => ({ spec, preprocessing: trained.network.preprocessing, weights: trained.network.snapshot() });
  });
  afterAll(() => trained.dispose());

  const requests = () =>
    Array.from({ length: data.size / candidates }, (_, r) => requestOf(data, sides, r * candidates, candidates));
  const scorer = (graph: Uint8Array, layout: 'rows' | 'request') =>
    OnnxScorer.create(graph, spec, trained.network.preprocessing, { layout, batchSize: 64 });

  it("reads the lists in the target's table and learns an attention unit per list", () => {
    expect(
      trained.network.preprocessing.sequence.map((s) => [
        s.name,
        'sharedEmbedding' in s && s.sharedEmbedding,
        s.attention,
      ]),
    ).toEqual([
      ['genres', 'genre', { target: 'genre', units: [6, 4] }],
      ['history', 'genre', { target: 'genre', units: [16] }],
      ['segments', 'segment', { target: 'segment', units: [16] }],
    ]);
    const shapes = trained.network.weightShapes();
    expect(shapes.get('attention/genres/dense0/kernel')).toEqual([15, 6]);
    expect(shapes.get('attention/genres/dense2/kernel')).toEqual([4, 1]);
    expect(shapes.get('attention/segments/dense1/kernel')).toEqual([16, 1]);
  });

  it('scores rows within 1e-5 of tfjs on the row graph', async () => {
    const onnx = await scorer(trained.toOnnx(), 'rows');
    try {
      expect(data.sequences[0].offsets.some((o, i) => i > 0 && o === data.sequences[0].offsets[i - 1])).toBe(true); // an empty list
      expectParity(
        spec,
        await onnx.score(data, { gateWeights: true }),
        await new TfjsScorer(trained).score(data, { gateWeights: true }),
      );
    } finally {
      await onnx.dispose();
    }
  });

  it('scores requests within 1e-5 of tfjs on the request graph: a shared list weighed per candidate', async () => {
    expect(sides.sequence).toEqual({ shared: [1, 2], item: [0] });
    const onnx = await scorer(exportOnnx(source(), 'request'), 'request');
    const tfjs = new TfjsScorer(trained);
    try {
      for (const request of requests())
        expectParity(
          spec,
          await onnx.scoreRequest(request, { gateWeights: true }),
          await tfjs.score(expandRequest(sides, request), { gateWeights: true }),
        );
      expectParity(spec, await onnx.score(data), await tfjs.score(data));
    } finally {
      await onnx.dispose();
    }
  });

  it('scores int8 graphs within a few hundredths of fp32 in both layouts', async () => {
    for (const layout of ['rows', 'request'] as const) {
      const [fp32, int8] = await Promise.all(
        (['fp32', 'int8'] as const).map((precision) => scorer(exportOnnx(source(), layout, precision), layout)),
      );
      try {
        const [a, b] = [await fp32.score(data), await int8.score(data)];
        // Probabilities absolutely, watch (label units) relative to its standard deviation.
        const { labels } = trained.network.preprocessing;
        const worst = spec.tasks.map((_, t) =>
          a.scores[t].reduce((w, v, i) => Math.max(w, Math.abs(v - b.scores[t][i]) / labels[t].std), 0),
        );
        expect(Math.min(...worst)).toBeGreaterThan(0); // really quantised
        expect(Math.max(...worst)).toBeLessThan(0.05); // exactness of the scaling: sequence.feature.spec
      } finally {
        await Promise.all([fp32.dispose(), int8.dispose()]);
      }
    }
  });
});

describe('OnnxScorer', () => {
  it.each<[string, Features]>([
    [
      'only numeric features',
      [
        { name: 'affinity', type: 'numeric' },
        { name: 'noise', type: 'numeric' },
      ],
    ],
    ['only a categorical feature', [{ name: 'genre', type: 'categorical', embeddingDim: 4 }]],
    [
      'only categorical features',
      [
        { name: 'segment', type: 'categorical', embeddingDim: 4 },
        { name: 'user', type: 'categorical', embeddingDim: 2, hashBuckets: 20 },
      ],
    ],
    [
      // One table per dimension reorders the network's input columns; the export keeps the spec order.
      'embedding dimensions interleaved',
      [
        { name: 'segment', type: 'categorical', embeddingDim: 4 },
        { name: 'user', type: 'categorical', embeddingDim: 2, hashBuckets: 20 },
        { name: 'affinity', type: 'numeric' },
        { name: 'genre', type: 'categorical', embeddingDim: 4 },
      ],
    ],
    [
      // A bucketised numeric is an embedding of its own (between the categoricals, here of another width).
      'a log1p and a bucketised numeric feature, missing values included',
      [
        { name: 'spend', type: 'numeric', transform: 'log1p' },
        { name: 'segment', type: 'categorical', embeddingDim: 4 },
        { name: 'affinity', type: 'numeric', buckets: [-1.5, -0.5, 0, 0.5, 1.5], embeddingDim: 3 },
        { name: 'noise', type: 'numeric' },
      ],
    ],
  ])('matches tfjs with %s', (_name, features) => expectTrainedParity(makeSpec({}, features), 1000));

  it.each<Pooling>(['mean', 'sum', 'max'])(
    'matches tfjs with sequence features (%s pooling, an own and a shared table, empty lists)',
    async (pooling) => {
      const spec = makeSpec({ architecture: 'ple', experts: 2, taskExperts: 1 }, [
        ...mixedFeatures,
        { name: 'genres', type: 'sequence', pooling, maxLength: 5, embeddingDim: 3 },
        { name: 'history', type: 'sequence', pooling, maxLength: 3, sharedEmbedding: 'genre' },
      ]);
      await expectTrainedParity(spec, 1200, ({ sequences: [{ offsets }] }) => {
        expect(offsets.some((o, i) => i > 0 && o === offsets[i - 1])).toBe(true); // empty lists are in the sample
      });
    },
  );

  it('serves ESMM: the joint probability in scores and P(task | parent) in conditional, within 1e-5 of tfjs', async () => {
    // A chain, parents after their children in the spec: fav is conditional on click, like on fav (so its joint is
    // click ∧ fav ∧ like).
    const spec = makeSpec({ architecture: 'ple', levels: 2, experts: 2 }, mixedFeatures, [
      { name: 'like', label: 'like', type: 'binary', conditionalOn: 'fav' },
      ...threeTasks.slice(0, 2),
      { name: 'fav', label: 'fav', type: 'binary', conditionalOn: 'click' },
    ]);
    const model = await trainTiny(spec);
    const scorer = await OnnxScorer.create(model.toOnnx(), spec, model.network.preprocessing);
    try {
      const data = model.encode(rows(spec, 1200, 3, true));
      const onnx = await scorer.score(data, { gateWeights: true });
      expectParity(spec, onnx, await new TfjsScorer(model).score(data, { gateWeights: true }));
      const [like, fav] = onnx.conditional!;
      const [jointLike, click, , jointFav] = onnx.scores;
      jointFav.forEach((p, i) => expect(p).toBeCloseTo(click[i] * fav[i], 6));
      jointLike.forEach((p, i) => expect(p).toBeCloseTo(jointFav[i] * like[i], 6));
    } finally {
      await scorer.dispose();
      model.dispose();
    }
  });

  it.each<[string, Partial<ModelSpecInput['model']>, ModelSpecInput['tasks']]>([
    ['mmoe', { towerUnits: [8], relationUnits: [6, 4] }, funnelTasks],
    ['ple, no tower layer', { architecture: 'ple', experts: 2, towerUnits: [] }, funnelTasks],
    [
      'omoe, a chain of two AITM steps',
      { architecture: 'omoe', expertUnits: [12, 8] },
      [
        { name: 'like', label: 'like', type: 'binary', dependsOn: 'fav' },
        { name: 'click', label: 'click', type: 'binary' },
        { name: 'fav', label: 'fav', type: 'binary', dependsOn: 'click' },
      ],
    ],
  ])(
    'serves AITM steps and DBMTL relations (%s): P(step | previous) in conditional, within 1e-5 of tfjs',
    async (_name, model, tasks) => {
      const spec = makeSpec(model, mixedFeatures, tasks);
      const trained = await trainTiny(spec);
      const scorer = await OnnxScorer.create(trained.toOnnx(), spec, trained.network.preprocessing);
      try {
        const data = trained.encode(rows(spec, 1200, 3, true));
        const onnx = await scorer.score(data, { gateWeights: true });
        expectParity(spec, onnx, await new TfjsScorer(trained).score(data, { gateWeights: true }));
        const [like, fav] = ['like', 'fav'].map((name) => spec.tasks.findIndex((t) => t.name === name));
        const likeGivenFav = onnx.conditional![conditionalTasks(spec.tasks).indexOf(like)];
        // P(like | fav) · P(fav) = P(like), capped at P(fav); checked as a product, not a ratio: ORT's Sigmoid is
        // accurate to ~2e-8 absolute (a score of 4.8e-8 comes out 3e-8), which a ratio over a P(fav) of 3e-4 inflates.
        onnx.scores[like].forEach((p, i) =>
          expect(likeGivenFav[i] * onnx.scores[fav][i]).toBeCloseTo(Math.min(p, onnx.scores[fav][i]), 6),
        );
        // The worker checks every trained version's int8 graph: the transfer and relation layers quantise too.
        const source = { spec, preprocessing: trained.network.preprocessing, weights: trained.network.snapshot() };
        expect((await checkInt8(source, data))?.maxAucDrop).toEqual(expect.any(Number));
      } finally {
        await scorer.dispose();
        trained.dispose();
      }
    },
  );

  it('breaks top-k ties by the lower expert index, as tfjs does', async () => {
    const spec = makeSpec({ gate: { type: 'noisy-top-k', k: 2 } });
    const model = await trainTiny(spec);
    const weights = model.network.snapshot();
    for (const [name, values] of weights) if (/^gates\/\d+\/(kernel|bias)$/.test(name)) values.fill(0);
    model.network.restore(weights);
    const scorer = await OnnxScorer.create(model.toOnnx(), spec, model.network.preprocessing);
    try {
      const data = model.encode(rows(spec, 50, 4, true));
      const result = await scorer.score(data, { gateWeights: true });
      expectParity(spec, result, await new TfjsScorer(model).score(data, { gateWeights: true }));
      expect(Array.from(result.gateWeights![0].subarray(0, 4))).toEqual([0.5, 0.5, 0, 0]);
    } finally {
      await scorer.dispose();
      model.dispose();
    }
  });

  describe('lifecycle', () => {
    const spec = makeSpec({ expertUnits: [8] });
    let model: MultiTaskModel;
    let bytes: Uint8Array;
    let data: EncodedDataset;

    beforeAll(async () => {
      model = await trainTiny(spec);
      bytes = model.toOnnx();
      data = model.encode(rows(spec, 300, 5, true));
    });
    afterAll(() => model.dispose());

    it('refuses a model exported for another spec', async () => {
      const { preprocessing } = model.network;
      await expect(
        OnnxScorer.create(bytes, makeSpec({ architecture: 'shared-bottom' }), preprocessing),
      ).rejects.toThrow(
        /does not match the spec: .* outputs \{gates_0: float32\[N, 4\]; gates_1.*, the spec needs .* and \{scores: float32\[N, 3\]\}$/,
      );
      const fewerNumerics = { ...preprocessing, numeric: preprocessing.numeric.slice(1) };
      await expect(OnnxScorer.create(bytes, spec, fewerNumerics)).rejects.toThrow(
        /the spec needs \{.*numeric: float32\[N, 1\]\}/,
      );
    });

    it('refuses rows encoded for another model', async () => {
      const scorer = await OnnxScorer.create(bytes, spec, model.network.preprocessing);
      try {
        await expect(
          scorer.score({ ...data, numericWidth: 3, numeric: new Float32Array(data.size * 3) }),
        ).rejects.toThrow(/expected 2 numeric/);
      } finally {
        await scorer.dispose();
      }
    });

    it('scores no rows to empty columns', async () => {
      const scorer = await OnnxScorer.create(bytes, spec, model.network.preprocessing);
      const empty = model.encode(rows(spec, 0, 6));
      expect(await scorer.score(empty, { gateWeights: true })).toEqual({
        scores: [new Float32Array(0), new Float32Array(0), new Float32Array(0)],
        gateWeights: [new Float32Array(0), new Float32Array(0), new Float32Array(0)],
      });
      await scorer.dispose();
    });

    it('takes the intra-op thread count, and rejects a bad one or a bad batch size', async () => {
      const scorer = await OnnxScorer.create(bytes, spec, model.network.preprocessing, { intraOpThreads: 2 });
      expectParity(spec, await scorer.score(data), await new TfjsScorer(model).score(data));
      await scorer.dispose();
      await expect(OnnxScorer.create(bytes, spec, model.network.preprocessing, { intraOpThreads: 0 })).rejects.toThrow(
        /intraOpThreads/,
      );
      await expect(OnnxScorer.create(bytes, spec, model.network.preprocessing, { batchSize: 0.5 })).rejects.toThrow(
        /batchSize/,
      );
    });

    it('finishes the runs in flight on dispose, then refuses to score', async () => {
      const scorer = await OnnxScorer.create(bytes, spec, model.network.preprocessing, { batchSize: 50 });
      const inFlight = scorer.score(data);
      await scorer.dispose();
      expect((await inFlight).scores[0]).toHaveLength(data.size);
      await expect(scorer.score(data)).rejects.toThrow(/disposed/);
      await scorer.dispose(); // idempotent
    });
  });
});

describe('InferencePool (worker threads)', () => {
  const spec = makeSpec({ towerUnits: [8] });
  let model: MultiTaskModel;
  let bytes: Uint8Array;
  let pool: InferencePool;

  beforeAll(async () => {
    model = await trainTiny(spec);
    bytes = model.toOnnx();
    pool = new InferencePool(2);
  }, 60_000);
  afterAll(async () => {
    await pool.close();
    model.dispose();
  });

  it('matches tfjs over 1,200 rows split across its threads, and over a batch too small to split', async () => {
    const scorer = await pool.load(bytes, spec, model.network.preprocessing);
    try {
      for (const n of [1200, 37]) {
        const data = model.encode(rows(spec, n, 8, true));
        expectParity(
          spec,
          await scorer.score(data, { gateWeights: true }),
          await new TfjsScorer(model).score(data, { gateWeights: true }),
        );
      }
      expect(await scorer.score(model.encode(rows(spec, 0, 6)))).toEqual({
        scores: [new Float32Array(0), new Float32Array(0), new Float32Array(0)],
      });
    } finally {
      await scorer.dispose();
    }
  });

  it('scores a request of 1,200 candidates in the request layout split across its threads, within 1e-5 of tfjs', async () => {
    const sided = makeSpec({ towerUnits: [8] }, sidedFeatures);
    const other = await trainTiny(sided);
    const { preprocessing } = other.network;
    const graph = exportOnnx({ spec: sided, preprocessing, weights: other.network.snapshot() }, 'request');
    const scorer = await pool.load(graph, sided, preprocessing, 'request');
    try {
      const sides = requestSides(sided, preprocessing);
      const request = requestOf(other.encode(rows(sided, 1200, 8, true)), sides, 0, 1200);
      expectParity(
        sided,
        await scorer.scoreRequest(request, { gateWeights: true }),
        await new TfjsScorer(other).score(expandRequest(sides, request), { gateWeights: true }),
      );
      await expect(scorer.scoreRequest({ ...request, categorical: [] })).rejects.toThrow(/does not fit the model/);
    } finally {
      await scorer.dispose();
      other.dispose();
    }
  });

  it('serves two versions side by side; a disposed one finishes its runs in flight, then refuses', async () => {
    const other = await trainTiny(makeSpec({ towerUnits: [8] }, mixedFeatures));
    const first = await pool.load(bytes, spec, model.network.preprocessing);
    const second = await pool.load(other.toOnnx(), spec, other.network.preprocessing);
    try {
      const data = model.encode(rows(spec, 600, 9, true));
      const inFlight = Array.from({ length: 4 }, () => first.score(data));
      await first.dispose();
      const expected = await new TfjsScorer(model).score(data);
      for (const result of await Promise.all(inFlight)) expectParity(spec, result, expected);
      await expect(first.score(data)).rejects.toThrow(/disposed/);
      expectParity(spec, await second.score(data), await new TfjsScorer(other).score(data));
    } finally {
      await second.dispose();
      other.dispose();
    }
  });

  it('drops a run whose deadline passed before a thread could start it: nothing is computed', async () => {
    const scorer = await pool.load(bytes, spec, model.network.preprocessing);
    try {
      const data = model.encode(rows(spec, 300, 4));
      const before = pool.stats();
      await expect(scorer.score(data, { deadline: performance.now() - 1 })).rejects.toThrow(DeadlineExpiredError);
      expect(pool.stats()).toMatchObject({ runs: before.runs, rows: before.rows, expired: before.expired + 1 });
      expectParity(
        spec,
        await scorer.score(data, { deadline: performance.now() + 60_000 }),
        await new TfjsScorer(model).score(data),
      );
      expect(pool.stats()).toMatchObject({
        runs: before.runs + 1,
        rows: before.rows + 300,
        expired: before.expired + 1,
      });
    } finally {
      await scorer.dispose();
    }
  });

  it('drops a run that waited, before starting it, when its measured pass would end after its deadline', async () => {
    const scorer = await pool.load(bytes, spec, model.network.preprocessing);
    try {
      const small = model.encode(rows(spec, 600, 4));
      await scorer.score(small);
      await scorer.score(small);
      const { passMs } = scorer.estimate(600)!;
      const large = model.encode(rows(spec, 6000, 5));
      // Both threads busy with a pass each; the large run waits for one, and its own pass (10 of those) cannot end
      // within 5 of them, though the deadline has not passed when a thread is free.
      const busy = [scorer.score(small), scorer.score(small)];
      const before = pool.stats();
      const late = scorer.score(large, { deadline: performance.now() + 5 * passMs });
      await expect(late).rejects.toThrow(DeadlineExpiredError);
      await Promise.all(busy);
      expect(pool.stats()).toMatchObject({ runs: before.runs, rows: before.rows, expired: before.expired + 1 });
    } finally {
      await scorer.dispose();
    }
  });

  it('starts a run that finds a thread idle even when its measured pass is longer than its deadline', async () => {
    const scorer = await pool.load(bytes, spec, model.network.preprocessing);
    try {
      const data = model.encode(rows(spec, 300, 4));
      await scorer.score(data);
      const { passMs } = scorer.estimate(300)!;
      // Only a pass that runs corrects an estimate grown too long (a busy machine): it is not dropped unless waiting.
      expectParity(
        spec,
        await scorer.score(data, { deadline: performance.now() + passMs / 2 }),
        await new TfjsScorer(model).score(data),
      );
    } finally {
      await scorer.dispose();
    }
  });

  it('starts a run that waited while every thread was busy with a load or a release', async () => {
    const scorer = await pool.load(bytes, spec, model.network.preprocessing);
    try {
      const data = model.encode(rows(spec, 40, 6));
      const released = pool.release(987_654); // a release message on every thread: none of them is idle
      const waited = scorer.score(data);
      await released;
      expectParity(spec, await waited, await new TfjsScorer(model).score(data));
    } finally {
      await scorer.dispose();
    }
  });

  it('expects a new run to wait for the work queued ahead of it, from the passes it timed', async () => {
    const scorer = await pool.load(bytes, spec, model.network.preprocessing);
    try {
      const data = model.encode(rows(spec, 600, 5));
      await scorer.score(data);
      const { waitMs, passMs } = scorer.estimate(600)!;
      expect([waitMs, passMs > 0]).toEqual([0, true]);
      // Two runs take the two idle threads, two more wait: a new run would wait for those two, shared by the two
      // threads (at least one pass), and for what is left of the two running.
      const runs = Array.from({ length: 4 }, () => scorer.score(data));
      expect(scorer.estimate(600)!.waitMs).toBeGreaterThanOrEqual(passMs);
      await Promise.all(runs);
      expect(pool.stats().backlogMs).toBe(0);
    } finally {
      await scorer.dispose();
    }
  });

  it('prices a new session by the pass measured last, and a loading thread as busy, until they are measured', async () => {
    const single = new InferencePool(1);
    const first = await single.load(bytes, spec, model.network.preprocessing);
    try {
      const data = model.encode(rows(spec, 600, 5));
      expect(first.estimate(600)).toBeUndefined();
      await first.score(data);
      const { passMs } = first.estimate(600)!;
      // The next version, loading: the one thread is busy with it for about as long as the first load took.
      const loading = single.load(bytes, spec, model.network.preprocessing);
      expect(first.estimate(600)!.waitMs).toBeGreaterThan(0);
      const second = await loading;
      try {
        // Before its first pass, the new session's runs cost what the last measured pass did, not nothing.
        expect(second.estimate(600)).toEqual({ waitMs: 0, passMs });
        const queued = [second.score(data), second.score(data)];
        expect(second.estimate(600)!.waitMs).toBeGreaterThanOrEqual(passMs);
        await Promise.all(queued);
      } finally {
        await second.dispose();
      }
    } finally {
      await first.dispose();
      await single.close();
    }
  });

  it('prices a run by its return, the wait for this event loop to read its reply included', async () => {
    const scorer = await pool.load(bytes, spec, model.network.preprocessing);
    try {
      const data = model.encode(rows(spec, 600, 5));
      for (let i = 0; i < 3; i++) await scorer.score(data);
      const { passMs } = scorer.estimate(600)!;
      // Ten runs whose replies wait behind 100 ms of this event loop's own work: a thread gets its next run only
      // once its reply is read here, so the queue drains that much slower.
      for (let i = 0; i < 10; i++) {
        const run = scorer.score(data);
        const until = performance.now() + 100;
        while (performance.now() < until);
        await run;
      }
      expect(scorer.estimate(600)!.passMs).toBeGreaterThan(Math.max(4 * passMs, 30));
      // And a run that must wait is dropped unless it would come back in time.
      const busy = [scorer.score(data), scorer.score(data)];
      const late = scorer.score(data, { deadline: performance.now() + 30 });
      await expect(late).rejects.toThrow(DeadlineExpiredError);
      await Promise.all(busy);
    } finally {
      await scorer.dispose();
    }
  });

  it('drops a queued run as its deadline passes, not when a thread frees up', async () => {
    const single = new InferencePool(1);
    const scorer = await single.load(bytes, spec, model.network.preprocessing);
    try {
      const small = model.encode(rows(spec, 100, 5));
      await scorer.score(small);
      const large = model.encode(rows(spec, 40_000, 6));
      const startedAt = performance.now();
      const busy = scorer.score(large).then(() => performance.now());
      const late = scorer.score(small, { deadline: performance.now() + 5 }).then(
        () => NaN,
        (e: Error) => (e instanceof DeadlineExpiredError ? performance.now() : NaN),
      );
      const [doneAt, droppedAt] = await Promise.all([busy, late]);
      // Dropped in the first half of the long pass, which the request would otherwise have waited for.
      expect(droppedAt - startedAt).toBeLessThan((doneAt - startedAt) / 2);
      expect(single.stats()).toMatchObject({ runs: 2, expired: 1 });
    } finally {
      await scorer.dispose();
      await single.close();
    }
  });

  it('starts a background run only when no other run waits, and leaves it out of the wait it estimates', async () => {
    const single = new InferencePool(1);
    const scorer = await single.load(bytes, spec, model.network.preprocessing);
    try {
      const data = model.encode(rows(spec, 2_000, 5));
      await scorer.score(data);
      const order: string[] = [];
      const score = (name: string, background?: boolean) =>
        scorer.score(data, { background }).then(() => order.push(name));
      const running = score('served, running');
      const waiting = scorer.estimate(2_000)!.waitMs;
      const shadow = score('background', true);
      expect(scorer.estimate(2_000)!.waitMs).toBeLessThanOrEqual(waiting); // counted, it would add a pass
      const next = score('served, queued after it');
      await Promise.all([running, shadow, next]);
      expect(order).toEqual(['served, running', 'served, queued after it', 'background']);

      // Under load it waits until its deadline drops it.
      const served = Array.from({ length: 3 }, () => scorer.score(data));
      const { expired } = single.stats();
      const dropped = scorer.score(data, { background: true, deadline: performance.now() + 1 });
      await expect(dropped).rejects.toThrow(DeadlineExpiredError);
      await Promise.all(served);
      expect(single.stats().expired).toBe(expired); // served runs' drops only: the shadow counts its own
    } finally {
      await scorer.dispose();
      await single.close();
    }
  });

  it('refuses a graph exported for another spec, and loads nothing', async () => {
    await expect(
      pool.load(bytes, makeSpec({ architecture: 'shared-bottom' }), model.network.preprocessing),
    ).rejects.toThrow(/does not match the spec/);
    await expect(pool.load(new Uint8Array([1, 2, 3]), spec, model.network.preprocessing)).rejects.toThrow();
  });
});
