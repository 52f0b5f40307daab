import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { loadModelSpec, parseModelSpec, SpecValidationError } from './model-spec';
import { lossBalancingOf } from './model-spec.schema';

const EXAMPLES = join(__dirname, '../../../../examples');

const valid = {
  features: [
    { name: 'age', type: 'numeric' },
    { name: 'education', type: 'categorical', embeddingDim: 8 },
    { name: 'user_id', type: 'categorical', hashBuckets: 100000, embeddingDim: 16 },
  ],
  tasks: [
    { name: 'income', label: 'label_income_50k', type: 'binary', weight: 1 },
    { name: 'watch_time', label: 'secs', type: 'regression' },
  ],
  model: { architecture: 'mmoe', experts: 8, expertUnits: [16], towerUnits: [8], gate: { type: 'softmax' } },
  training: { epochs: 20, batchSize: 512, learningRate: 0.001, seed: 1, earlyStoppingPatience: 3 },
};

/** The valid spec with a binary task "cvr" added (keys of its own), and keys added to its first task. */
const withTasks = (cvr: Record<string, unknown>, first: Record<string, unknown> = {}) => ({
  ...valid,
  tasks: [{ ...valid.tasks[0], ...first }, valid.tasks[1], { name: 'cvr', label: 'converted', type: 'binary', ...cvr }],
});

const problemsOf = (input: unknown) => {
  try {
    parseModelSpec(input);
  } catch (e) {
    expect(e).toBeInstanceOf(SpecValidationError);
    return (e as SpecValidationError).problems;
  }
  throw new Error('spec was accepted');
};

