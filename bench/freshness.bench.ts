/**
 * How fresh models and fresh features pay, on the synthetic world with drift (libs/mmoe/src/synthetic): genres rise
 * and fade over the days, part of the catalogue is released along the way (ids a model trained earlier has never
 * seen), and each user has a genre of the moment that comes and goes within hours. One run, several simulated days:
 *
 *   - strategies: the first model left stale; a daily full retrain (fresh initialisation, the last `window` days,
 *     several epochs with early stopping); a warm start every `period` hours from the previous model, one epoch over
 *     the period's events plus `replay` times as many older events from the window;
 *   - features: none beyond the profile; the user's last clicks written nightly (as of the start of each day); the
 *     same list fed by events (as of each impression, which is what the API serves with `fromEvents`);
 *   - next-period AUC per task (each model scores only events after its data), training cost (examples processed,
 *     wall time) over the evaluated days, and paired DeLong tests of the differences that the targets are about.
 *
 * With `--db URL` (a database whose name starts with "bench": its events and features are replaced), it also measures
 * what training from events pays to see the lists as serving saw them: the worker's point-in-time rebuild of each
 * row's event-fed list (EventRepository.readTrainingRows) against reading the stored features, checked against the
 * lists computed here, beside what logging the served user features with each prediction would store instead.
 *
 *   npm run bench:freshness -- [--quick] [--days 7] [--initial-days 3] [--period-hours 4] [--window-days 3]
 *     [--per-day 20000] [--users 800] [--items 1200] [--interest-hours 6] [--list-length 3] [--epochs 8] [--replay 0.2] [--seed 1]
 *     [--db postgres://…/bench_h1] [--skip-strategies]
 */
import { DataSource } from 'typeorm';

import { loadConfig } from '@app/config';
import { dataSourceOptions, EventRepository, FeatureRepository, ReadReplica } from '@app/db';
import {
  auc,
  delongPaired,
  generateInteractions,
  initBackend,
  interactionsToRecords,
  MultiTaskModel,
  parseModelSpec,
  RawTable,
  type InteractionData,
  type InteractionFeatureValues,
  type ModelSpec,
  type ModelSpecInput,
} from '@app/mmoe';

import {
  cpuModel,
  flagValue,
  formatCount,
  formatRatio,
  hasFlag,
  log,
  markdownTable,
  positiveIntFlag,
} from './bench.util';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const START = Date.parse('2026-03-02T00:00:00Z');
const LIST = 'user_recent_clicks';
const BINARY_TASKS = ['click', 'like'] as const;

const quick = hasFlag('quick');
const plan = {
  days: positiveIntFlag('days', quick ? 5 : 7),
  initialDays: positiveIntFlag('initial-days', quick ? 2 : 3),
  periodHours: positiveIntFlag('period-hours', quick ? 6 : 4),
  windowDays: positiveIntFlag('window-days', quick ? 2 : 3),
  perDay: positiveIntFlag('per-day', quick ? 10_000 : 20_000),
  users: positiveIntFlag('users', quick ? 500 : 800),
  items: positiveIntFlag('items', quick ? 600 : 1200),
  interestHours: positiveIntFlag('interest-hours', 6),
  /** The user list's maxLength: short, so that mean pooling weighs the last clicks (where the interest of the moment shows). */
  listLength: positiveIntFlag('list-length', 3),
  epochs: positiveIntFlag('epochs', 8),
  replay: Number(flagValue('replay') ?? 0.2),
  seed: positiveIntFlag('seed', 1),
};
if (!(plan.replay >= 0 && plan.replay <= 1)) throw new Error(`--replay must be in [0, 1] (got ${plan.replay})`);
if (plan.initialDays >= plan.days) throw new Error('--initial-days must be below --days');
if (plan.windowDays > plan.initialDays) throw new Error('--window-days must not exceed --initial-days');
if (DAY_MS % (plan.periodHours * HOUR_MS) !== 0) throw new Error('--period-hours must divide a day');

