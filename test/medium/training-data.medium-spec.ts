import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestingModule } from '@nestjs/testing';
import { DataSource } from 'typeorm';

import { EventRepository, FeatureRepository, FeaturesRepositoryModule } from '@app/db';
import { parseModelSpec, type RawTable } from '@app/mmoe';

import { CsvFileRepository } from '../../apps/worker/src/training/csv-file.repository';
import { TrainingDataService } from '../../apps/worker/src/training/training-data.service';
import { resolveSource } from '../../apps/worker/src/training/training-job.service';
import { TrainingInputError } from '../../apps/worker/src/training/training.errors';
import { createMediumModule, runToken } from './medium.module';

const spec = (sampleWeight?: string) =>
  parseModelSpec({
    features: [{ name: 'user_id', type: 'categorical' }],
    tasks: [{ name: 'click', label: 'click', type: 'binary' }],
    model: { expertUnits: [4] },
    training: { sampleWeight },
  });

/** The worker's training-data service over the real Postgres, as both suites below use it. */
function trainingDataModule(): ReturnType<typeof createMediumModule> {
  return createMediumModule({
    imports: [FeaturesRepositoryModule],
    providers: [TrainingDataService, CsvFileRepository],
  });
}

describe('TrainingDataService (medium: real Postgres)', () => {
  let moduleRef: TestingModule;
  const token = runToken('training-data');
  // A window of its own, far from any other spec's events.
  const at = (minute: number) => new Date(Date.UTC(1999, 0, 1, 0, minute));

  beforeAll(async () => {
    moduleRef = await trainingDataModule();
  });

  afterAll(async () => {
    await moduleRef.get(DataSource).query(`DELETE FROM events WHERE event_id LIKE $1`, [`${token}-%`]);
    await moduleRef.get(DataSource).query(`DELETE FROM user_features WHERE entity_id LIKE $1`, [`${token}-%`]);
    await moduleRef.get(DataSource).query(`DELETE FROM item_features WHERE entity_id LIKE $1`, [`${token}-%`]);
    await moduleRef.close();
  });

  /** Events `${prefix}-<i>` of users `${user}<i>` at `time(i)`, one per weight, clicked every other one by default. */
  const insertWeighted = (
    prefix: string,
    user: string,
    weights: (number | null)[],
    time: (i: number) => Date,
    labels: (i: number) => Record<string, number> = (i) => ({ click: i % 2 }),
  ) =>
    moduleRef.get(EventRepository).insertNew(
      weights.map((weight, i) => ({
        eventId: `${prefix}-${i}`,
        userId: `${user}${i}`,
        itemId: `i${i}`,
        labels: labels(i),
        requestId: null,
        modelVersionId: null,
        context: null,
        weight,
        occurredAt: time(i),
      })),
    );

  it("gives event-sourced rows the events' weights as the sample weight (none: 1), for production's spec too", async () => {
    await insertWeighted(`${token}`, 'u', [2, null, 0, 0.5, 4, null], at);
    const data = await moduleRef
      .get(TrainingDataService)
      .load(
        { kind: 'events', from: at(0).toISOString(), to: at(6).toISOString() },
        spec('w'),
        spec('importance'),
        0.5,
        undefined,
      );
    expect(Array.from(data.train.weightColumn()!)).toEqual([2, 1, 0]);
    expect(Array.from(data.holdout.weightColumn()!)).toEqual([0.5, 4, 1]);
    expect(Array.from(data.productionHoldout!.weightColumn()!)).toEqual([0.5, 4, 1]);
  });

  it('holds out for both only the events both specs read, and counts the rest as skipped', async () => {
    const when = (minute: number) => new Date(Date.UTC(1997, 0, 1, 0, minute));
    // A like of 2 is no binary label: production's spec cannot read event 4, the candidate's reads no like.
    await insertWeighted(`${token}-both`, `${token}-both-u`, Array(6).fill(null), when, (i) => ({
      click: i % 2,
      like: i === 4 ? 2 : 0,
    }));
    const production = parseModelSpec({
      features: [{ name: 'user_id', type: 'categorical' }],
      tasks: [{ name: 'like', label: 'like', type: 'binary' }],
      model: { expertUnits: [4] },
    });
    const data = await moduleRef
      .get(TrainingDataService)
      .load(
        { kind: 'events', from: when(0).toISOString(), to: when(6).toISOString() },
        spec(),
        production,
        0.5,
        undefined,
      );
    expect([data.holdout.size, data.productionHoldout!.size]).toEqual([2, 2]);
    expect(data.skipped).toBe(1);
  });

  it('sets apart the held-out rows production has not trained on, in both specs, when it trained on some', async () => {
    // A window of its own, before every other one here.
    const early = (minute: number) => new Date(Date.UTC(1998, 0, 1, 0, minute));
    await insertWeighted(`${token}-unseen`, `${token}-unseen-u`, [1, 2, 3, 4, 5, 6], early);
    const load = (productionTrainedTo: string, judged = true) =>
      moduleRef
        .get(TrainingDataService)
        .load(
          { kind: 'events', from: early(0).toISOString(), to: early(6).toISOString() },
          spec('w'),
          judged ? spec('w') : undefined,
          0.5,
          undefined,
          { productionTrainedTo },
        );
    // Held out: the events at minutes 3, 4 and 5; production trained up to 4 (exclusive).
    const data = await load(early(4).toISOString());
    expect(Array.from(data.holdout.weightColumn()!)).toEqual([4, 5, 6]); // the candidate's metrics: the whole slice
    expect(data.unseenByProduction?.trainedTo).toBe(early(4).toISOString());
    expect(Array.from(data.unseenByProduction!.holdout.weightColumn()!)).toEqual([5, 6]);
    expect(Array.from(data.unseenByProduction!.productionHoldout.weightColumn()!)).toEqual([5, 6]);
    // Trained on every held-out row: none is left to compare on.
    const all = await load(early(6).toISOString());
    expect([all.unseenByProduction?.holdout.size, all.unseenByProduction?.productionHoldout.size]).toEqual([0, 0]);
    // Trained on none of them, or no production to judge: nothing set apart, the slice is compared as it is.
    expect((await load(early(3).toISOString())).unseenByProduction).toBeUndefined();
    expect((await load(early(4).toISOString(), false)).unseenByProduction).toBeUndefined();
  });

  it("builds each row's features as scoring does: the event's context, the user's over it, the item's where it fills", async () => {
    const [user, item] = [`${token}-ctx-u`, `${token}-ctx-i`];
    const features = moduleRef.get(FeatureRepository);
    await features.upsert('user', [{ id: user, features: { user_age: 30 } }]);
    // An item's value under a user feature's name, which scoring never reads.
    await features.upsert('item', [{ id: item, features: { user_age: 99, item_price: 2 } }]);
    await moduleRef.get(EventRepository).insertNew(
      [0, 1].map((i) => ({
        eventId: `${token}-ctx-${i}`,
        userId: user,
        itemId: item,
        labels: { click: i },
        requestId: null,
        modelVersionId: null,
        context: { context_hour: 20 + i },
        occurredAt: at(300 + i),
      })),
    );
    const sided = parseModelSpec({
      features: ['user_age', 'context_hour', 'item_price'].map((name) => ({ name, type: 'numeric' as const })),
      tasks: [{ name: 'click', label: 'click', type: 'binary' }],
      model: { expertUnits: [4] },
    });
    const data = await moduleRef.get(TrainingDataService).load(
      { kind: 'events', from: at(300).toISOString(), to: at(302).toISOString() },
      sided,
      // Production reads user_age on the item's side: its held-out rows are assembled its way.
      parseModelSpec({ ...sided, features: [{ name: 'user_age', type: 'numeric', side: 'item' }] }),
      0.5,
      undefined,
    );
    const column = (table: RawTable, name: string) => Array.from(table.numericColumn(name));
    expect(
      [data.train, data.holdout].map((t) => ['user_age', 'context_hour', 'item_price'].map((f) => column(t, f))),
    ).toEqual([
      [[30], [20], [2]],
      [[30], [21], [2]],
    ]);
    expect(column(data.productionHoldout!, 'user_age')).toEqual([99]);
  });

  it("reads a CSV's weight column, and fails a job whose file lacks it instead of training unweighted", async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'training-data-')), 'log.csv');
    const load = () =>
      moduleRef.get(TrainingDataService).load({ kind: 'csv', path: file }, spec('w'), undefined, 0.5, undefined);
    writeFileSync(file, 'user_id,click,w\nu1,1,2\nu2,0,\nu3,1,0.5\nu4,0,3\n');
    const data = await load();
    expect([...data.train.weightColumn()!, ...data.holdout.weightColumn()!]).toEqual([2, 1, 0.5, 3]);
    writeFileSync(file, 'user_id,click\nu1,1\n');
    await expect(load()).rejects.toThrow(
      new TrainingInputError(`${file}: the header lacks "w" (training.sampleWeight)`),
    );
  });

  it("rebuilds an event-fed list as it was when each event occurred: never the row's own click, nor a later one", async () => {
    const [user, other] = [`${token}-u`, `${token}-v`];
    const event = (n: number, userId: string, item: string, click: number, minute: number) => ({
      eventId: `${token}-fed-${n}`,
      userId,
      itemId: item,
      labels: { click },
      requestId: null,
      modelVersionId: null,
      context: null,
      occurredAt: at(100 + minute),
    });
    await moduleRef.get(EventRepository).insertNew([
      event(3, user, 'c', 1, 3),
      event(4, user, 'd', 1, 3), // at the same time as c: not before it, so neither sees the other
      event(5, user, 'e', 1, 4),
      event(6, other, 'x', 1, 0),
    ]);
    // Posted late: the lists go by when events occurred, not by when they arrived.
    await moduleRef.get(EventRepository).insertNew([event(1, user, 'a', 1, 1), event(2, user, 'b', 0, 2)]);
    // The list as serving holds it now (written later than every event): training must not read it.
    // A feature written by PUT keeps no history: its rows read it as stored now (docs/freshness.md: what can leak).
    await moduleRef
      .get(FeatureRepository)
      .upsert('user', [{ id: user, features: { user_recent_clicks: ['e', 'z'], user_clicks_7d: 4 } }]);
    const fedSpec = parseModelSpec({
      features: [
        { name: 'user_id', type: 'categorical' },
        { name: 'user_recent_clicks', type: 'sequence', maxLength: 2, fromEvents: { task: 'click' } },
      ],
      tasks: [{ name: 'click', label: 'click', type: 'binary' }],
      model: { expertUnits: [4] },
    });
    const rows = await moduleRef
      .get(EventRepository)
      .readInSnapshot((reads) =>
        reads.window(at(100), at(110), [{ feature: 'user_recent_clicks', task: 'click', maxLength: 2 }]),
      );
    expect(rows.map((r) => [r.itemId, r.userFeatures!.user_recent_clicks])).toEqual([
      ['x', []],
      ['a', []],
      ['b', ['a']],
      ['c', ['a']],
      ['d', ['a']],
      ['e', ['c', 'd']],
    ]);
    expect(rows.filter((r) => r.userId === user).map((r) => r.userFeatures!.user_clicks_7d)).toEqual([4, 4, 4, 4, 4]);
    // Read once per user, not per event (a 1 MB list times its user's events once ran a worker out of memory): without
    // a list to rebuild, a user's rows share one object.
    const plain = await moduleRef.get(EventRepository).readInSnapshot((reads) => reads.window(at(100), at(110), []));
    const mine = plain.filter((r) => r.userId === user);
    expect(mine).toHaveLength(5);
    expect(new Set(mine.map((r) => r.userFeatures)).size).toBe(1);
    // Through the worker's data service: the rebuilt lists are what the model trains on.
    const data = await moduleRef
      .get(TrainingDataService)
      .load(
        { kind: 'events', from: at(100).toISOString(), to: at(110).toISOString() },
        fedSpec,
        undefined,
        0.2,
        undefined,
      );
    const [lists] = data.train.sequenceColumns();
    const listOf = (r: number) =>
      Array.from(lists.ids.subarray(lists.offsets[r], lists.offsets[r + 1]), (id) => lists.dictionary[id]);
    expect([0, 1, 2, 3, 4].map(listOf)).toEqual([[], [], ['a'], ['a'], ['a']]);
  });

  it("judges production on its own lists: its maxLength, and its source where the candidate's differs", async () => {
    const user = `${token}-p`;
    const item = (name: string) => `${token}-p${name}`;
    await moduleRef.get(FeatureRepository).upsert(
      'item',
      ['1', '2', '3', '4', '5'].map((n) => ({ id: item(n), features: { item_genre: `g${n}` } })),
    );
    await moduleRef.get(EventRepository).insertNew(
      ['1', '2', '3', '4', '5'].map((n, i) => ({
        eventId: `${token}-p-${n}`,
        userId: user,
        itemId: item(n),
        labels: { click: 1 },
        requestId: null,
        modelVersionId: null,
        context: null,
        occurredAt: at(400 + i),
      })),
    );
    const specOf = (recent: number, genres: { itemFeature?: string }) =>
      parseModelSpec({
        features: [
          { name: 'user_recent', type: 'sequence', maxLength: recent, fromEvents: { task: 'click' } },
          { name: 'user_genres', type: 'sequence', maxLength: 3, fromEvents: { task: 'click', ...genres } },
          { name: 'item_genre', type: 'categorical' },
        ],
        tasks: [{ name: 'click', label: 'click', type: 'binary' }],
        model: { expertUnits: [4] },
      });
    // The candidate keeps 2 clicked ids where production keeps 3, and lists ids where production lists genres.
    const data = await moduleRef
      .get(TrainingDataService)
      .load(
        { kind: 'events', from: at(400).toISOString(), to: at(405).toISOString() },
        specOf(2, {}),
        specOf(3, { itemFeature: 'item_genre' }),
        0.4,
        undefined,
      );
    const lists = (table: RawTable) =>
      table
        .sequenceColumns()
        .map((c) =>
          Array.from({ length: table.size }, (_, r) =>
            Array.from(c.ids.subarray(c.offsets[r], c.offsets[r + 1]), (id) => c.dictionary[id].slice(-2)),
          ),
        );
    expect(lists(data.holdout)).toEqual([
      [
        ['p2', 'p3'],
        ['p3', 'p4'],
      ],
      [
        ['p1', 'p2', 'p3'],
        ['p2', 'p3', 'p4'],
      ],
    ]);
    expect(lists(data.productionHoldout!)).toEqual([
      [
        ['p1', 'p2', 'p3'],
        ['p2', 'p3', 'p4'],
      ],
      [
        ['g1', 'g2', 'g3'],
        ['g2', 'g3', 'g4'],
      ],
    ]);
  });

  it("rebuilds a list of the clicked items' genres alike; an item stored without one appends nothing", async () => {
    const user = `${token}-g`;
    const item = (name: string) => `${token}-${name}`;
    const event = (n: number, name: string, click: number, minute: number) => ({
      eventId: `${token}-genre-${n}`,
      userId: user,
      itemId: item(name),
      labels: { click },
      requestId: null,
      modelVersionId: null,
      context: null,
      occurredAt: at(200 + minute),
    });
    await moduleRef.get(FeatureRepository).upsert('item', [
      { id: item('a'), features: { item_genre: 'drama' } },
      { id: item('b'), features: { item_genre: 'news' } },
      { id: item('c'), features: { item_price: 3 } }, // no genre
      { id: item('d'), features: { item_genre: 7 } }, // a number is a category too
    ]);
    // Before the window: only the last maxLength (2) with a genre count, however many older clicks there are.
    await moduleRef
      .get(EventRepository)
      .insertNew([
        event(1, 'b', 1, -3),
        event(2, 'a', 1, -2),
        event(3, 'c', 1, -1),
        event(4, 'b', 1, 1),
        event(5, 'd', 0, 2),
        event(6, 'c', 1, 3),
        event(7, 'd', 1, 4),
        event(8, 'a', 1, 5),
      ]);
    const feed = { feature: 'user_recent_genres', task: 'click', maxLength: 2, itemFeature: 'item_genre' };
    const rows = await moduleRef.get(EventRepository).readInSnapshot((reads) => reads.window(at(200), at(210), [feed]));
    expect(rows.map((r) => [r.itemId.slice(token.length + 1), r.userFeatures!.user_recent_genres])).toEqual([
      ['b', ['news', 'drama']],
      ['d', ['drama', 'news']],
      ['c', ['drama', 'news']],
      ['d', ['drama', 'news']],
      ['a', ['news', '7']],
    ]);
  });
});