describe('model spec', () => {
  it('accepts the documented example and fills defaults', () => {
    const spec = parseModelSpec(valid);
    expect(spec.tasks[1].weight).toBe(1);
    expect(spec.model.uncertaintyWeighting).toBe(false);
    expect(spec.training.validationFraction).toBe(0.1);
  });

  it.each([
    [{ ...valid, features: [{ name: 'age', type: 'text' }] }, 'features[0].type', 'numeric'],
    [{ ...valid, tasks: [{ name: 't', label: 'y', type: 'ranking' }] }, 'tasks[0].type', 'binary'],
    [{ ...valid, model: { ...valid.model, experts: 0 } }, 'model.experts', 'at least 1'],
    [{ ...valid, model: { ...valid.model, expertUnits: [] } }, 'model.expertUnits', 'at least one layer'],
    [
      { ...valid, model: { ...valid.model, gate: { type: 'noisy-top-k', k: 8 } } },
      'model.gate.k',
      'smaller than the 8 experts',
    ],
    [{ ...valid, model: { ...valid.model, architecture: 'moe' } }, 'model.architecture', 'must be one of'],
    [{ ...valid, training: { ...valid.training, learningRate: -1 } }, 'training.learningRate', '> 0'],
    [{ ...valid, features: [...valid.features, { name: 'age', type: 'numeric' }] }, 'features[3].name', 'already used'],
    [{ ...valid, tasks: [{ name: 'a', label: 'age', type: 'binary' }] }, 'tasks[0].label', 'already used'],
    [{ ...valid, model: { ...valid.model, experts: 2.5 } }, 'model.experts', 'integer'],
    [{ ...valid, extra: 1 }, '(root)', 'extra'],
    [
      { ...valid, features: [{ name: 'age', type: 'numeric', pooling: 'mean' }] },
      'features[0].pooling',
      'only sequence',
    ],
    [
      { ...valid, features: [{ name: 'c', type: 'categorical', maxLength: 5 }] },
      'features[0].maxLength',
      'only sequence',
    ],
    [{ ...valid, features: [{ name: 's', type: 'sequence', pooling: 'avg' }] }, 'features[0].pooling', '"mean"'],
    [{ ...valid, features: [{ name: 's', type: 'sequence', maxLength: 0 }] }, 'features[0].maxLength', 'at least 1'],
    [
      { ...valid, features: [{ name: 's', type: 'sequence', sharedEmbedding: 'item_id' }] },
      'features[0].sharedEmbedding',
      'not a feature',
    ],
    [
      { ...valid, features: [...valid.features, { name: 's', type: 'sequence', sharedEmbedding: 'age' }] },
      'features[3].sharedEmbedding',
      'numeric feature',
    ],
    [
      {
        ...valid,
        features: [...valid.features, { name: 's', type: 'sequence', sharedEmbedding: 'user_id', embeddingDim: 4 }],
      },
      'features[3].embeddingDim',
      'must equal the embeddingDim 16',
    ],
    [
      {
        ...valid,
        features: [...valid.features, { name: 's', type: 'sequence', sharedEmbedding: 'education', hashBuckets: 9 }],
      },
      'features[3].hashBuckets',
      'comes from "education"',
    ],
    [{ ...valid, model: { ...valid.model, architecture: 'ple', levels: 0 } }, 'model.levels', 'at least 1'],
    [{ ...valid, model: { ...valid.model, levels: 2 } }, 'model.levels', 'only "ple" has levels (not "mmoe")'],
    [{ ...valid, model: { ...valid.model, architecture: 'cgc', levels: 2 } }, 'model.levels', 'cgc is one level'],
    [
      { ...valid, features: [{ name: 'c', type: 'categorical', transform: 'log1p' }] },
      'features[0].transform',
      'only numeric',
    ],
    [{ ...valid, features: [{ name: 's', type: 'sequence', buckets: [1, 2] }] }, 'features[0].buckets', 'only numeric'],
    [{ ...valid, features: [{ name: 'x', type: 'numeric', transform: 'log' }] }, 'features[0].transform', '"log1p"'],
    [{ ...valid, features: [{ name: 'x', type: 'numeric', buckets: [] }] }, 'features[0].buckets', 'at least one'],
    [
      { ...valid, features: [{ name: 'x', type: 'numeric', buckets: [1, 3, 3] }] },
      'features[0].buckets[2]',
      'strictly increasing',
    ],
    [
      { ...valid, features: [{ name: 'x', type: 'numeric', buckets: [1, 2, 0] }] },
      'features[0].buckets[2]',
      'strictly',
    ],
    [
      { ...valid, features: [{ name: 'x', type: 'numeric', buckets: [1, 'a'] }] },
      'features[0].buckets[1]',
      'finite number',
    ],
    [
      { ...valid, features: [{ name: 'x', type: 'numeric', buckets: [1, 2], transform: 'log1p' }] },
      'features[0].transform',
      'cannot be combined with buckets',
    ],
    [
      { ...valid, features: [{ name: 'x', type: 'numeric', embeddingDim: 4 }] },
      'features[0].embeddingDim',
      'only bucketised',
    ],
    [{ ...valid, training: { sampleWeight: 'age' } }, 'training.sampleWeight', 'already used by features[0]'],
    [{ ...valid, training: { sampleWeight: 'secs' } }, 'training.sampleWeight', 'already used by tasks[1].label'],
    [{ ...valid, training: { sampleWeight: '' } }, 'training.sampleWeight', 'must not be empty'],
    [{ ...valid, training: { weightedMetrics: true } }, 'training.weightedMetrics', 'needs training.sampleWeight'],
    [withTasks({ conditionalOn: 'purchase' }), 'tasks[2].conditionalOn', '"purchase" is not a task'],
    [withTasks({ conditionalOn: 'watch_time' }), 'tasks[2].conditionalOn', '"watch_time" is a regression task'],
    [withTasks({ conditionalOn: 'cvr' }), 'tasks[2].conditionalOn', 'must name another task'],
    [
      withTasks({ conditionalOn: 'income' }, { conditionalOn: 'cvr' }),
      'tasks[2].conditionalOn',
      'forms a cycle: cvr → income → cvr',
    ],
    [withTasks({ sampleSpace: 'click' }), 'tasks[2].sampleSpace', '"click" is not a task'],
    [withTasks({ sampleSpace: 'watch_time' }), 'tasks[2].sampleSpace', 'regression task'],
    [
      withTasks({ conditionalOn: 'income', sampleSpace: 'income' }),
      'tasks[2].sampleSpace',
      'a conditional task learns over the entire space',
    ],
    [withTasks({ dependsOn: 'purchase' }), 'tasks[2].dependsOn', '"purchase" is not a task'],
    [withTasks({ dependsOn: 'watch_time' }), 'tasks[2].dependsOn', '"watch_time" is a regression task'],
    [withTasks({ dependsOn: 'cvr' }), 'tasks[2].dependsOn', 'must name another task'],
    [withTasks({ dependsOn: 'income', conditionalOn: 'income' }), 'tasks[2].dependsOn', 'choose one'],
    [withTasks({ dependsOn: 'income', sampleSpace: 'income' }), 'tasks[2].sampleSpace', 'over the entire space'],
    [withTasks({ dependsOn: 'income' }, { sampleSpace: 'cvr' }), 'tasks[2].dependsOn', 'learns on its sampleSpace'],
    [withTasks({ calibratorWeight: 1 }), 'tasks[2].calibratorWeight', 'only a task with dependsOn'],
    [withTasks({ dependsOn: 'income', calibratorWeight: -1 }), 'tasks[2].calibratorWeight', '>= 0'],
    [withTasks({ relatedTasks: ['income', 'nope'] }), 'tasks[2].relatedTasks[1]', '"nope" is not a task'],
    [withTasks({ relatedTasks: ['income', 'income'] }), 'tasks[2].relatedTasks[1]', 'listed twice'],
    [withTasks({ relatedTasks: ['cvr'] }), 'tasks[2].relatedTasks[0]', 'must name another task'],
    [withTasks({ relatedTasks: [] }), 'tasks[2].relatedTasks', 'at least one task'],
    [
      withTasks({ relatedTasks: ['income'] }, { relatedTasks: ['cvr'] }),
      'tasks[2].relatedTasks[0]',
      'forms a cycle: cvr → income → cvr',
    ],
    [
      // A cycle through every kind of link: cvr depends on income, which reads watch_time, which reads cvr.
      {
        ...withTasks({ dependsOn: 'income' }, { relatedTasks: ['watch_time'] }),
        tasks: [
          { ...valid.tasks[0], relatedTasks: ['watch_time'] },
          { ...valid.tasks[1], relatedTasks: ['cvr'] },
          { name: 'cvr', label: 'converted', type: 'binary', dependsOn: 'income' },
        ],
      },
      'tasks[1].relatedTasks[0]',
      'forms a cycle: watch_time → cvr → income → watch_time',
    ],
    [
      { ...valid, model: { ...valid.model, relationUnits: [4] } },
      'model.relationUnits',
      'only tasks with relatedTasks',
    ],
    [{ ...valid, training: { lossBalancing: { method: 'magic' } } }, 'training.lossBalancing.method', '"gradnorm"'],
    [
      { ...valid, training: { lossBalancing: { method: 'gradnorm', alpha: -1 } } },
      'training.lossBalancing.alpha',
      '>= 0',
    ],
    [{ ...valid, training: { lossBalancing: { method: 'pcgrad', alpha: 1 } } }, 'training.lossBalancing', 'alpha'],
    [
      { ...valid, tasks: [valid.tasks[0]], training: { lossBalancing: { method: 'pcgrad' } } },
      'training.lossBalancing.method',
      'needs at least two tasks',
    ],
    [
      {
        ...valid,
        model: { ...valid.model, uncertaintyWeighting: true },
        training: { lossBalancing: { method: 'gradnorm' } },
      },
      'model.uncertaintyWeighting',
      'choose one',
    ],
  ])('rejects a bad field and names it (%#)', (input, path, text) => {
    const problems = problemsOf(input);
    const problem = problems.find((p) => p.path === path);
    expect(problem).toBeDefined();
    expect(problem!.message).toContain(text);
  });

  it.each(readdirSync(EXAMPLES).filter((f) => f.endsWith('.spec.json')))('accepts examples/%s', async (file) => {
    await expect(loadModelSpec(join(EXAMPLES, file))).resolves.toBeDefined();
  });

  it('accepts a chain of conditional tasks in any order, and a sample space', () => {
    const spec = parseModelSpec({
      ...valid,
      tasks: [
        { name: 'buy', label: 'bought', type: 'binary', conditionalOn: 'cart' },
        { name: 'click', label: 'clicked', type: 'binary' },
        { name: 'cart', label: 'carted', type: 'binary', conditionalOn: 'click' },
        { name: 'cvr', label: 'converted', type: 'binary', sampleSpace: 'click' },
      ],
    });
    expect(spec.tasks.map((t) => t.conditionalOn)).toEqual(['cart', undefined, 'click', undefined]);
  });

  it('accepts an AITM funnel, task relations and each loss balancing method', () => {
    const funnel = parseModelSpec({
      ...valid,
      tasks: [
        { name: 'buy', label: 'bought', type: 'binary', dependsOn: 'cart', calibratorWeight: 0.3 },
        { name: 'click', label: 'clicked', type: 'binary' },
        { name: 'cart', label: 'carted', type: 'binary', dependsOn: 'click' },
        { name: 'dwell', label: 'secs', type: 'regression', relatedTasks: ['buy', 'click'] },
      ],
      model: { ...valid.model, relationUnits: [8] },
    });
    expect(funnel.tasks.map((t) => t.dependsOn)).toEqual(['cart', undefined, 'click', undefined]);
    expect(lossBalancingOf(funnel)).toEqual({ method: 'fixed' });
    for (const method of ['fixed', 'uncertainty', 'pcgrad'] as const)
      expect(lossBalancingOf(parseModelSpec({ ...valid, training: { lossBalancing: { method } } }))).toEqual({
        method,
      });
    expect(parseModelSpec({ ...valid, training: { lossBalancing: { method: 'gradnorm' } } }).training).toMatchObject({
      lossBalancing: { method: 'gradnorm', alpha: 1.5 },
    });
    // The spelling from before lossBalancing.
    const older = parseModelSpec({ ...valid, model: { ...valid.model, uncertaintyWeighting: true } });
    expect(lossBalancingOf(older)).toEqual({ method: 'uncertainty' });
  });

  it('lists the first 50 problems and counts the rest', () => {
    const features = Array.from({ length: 61 }, () => ({ name: 'same', type: 'numeric' }));
    const error = (() => {
      try {
        parseModelSpec({ ...valid, features });
      } catch (e) {
        return e as SpecValidationError;
      }
    })()!;
    expect(error.problems.length).toBeGreaterThan(50);
    expect(error.message.split('\n').filter((line) => line.startsWith('  - '))).toHaveLength(50);
    expect(error.message).toMatch(new RegExp(`… and ${error.problems.length - 50} more$`));
  });

  it('refuses a name that is a built-in object property, which no request could carry as a key', () => {
    const problems = problemsOf({ ...valid, features: [...valid.features, { name: 'toString', type: 'numeric' }] });
    expect(problems).toEqual([
      expect.objectContaining({
        path: 'features[3].name',
        message: 'must not be a built-in object property name (constructor, toString …)',
      }),
    ]);
  });

  it('bounds what makes a spec unusable: one MMoE expert, counts of features and tasks, gate extremes', () => {
    expect(problemsOf({ ...valid, model: { ...valid.model, experts: 1 } })).toEqual([
      expect.objectContaining({
        path: 'model.experts',
        message: 'mmoe mixes at least 2 experts (one expert is "shared-bottom")',
      }),
    ]);
    expect(() =>
      parseModelSpec({ ...valid, model: { ...valid.model, architecture: 'ple', experts: 1 } }),
    ).not.toThrow();
    const features = Array.from({ length: 5001 }, (_, i) => ({ name: `f${i}`, type: 'numeric' }));
    expect(problemsOf({ ...valid, features }).map((p) => p.path)).toEqual(['features']);
    const tasks = Array.from({ length: 65 }, (_, i) => ({ name: `t${i}`, label: `l${i}`, type: 'binary' }));
    expect(problemsOf({ ...valid, tasks }).map((p) => p.path)).toEqual(['tasks']);
    const gate = (g: Record<string, unknown>) => problemsOf({ ...valid, model: { ...valid.model, gate: g } });
    expect(gate({ type: 'softmax', temperature: 1e-300 }).map((p) => p.path)).toEqual(['model.gate.temperature']);
    expect(() =>
      parseModelSpec({ ...valid, model: { ...valid.model, gate: { type: 'softmax', temperature: 1e-7 } } }),
    ).not.toThrow();
    expect(gate({ type: 'noisy-top-k', k: 2, balanceLossWeight: 1e308 }).map((p) => p.path)).toEqual([
      'model.gate.balanceLossWeight',
    ]);
  });

  it('refuses a separator Postgres cannot store: a NUL or a lone surrogate', () => {
    const withSeparator = (separator: string) => ({
      ...valid,
      features: [...valid.features, { name: 'genres', type: 'sequence', separator }],
    });
    for (const separator of ['\u0000', '\ud800', 'a\udc00'])
      expect(problemsOf(withSeparator(separator))).toEqual([
        expect.objectContaining({ path: 'features[3].separator', message: 'must not hold a NUL or a lone surrogate' }),
      ]);
    for (const separator of [';', '\t', '😀']) expect(() => parseModelSpec(withSeparator(separator))).not.toThrow();
  });

  it('names a task name given twice, judging links to it by its first task', () => {
    const tasks = [
      { name: 'click', label: 'c', type: 'binary' },
      { name: 'conv', label: 'v', type: 'binary', conditionalOn: 'click' },
      { name: 'click', label: 'w', type: 'regression' },
    ];
    expect(problemsOf({ ...valid, tasks })).toEqual([
      expect.objectContaining({ path: 'tasks[2].name', message: 'duplicate task name "click"' }),
    ]);
  });

  it('reports every problem at once', () => {
    const problems = problemsOf({ features: [], tasks: [], model: {} });
    expect(problems.map((p) => p.path).sort()).toEqual(['features', 'model.expertUnits', 'tasks']);
  });

  it('names the file when loading a broken one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spec-'));
    writeFileSync(join(dir, 'bad.json'), '{"features": [');
    await expect(loadModelSpec(join(dir, 'bad.json'))).rejects.toThrow(
      `${join(dir, 'bad.json')}:1, column 15: not valid JSON (Unexpected end of JSON input)`,
    );
    writeFileSync(join(dir, 'lines.json'), '{\n  "features": [],\n  tasks: []\n}');
    await expect(loadModelSpec(join(dir, 'lines.json'))).rejects.toThrow(
      `${join(dir, 'lines.json')}:3, column 3: not valid JSON (Expected double-quoted property name)`,
    );
    // V8 names an unexpected token without its place: found by the parse of the shortest prefix that fails.
    writeFileSync(join(dir, 'nan.json'), '{\n  "features": [],\n  "tasks": NaN\n}');
    await expect(loadModelSpec(join(dir, 'nan.json'))).rejects.toThrow(
      `${join(dir, 'nan.json')}:3, column 12: not valid JSON (Unexpected token 'N')`,
    );
    writeFileSync(join(dir, 'csv.json'), 'user,item,click\n');
    await expect(loadModelSpec(join(dir, 'csv.json'))).rejects.toThrow(
      `${join(dir, 'csv.json')}:1, column 1: not valid JSON (Unexpected token 'u')`,
    );
    writeFileSync(join(dir, 'quote.json'), "{'a': 1}");
    await expect(loadModelSpec(join(dir, 'quote.json'))).rejects.toThrow(
      `${join(dir, 'quote.json')}:1, column 2: not valid JSON (Expected property name or '}')`,
    );
    writeFileSync(join(dir, 'tru.json'), '{"a": tru}');
    await expect(loadModelSpec(join(dir, 'tru.json'))).rejects.toThrow(
      `${join(dir, 'tru.json')}:1, column 10: not valid JSON (Unexpected token '}')`,
    );
    writeFileSync(join(dir, 'latin1.json'), Buffer.from('{"features": "caf\xe9"}', 'latin1'));
    await expect(loadModelSpec(join(dir, 'latin1.json'))).rejects.toThrow(
      `${join(dir, 'latin1.json')}: not valid UTF-8 (byte 18 of the file)`,
    );
    writeFileSync(join(dir, 'invalid.json'), JSON.stringify({ ...valid, model: { ...valid.model, experts: -1 } }));
    await expect(loadModelSpec(join(dir, 'invalid.json'))).rejects.toThrow(
      /invalid\.json: Invalid model spec:\n {2}- model\.experts/,
    );
    await expect(loadModelSpec(dir)).rejects.toThrow(`${dir}: cannot read the spec (EISDIR`);
    writeFileSync(join(dir, 'bom.json'), `\uFEFF${JSON.stringify(valid)}`);
    // As Windows editors save "Unicode" text: UTF-16 after a byte order mark, either byte order.
    const utf16le = Buffer.from(`\uFEFF${JSON.stringify(valid)}`, 'utf16le');
    writeFileSync(join(dir, 'utf16le.json'), utf16le);
    writeFileSync(join(dir, 'utf16be.json'), Buffer.from(utf16le).swap16());
    for (const file of ['bom.json', 'utf16le.json', 'utf16be.json'])
      await expect(loadModelSpec(join(dir, file))).resolves.toMatchObject({
        tasks: [{ name: 'income' }, { name: 'watch_time' }],
      });
    writeFileSync(join(dir, 'odd.json'), Buffer.concat([utf16le, Buffer.from([0x7b])]));
    await expect(loadModelSpec(join(dir, 'odd.json'))).rejects.toThrow(
      `${join(dir, 'odd.json')}: not valid UTF-16 (byte ${utf16le.length + 1} of the file)`,
    );
  });
});