type Variant = 'none' | 'nightly' | 'event-fed';
const VARIANTS: Variant[] = ['none', 'nightly', 'event-fed'];
type Strategy = 'stale' | 'daily full' | 'incremental';
const STRATEGIES: Strategy[] = ['stale', 'daily full', 'incremental'];

/** The example spec's features and tasks, with a list of the user's last clicks (sharing item_id's table) or not. */
function specOf(variant: Variant, epochs: number): ModelSpec {
  const features: ModelSpecInput['features'] = [
    { name: 'user_country', type: 'categorical', embeddingDim: 4 },
    { name: 'user_age', type: 'numeric' },
    { name: 'user_device', type: 'categorical', embeddingDim: 4 },
    { name: 'user_activity', type: 'numeric' },
    { name: 'user_recent_items', type: 'sequence', maxLength: 20, sharedEmbedding: 'item_id' },
    { name: 'item_id', type: 'categorical', embeddingDim: 8, minCount: 2 },
    { name: 'item_genre', type: 'categorical', embeddingDim: 8 },
    { name: 'item_length_min', type: 'numeric' },
    { name: 'item_price', type: 'numeric' },
    { name: 'item_age_days', type: 'numeric' },
    { name: 'item_popularity', type: 'numeric' },
  ];
  if (variant !== 'none')
    features.push({ name: LIST, type: 'sequence', maxLength: plan.listLength, sharedEmbedding: 'item_id' });
  return parseModelSpec({
    features,
    tasks: [
      { name: 'click', label: 'click', type: 'binary' },
      { name: 'like', label: 'like', type: 'binary', weight: 0.5 },
      { name: 'watch_time', label: 'watch_time', type: 'regression', weight: 0.2 },
    ],
    model: { architecture: 'mmoe', experts: 4, expertUnits: [32], towerUnits: [16] },
    training: { epochs, batchSize: 512, learningRate: 0.003, seed: plan.seed, earlyStoppingPatience: 2 },
  });
}

/**
 * Each event's record, with the user's last clicks as of the event (strictly earlier clicks: what an event-fed list
 * holds when the impression is scored) and as of the start of its day (a list written by a nightly job).
 */
function recordsOf(data: InteractionData): { records: InteractionFeatureValues[][]; times: number[] } {
  const base = [...interactionsToRecords(data)];
  const clicks = new Map<string, { item: string; at: number }[]>();
  const lastBefore = (user: string, limit: number) => {
    const list = clicks.get(user) ?? [];
    let end = list.length;
    while (end > 0 && list[end - 1].at >= limit) end--;
    return list.slice(Math.max(0, end - plan.listLength), end).map((c) => c.item);
  };
  const withList: Record<Exclude<Variant, 'none'>, InteractionFeatureValues[]> = { nightly: [], 'event-fed': [] };
  data.events.forEach((event, i) => {
    const at = event.occurredAt.getTime();
    withList['event-fed'].push({ ...base[i], [LIST]: lastBefore(event.userId, at) });
    withList.nightly.push({ ...base[i], [LIST]: lastBefore(event.userId, at - ((at - START) % DAY_MS)) });
    if (event.labels.click) {
      let list = clicks.get(event.userId);
      if (!list) clicks.set(event.userId, (list = []));
      list.push({ item: event.itemId, at });
    }
  });
  return {
    records: [base, withList.nightly, withList['event-fed']],
    times: data.events.map((e) => e.occurredAt.getTime()),
  };
}

interface Cost {
  examples: number;
  /** Wall time of MultiTaskModel.train, and the process's CPU time over it (steadier on a shared machine). */
  seconds: number;
  cpuSeconds: number;
  trainings: number;
}

interface Outcome {
  /** Per binary task, the scores of every evaluated event, in event order. */
  scores: Record<string, Float32Array>;
  cost: Cost;
}

class Experiment {
  private readonly first: number;

  constructor(
    private readonly records: InteractionFeatureValues[],
    private readonly times: number[],
  ) {
    this.first = START + plan.initialDays * DAY_MS;
  }