describe("EventRepository.readInSnapshot's replay sample (medium: real Postgres)", () => {
  let moduleRef: TestingModule;
  const token = runToken('replay-sample');
  const at = (second: number) => new Date(Date.UTC(1998, 0, 1) + second * 1000);
  const WINDOW = 3000;

  beforeAll(async () => {
    moduleRef = await createMediumModule({ imports: [FeaturesRepositoryModule] });
    await moduleRef.get(EventRepository).insertNew(
      Array.from({ length: WINDOW }, (_, i) => ({
        eventId: `${token}-${i}`,
        userId: `${token}-u${i % 50}`,
        itemId: `i${i}`,
        labels: { click: i % 2 },
        requestId: null,
        modelVersionId: null,
        context: null,
        occurredAt: at(i),
      })),
    );
  });

  afterAll(async () => {
    await moduleRef.get(DataSource).query(`DELETE FROM events WHERE event_id LIKE $1`, [`${token}-%`]);
    await moduleRef.close();
  });

  const sample = (count: number, seed: number, from = 0, to = WINDOW) =>
    moduleRef.get(EventRepository).readInSnapshot((reads) => reads.sample(at(from), at(to), count, seed, []));

  it('draws `count` distinct events of the window, the same ones for a seed, others for another seed', async () => {
    const drawn = await sample(60, 7);
    const ids = drawn.map((r) => r.eventId);
    expect(new Set(ids).size).toBe(60);
    expect(drawn.every((r) => r.occurredAt >= at(0) && r.occurredAt < at(WINDOW))).toBe(true);
    expect((await sample(60, 7)).map((r) => r.eventId)).toEqual(ids);
    const other = new Set((await sample(60, 8)).map((r) => r.eventId));
    expect(ids.filter((id) => other.has(id)).length).toBeLessThan(15);
    // Spread over the window, not its first events.
    const seconds = drawn.map((r) => (r.occurredAt.getTime() - at(0).getTime()) / 1000);
    expect(Math.min(...seconds)).toBeLessThan(WINDOW / 4);
    expect(Math.max(...seconds)).toBeGreaterThan((3 * WINDOW) / 4);
    // A window with fewer events than asked gives them all; none asked, none read.
    expect(await sample(50, 7, 0, 20)).toHaveLength(20);
    expect(await sample(0, 7)).toEqual([]);
  });

  it('draws `count` of the events a snapshot holds, however many were stored in the window since', async () => {
    const repository = moduleRef.get(EventRepository);
    const seen = await repository.readInSnapshot(async ({ snapshot }) => snapshot);
    // A late batch four times the window, into the same seconds: counted in, they left ~25 of 60 rows kept.
    await repository.insertNew(
      Array.from({ length: 4 * WINDOW }, (_, i) => ({
        eventId: `${token}-late-${i}`,
        userId: `${token}-u${i % 50}`,
        itemId: `late${i}`,
        labels: { click: 1 },
        requestId: null,
        modelVersionId: null,
        context: null,
        occurredAt: at(i % WINDOW),
      })),
    );
    const drawn = await repository.readInSnapshot((reads) => reads.sample(at(0), at(WINDOW), 60, 7, [], seen));
    expect(drawn).toHaveLength(60);
    expect(drawn.some((r) => r.eventId.includes('-late-'))).toBe(false);
    await moduleRef.get(DataSource).query(`DELETE FROM events WHERE event_id LIKE $1`, [`${token}-late-%`]);
  });

  it('sorts and joins only about `count` events, not the window', async () => {
    const db = moduleRef.get(DataSource);
    const query = jest.spyOn(db, 'query');
    try {
      await sample(60, 7);
      const [sql, parameters] = query.mock.calls.find(([text]) => /ORDER BY/.test(text))!;
      const [{ 'QUERY PLAN': plan }] = await db.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`, parameters);
      const sorted: number[] = [];
      const walk = (node: { 'Node Type': string; 'Actual Rows': number; Plans?: (typeof node)[] }) => {
        if (node['Node Type'] === 'Sort') sorted.push(...(node.Plans ?? []).map((p) => p['Actual Rows']));
        node.Plans?.forEach(walk);
      };
      walk(plan[0].Plan);
      expect(sorted.length).toBeGreaterThan(0);
      expect(Math.max(...sorted)).toBeLessThan(150);
    } finally {
      query.mockRestore();
    }
  });
});

describe('Late events reach the next incremental job (medium: real Postgres)', () => {
  let moduleRef: TestingModule;
  const token = runToken('late-events');
  const at = (minute: number, second = 0) => new Date(Date.UTC(1997, 0, 1, 0, minute, second));
  const itemSpec = parseModelSpec({
    features: [{ name: 'item_id', type: 'categorical' }],
    tasks: [{ name: 'click', label: 'click', type: 'binary' }],
    model: { expertUnits: [4] },
  });
  const event = (name: string, minute: number, second = 0) => ({
    eventId: `${token}-${name}`,
    userId: `${token}-u`,
    itemId: name,
    labels: { click: 1 },
    requestId: null,
    modelVersionId: null,
    context: null,
    occurredAt: at(minute, second),
  });
  const items = (table: RawTable) => {
    const { ids, dictionary } = table.categoricalColumn('item_id');
    return Array.from(ids, (id) => dictionary[id]).sort();
  };

  beforeAll(async () => {
    moduleRef = await trainingDataModule();
  });

  afterAll(async () => {
    await moduleRef.get(DataSource).query(`DELETE FROM events WHERE event_id LIKE $1`, [`${token}-%`]);
    await moduleRef.get(DataSource).query(`DELETE FROM user_features WHERE entity_id LIKE $1`, [`${token}-%`]);
    await moduleRef.close();
  });

  it('trains a child on the events stored after its parent read, whatever their time, and on no event twice', async () => {
    const events = moduleRef.get(EventRepository);
    const data = moduleRef.get(TrainingDataService);
    await events.insertNew(
      ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7', 'p8', 'p9'].map((n, i) => event(n, 10 + i)),
    );
    // The parent: a full retrain on [10, 20), its last fifth of time held out.
    const window = { from: at(10).toISOString(), to: at(20).toISOString() };
    const parentData = await data.load({ kind: 'events', ...window }, itemSpec, undefined, 0.2, undefined);
    expect(items(parentData.train)).toEqual(['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7']);
    const parent = {
      id: 1,
      metrics: {
        dataset: {
          source: { kind: 'events' as const, ...window },
          window,
          trainedTo: parentData.holdoutStart as string,
          historyFrom: window.from,
          snapshot: parentData.snapshot,
          holdoutFraction: 0.2,
          holdoutStart: parentData.holdoutStart,
          skippedRows: 0,
        },
      },
    };
    expect(parent.metrics.dataset.trainedTo).toBe(at(18).toISOString());
    // Stored after the parent read: one late into the time it trained on, one before its lineage, new ones.
    const fresh = Array.from({ length: 10 }, (_, i) => event(`n${i}`, 20, 6 * i));
    await events.insertNew([event('late', 13), event('ancient', 5), ...fresh, event('last', 29)]);

    const { source, late, replay } = resolveSource(
      { source: { kind: 'incremental', to: at(30).toISOString(), replay: 1 } },
      parent,
      30,
    );
    const child = await data.load(source, itemSpec, undefined, 0.2, undefined, {
      ...(late && { late }),
      ...(replay && { replay: { ...replay, seed: 1 } }),
    });
    // The window [18, 30): the parent's held-out p8, p9 and the new events, the last fifth of its time held out.
    expect(items(child.holdout)).toEqual(['last']);
    // Beside the window's 12 training rows: the late event, and a replay of 12 asked for, of which the parent's 8
    // trained events are all there is (the late one is not drawn again).
    expect([child.late, child.replayed]).toEqual([1, 8]);
    expect(items(child.train)).toEqual(
      ['late', ...fresh.map((e) => e.itemId), 'p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7', 'p8', 'p9'].sort(),
    );

    // The child's own read sees the late event: its children do not train on it again.
    const grandchild = await data.load(
      { kind: 'events', from: at(25).toISOString(), to: at(30).toISOString() },
      itemSpec,
      undefined,
      0.5,
      undefined,
      { late: { from: at(10).toISOString(), to: at(25).toISOString(), after: child.snapshot! } },
    );
    expect(grandchild.late).toBe(0);
  });
});