describe('event-fed sequence features', () => {
  const specWith = (feature: Record<string, unknown>) => ({
    features: [{ name: 'item_id', type: 'categorical' }, feature],
    tasks: [{ name: 'click', label: 'clicked', type: 'binary' }],
    model: { expertUnits: [4] },
  });

  it('accepts a user-side list fed by a task', () => {
    const spec = parseModelSpec(
      specWith({
        name: 'user_recent_clicks',
        type: 'sequence',
        sharedEmbedding: 'item_id',
        fromEvents: { task: 'click' },
      }),
    );
    expect(spec.features[1]).toMatchObject({ fromEvents: { task: 'click' }, maxLength: 50 });
  });

  it('names each problem: an item-side feature, an unknown task, a feature that is not a sequence', () => {
    const problems = (feature: Record<string, unknown>) => {
      try {
        parseModelSpec(specWith(feature));
      } catch (e) {
        return (e as SpecValidationError).problems;
      }
      return [];
    };
    expect(problems({ name: 'recent_clicks', type: 'sequence', fromEvents: { task: 'clicked' } })).toEqual([
      {
        path: 'features[1].fromEvents',
        message:
          'only a user-side feature can be fed by events (this one is item-side: name it user_… or set side "user")',
      },
      {
        path: 'features[1].fromEvents.task',
        message: '"clicked" is not a task of this spec; name the task whose positive labels feed the list',
      },
    ]);
    expect(problems({ name: 'user_clicks', type: 'categorical', fromEvents: { task: 'click' } })).toEqual([
      { path: 'features[1].fromEvents', message: 'only sequence features are fed by events' },
    ]);
  });

  it("accepts a list of the clicked items' values of an item-side categorical feature, and names any other", () => {
    const fed = (itemFeature: string) => ({
      features: [
        { name: 'item_id', type: 'categorical' },
        { name: 'item_price', type: 'numeric' },
        { name: 'user_country', type: 'categorical' },
        { name: 'user_recent_ids', type: 'sequence', fromEvents: { task: 'click', itemFeature } },
      ],
      tasks: [{ name: 'click', label: 'clicked', type: 'binary' }],
      model: { expertUnits: [4] },
    });
    expect(parseModelSpec(fed('item_id')).features[3]).toMatchObject({
      fromEvents: { task: 'click', itemFeature: 'item_id' },
    });
    const path = 'features[3].fromEvents.itemFeature';
    const named = (what: string) =>
      `${what}; name an item-side categorical feature, whose value for the event's item is appended`;
    expect(problemsOf(fed('item_genre'))).toEqual([
      { path, message: named('"item_genre" is not a feature of this spec') },
    ]);
    expect(problemsOf(fed('item_price'))).toEqual([{ path, message: named('"item_price" is a numeric feature') }]);
    expect(problemsOf(fed('user_country'))).toEqual([{ path, message: named('"user_country" is user-side') }]);
  });
});