  /** Index of the first event at or after `time`. */
  at(time: number): number {
    let lo = 0;
    let hi = this.times.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.times[mid] < time) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  table(spec: ModelSpec, from: number, to: number, extra: number[] = []): RawTable {
    const table = new RawTable(spec);
    for (const i of extra) table.add(this.records[i]);
    for (let i = this.at(from); i < this.at(to); i++) table.add(this.records[i]);
    return table;
  }

  async train(spec: ModelSpec, table: RawTable, cost: Cost, parent?: MultiTaskModel): Promise<MultiTaskModel> {
    const started = performance.now();
    const cpu = process.cpuUsage();
    const { model, summary } = await MultiTaskModel.train(spec, table, undefined, { parent, threads: 1 });
    const { user, system } = process.cpuUsage(cpu);
    cost.seconds += (performance.now() - started) / 1000;
    cost.cpuSeconds += (user + system) / 1e6;
    const trainRows = table.size - Math.max(1, Math.round(table.size * spec.training.validationFraction));
    cost.examples += summary.epochsRun * trainRows;
    cost.trainings++;
    return model;
  }

  /** Scores the events in [from, to) with `model` into `out` from index `offset`. */
  score(model: MultiTaskModel, spec: ModelSpec, from: number, to: number, out: Record<string, Float32Array>): void {
    const table = this.table(spec, from, to);
    if (table.size === 0) return;
    const { scores } = model.predict(model.encode(table));
    const offset = this.at(from) - this.at(this.first);
    BINARY_TASKS.forEach((task) => out[task].set(scores[spec.tasks.findIndex((t) => t.name === task)], offset));
  }

  evaluated(): number {
    return this.times.length - this.at(this.first);
  }

  /** The stale model, the daily full retrains and the incremental warm starts, all from the same first model. */
  async run(variant: Variant): Promise<Record<Strategy, Outcome>> {
    const full = specOf(variant, plan.epochs);
    const incremental = specOf(variant, 1);
    const outcome = () => ({
      scores: Object.fromEntries(BINARY_TASKS.map((t) => [t, new Float32Array(this.evaluated())])),
      cost: { examples: 0, seconds: 0, cpuSeconds: 0, trainings: 0 },
    });
    const results: Record<Strategy, Outcome> = { stale: outcome(), 'daily full': outcome(), incremental: outcome() };
    const window = plan.windowDays * DAY_MS;
    const period = plan.periodHours * HOUR_MS;
    const initial = await this.train(full, this.table(full, this.first - window, this.first), {
      examples: 0,
      seconds: 0,
      cpuSeconds: 0,
      trainings: 0,
    });
    let daily = initial;
    let warm = initial;
    const end = START + plan.days * DAY_MS;
    for (let t = this.first; t < end; t += period) {
      if (t > this.first && (t - START) % DAY_MS === 0) {
        if (daily !== initial) daily.dispose();
        daily = await this.train(full, this.table(full, t - window, t), results['daily full'].cost);
        log(`  ${variant}: daily retrain at day ${(t - START) / DAY_MS}`);
      }
      if (t > this.first) {
        const from = this.at(t - period);
        const replay = sample(this.at(t - window), from, Math.round(plan.replay * (this.at(t) - from)), t);
        const next = await this.train(
          incremental,
          this.table(incremental, t - period, t, replay),
          results.incremental.cost,
          warm,
        );
        if (warm !== initial) warm.dispose();
        warm = next;
      }
      this.score(initial, full, t, t + period, results.stale.scores);
      this.score(daily, full, t, t + period, results['daily full'].scores);
      this.score(warm, full, t, t + period, results.incremental.scores);
    }
    for (const model of new Set([initial, daily, warm])) model.dispose();
    return results;
  }
}

/** `count` distinct indices of [from, to), drawn with a seed of their own. */
function sample(from: number, to: number, count: number, seed: number): number[] {
  const n = to - from;
  if (count <= 0 || n <= 0) return [];
  let state = (seed ^ plan.seed) >>> 0 || 1;
  const next = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const chosen = new Set<number>();
  while (chosen.size < Math.min(count, n)) chosen.add(from + Math.floor(next() * n));
  return [...chosen].sort((a, b) => a - b);
}

/**
 * The point-in-time rebuild of the event-fed list on Postgres: the world's events stored, then the evaluated days read
 * for training with and without the rebuild (median of 3 reads each), the rebuilt lists compared with `records`'.
 */
async function measureRebuild(url: string, data: InteractionData, records: InteractionFeatureValues[]): Promise<void> {
  if (!new URL(url).pathname.slice(1).startsWith('bench'))
    throw new Error('--db must name a database whose name starts with "bench": its events and features are replaced');
  const dataSource = new DataSource(dataSourceOptions({ DATABASE_URL: url }));
  await dataSource.initialize();
  try {
    await dataSource.runMigrations();
    await dataSource.query('TRUNCATE events, user_features, item_features');
    const features = new FeatureRepository(dataSource);
    // No DATABASE_READ_URL: the rebuild is measured on this database alone.
    const events = new EventRepository(dataSource, features, new ReadReplica(dataSource, loadConfig({})));
    await features.upsert('user', data.users);
    await features.upsert('item', data.items);
    for (let i = 0; i < data.events.length; i += 5000) {
      await events.insertNew(
        data.events
          .slice(i, i + 5000)
          .map((e) => ({ ...e, labels: { ...e.labels }, requestId: null, modelVersionId: null, context: null })),
      );
    }
    await dataSource.query('ANALYZE events');
    const [from, to] = [new Date(START + plan.initialDays * DAY_MS), new Date(START + plan.days * DAY_MS)];
    const feed = { feature: LIST, task: 'click', maxLength: plan.listLength };
    const read = async (feeds: (typeof feed)[]) => {
      const times: number[] = [];
      let rows: Awaited<ReturnType<EventRepository['readTrainingRows']>> = [];
      for (let run = 0; run < 3; run++) {
        const started = performance.now();
        rows = await events.readTrainingRows(from, to, feeds);
        times.push(performance.now() - started);
      }
      return { rows, ms: times.sort((a, b) => a - b)[1] };
    };
    const stored = await read([]);
    const rebuilt = await read([feed]);
    const first = data.events.length - rebuilt.rows.length;
    const same = rebuilt.rows.filter(
      (row, i) => JSON.stringify(row.userFeatures![LIST]) === JSON.stringify(records[first + i][LIST]),
    ).length;
    // The other route: every logged prediction (one row per candidate) carries the user's served features.
    const userBytes =
      records.slice(first).reduce((sum, r) => {
        const user = Object.fromEntries(Object.entries(r).filter(([k]) => k.startsWith('user_')));
        return sum + Buffer.byteLength(JSON.stringify(user));
      }, 0) /
      (records.length - first);
    console.log(
      `\n### Training sees what serving saw: reading ${formatCount(rebuilt.rows.length)} events from Postgres\n`,
    );
    console.log(
      markdownTable(
        ['read', 'median ms', 'rows/s', "lists equal to the bench's"],
        [
          [
            "stored features (today's lists: leak)",
            stored.ms.toFixed(0),
            formatCount((stored.rows.length / stored.ms) * 1000),
            '–',
          ],
          [
            'event-fed list rebuilt as of each event',
            rebuilt.ms.toFixed(0),
            formatCount((rebuilt.rows.length / rebuilt.ms) * 1000),
            `${formatCount(same)} of ${formatCount(rebuilt.rows.length)}`,
          ],
        ],
      ),
    );
    console.log(
      `\nRebuild overhead: ${formatRatio(rebuilt.ms / stored.ms)}× the plain read. The alternative, logging the served user features ` +
        `with each prediction row, would store ${formatCount(userBytes)} bytes of JSON per logged (request, item) row here.`,
    );
  } finally {
    await dataSource.destroy();
  }
}