describe('attention pooling', () => {
  const specWith = (...features: Record<string, unknown>[]) => ({
    features: [
      { name: 'item_id', type: 'categorical', embeddingDim: 6 },
      { name: 'item_price', type: 'numeric' },
      ...features,
    ],
    tasks: [{ name: 'click', label: 'clicked', type: 'binary' }],
    model: { expertUnits: [4] },
  });
  const history = { name: 'user_history', type: 'sequence', pooling: 'attention', target: 'item_id' };

  it("reads the list in the target's table unless told otherwise, with one hidden layer of 16 by default", () => {
    const spec = parseModelSpec(specWith(history, { ...history, name: 'user_likes', sharedEmbedding: 'item_id' }));
    expect(spec.features.slice(2)).toMatchObject([
      { name: 'user_history', pooling: 'attention', target: 'item_id', sharedEmbedding: 'item_id' },
      { name: 'user_likes', pooling: 'attention', target: 'item_id', sharedEmbedding: 'item_id' },
    ]);
    expect(spec.features[2]).not.toHaveProperty('attentionUnits');
    // Parsing the parsed spec (an artifact's) gives it back unchanged.
    expect(parseModelSpec(JSON.parse(JSON.stringify(spec)))).toEqual(spec);
  });

  it.each([
    [{ ...history, target: undefined }, 'features[2].target', 'attention pooling needs a target'],
    [{ ...history, target: 'item_price' }, 'features[2].target', '"item_price" is a numeric feature'],
    [{ ...history, target: 'item_genre' }, 'features[2].target', '"item_genre" is not a feature of this spec'],
    [{ ...history, target: 'user_history' }, 'features[2].target', 'is a sequence feature; name a categorical'],
    [{ ...history, sharedEmbedding: 'user_country' }, 'features[2].sharedEmbedding', 'must be the target "item_id"'],
    [{ ...history, embeddingDim: 4 }, 'features[2].embeddingDim', 'must equal the embeddingDim 6 of "item_id"'],
    [{ ...history, hashBuckets: 10 }, 'features[2].hashBuckets', 'comes from "item_id", whose table it shares'],
    [{ ...history, attentionUnits: [] }, 'features[2].attentionUnits', 'at least one layer'],
    [{ ...history, pooling: 'mean' }, 'features[2].target', 'only attention pooling has it'],
    [{ ...history, pooling: 'sum', attentionUnits: [8] }, 'features[2].attentionUnits', 'only attention pooling'],
    [{ name: 'item_price_2', type: 'numeric', target: 'item_id' }, 'features[2].target', 'only sequence features'],
  ])('names the field of a bad attention pooling (%#)', (feature, path, message) => {
    expect(problemsOf(specWith(feature))).toEqual(
      expect.arrayContaining([{ path, message: expect.stringContaining(message) }]),
    );
  });
});