async function main(): Promise<void> {
  await initBackend('wasm');
  const data = generateInteractions({
    users: plan.users,
    items: plan.items,
    impressions: plan.perDay * plan.days,
    seed: plan.seed,
    start: new Date(START),
    days: plan.days,
    newItems: 0.3,
    sessionInterest: { hours: plan.interestHours, strength: 1.5, browse: 0.3 },
  });
  const { records, times } = recordsOf(data);
  const labels = Object.fromEntries(
    BINARY_TASKS.map((task) => [
      task,
      Float32Array.from(
        data.events.slice(data.events.length - new Experiment(records[0], times).evaluated()),
        (e) => e.labels[task],
      ),
    ]),
  );
  log(
    `${data.events.length} events over ${plan.days} days; first model on days ${plan.initialDays - plan.windowDays}–${plan.initialDays}, evaluated on the next ${plan.days - plan.initialDays}`,
  );

  console.log(`\n## bench:freshness — ${cpuModel()}\n`);
  const db = flagValue('db');
  if (db) await measureRebuild(db, data, records[2]);
  if (hasFlag('skip-strategies')) return;

  const results = {} as Record<Variant, Record<Strategy, Outcome>>;
  for (const [v, variant] of VARIANTS.entries()) {
    log(`variant ${variant}`);
    results[variant] = await new Experiment(records[v], times).run(variant);
  }

  const fullCost = results['event-fed']['daily full'].cost;
  const rows = VARIANTS.flatMap((variant) =>
    STRATEGIES.map((strategy) => {
      const { scores, cost } = results[variant][strategy];
      return [
        variant,
        strategy,
        ...BINARY_TASKS.map((task) => auc(scores[task], labels[task]).toFixed(4)),
        formatCount(cost.examples),
        `${cost.seconds.toFixed(1)} / ${cost.cpuSeconds.toFixed(1)}`,
        strategy === 'stale'
          ? '–'
          : [cost.examples / fullCost.examples, cost.seconds / fullCost.seconds, cost.cpuSeconds / fullCost.cpuSeconds]
              .map(formatRatio)
              .join(' / '),
      ];
    }),
  );
  const versus = (a: [Variant, Strategy], b: [Variant, Strategy]) =>
    BINARY_TASKS.map((task) => {
      const d = delongPaired(results[a[0]][a[1]].scores[task], results[b[0]][b[1]].scores[task], labels[task]);
      return `${task} ${d.difference >= 0 ? '+' : ''}${d.difference.toFixed(4)} ± ${(1.96 * d.standardError).toFixed(4)}`;
    }).join(', ');

  console.log(
    `${formatCount(data.events.length)} impressions over ${plan.days} days (${plan.users} users, ${plan.items} items, 30 % released along the way, session interests of ~${plan.interestHours} h); ` +
      `first model on days ${plan.initialDays - plan.windowDays}–${plan.initialDays}; next-period AUC over days ${plan.initialDays}–${plan.days} ` +
      `(${formatCount(labels.click.length)} impressions). Daily full: fresh initialisation, last ${plan.windowDays} days, ≤ ${plan.epochs} epochs (early stopping). ` +
      `Incremental: warm start every ${plan.periodHours} h, 1 epoch over the period + ${plan.replay} × replay. Cost over the evaluated days; ratio to the event-fed daily full retrain.\n`,
  );
  console.log(
    markdownTable(
      [
        'user list',
        'strategy',
        'click AUC',
        'like AUC',
        'examples',
        'train s (wall / CPU)',
        'cost vs full (examples / wall / CPU)',
      ],
      rows,
    ),
  );
  console.log('\nPaired differences (DeLong, ± 95 %), b − a on the same impressions:\n');
  console.log(
    markdownTable(
      ['a', 'b', 'AUC difference'],
      [
        [
          ['event-fed', 'daily full'],
          ['event-fed', 'incremental'],
        ],
        [
          ['event-fed', 'stale'],
          ['event-fed', 'daily full'],
        ],
        [
          ['event-fed', 'stale'],
          ['event-fed', 'incremental'],
        ],
        [
          ['nightly', 'incremental'],
          ['event-fed', 'incremental'],
        ],
        [
          ['nightly', 'daily full'],
          ['event-fed', 'daily full'],
        ],
        [
          ['none', 'incremental'],
          ['event-fed', 'incremental'],
        ],
      ].map(([a, b]) => [a.join(', '), b.join(', '), versus(a as [Variant, Strategy], b as [Variant, Strategy])]),
    ),
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
