import { parseModelSpec, RawTable } from '@app/mmoe';

import {
  checkGroups,
  checkTables,
  eventRecord,
  groupByOf,
  holdoutFractionOf,
  holdsValidation,
  listsToRebuild,
  orderSplitIndex,
  readableByBoth,
  recordColumns,
  renamedLists,
  splitAt,
  timeSplitIndex,
  toTables,
  type FlatRecord,
} from './dataset.rules';
import { TrainingInputError } from './training.errors';

const SPEC = parseModelSpec({
  features: [
    { name: 'age', type: 'numeric' },
    { name: 'genre', type: 'categorical' },
  ],
  tasks: [
    { name: 'click', label: 'clicked', type: 'binary' },
    { name: 'watch', label: 'seconds', type: 'regression' },
  ],
  model: { expertUnits: [4] },
});

function rows(n: number, extra: (i: number) => FlatRecord = () => ({})): FlatRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    age: 20 + i,
    genre: `g${i % 3}`,
    clicked: i % 2,
    seconds: i,
    ...extra(i),
  }));
}

describe('dataset rules', () => {
  it('keeps the held-out records both specs read, so that the gate judges both on the same events', () => {
    // Production reads a label of its own ("liked", binary) and not the candidate's "seconds".
    const production = parseModelSpec({
      features: [{ name: 'age', type: 'numeric' }],
      tasks: [{ name: 'like', label: 'liked', type: 'binary' }],
      model: { expertUnits: [4] },
    });
    const ours = rows(5, (i) => (i === 1 ? { age: 'old' } : {}));
    const theirs = ours.map((row, i) => ({ age: i === 1 ? 30 : row.age, liked: i === 3 ? 2 : 0 }));
    expect(readableByBoth(SPEC, production, ours, theirs)).toEqual([0, 2, 4]);
  });

  describe('eventRecord', () => {
    /** User-side by their prefix, the others item-side (featureSide). */
    const SIDED = parseModelSpec({
      ...SPEC,
      features: [
        { name: 'user_age', type: 'numeric' },
        { name: 'user_recent', type: 'sequence', maxLength: 3 },
        { name: 'context_hour', type: 'numeric' },
        { name: 'genre', type: 'categorical' },
        { name: 'price', type: 'numeric' },
      ],
    });
    const row = { userId: 'u', itemId: 'i', context: null, userFeatures: null, itemFeatures: null, labels: {} };

    it('assembles the features as scoring does: context, the user over it, the item over both where it fills', () => {
      const record = eventRecord(
        {
          ...row,
          context: { context_hour: 21, user_age: 1, price: 1 },
          userFeatures: { user_age: 31, user_recent: ['a'], price: 2 },
          // An item's values under user and context features' names: scoring never reads them.
          itemFeatures: { genre: 'drama', user_age: 99, user_recent: ['x', 'y'], context_hour: 3 },
          labels: { click: 1, watch: 42 },
          weight: null,
        },
        recordColumns(SIDED),
      );
      expect(record).toEqual({
        user_id: 'u',
        item_id: 'i',
        context_hour: 21,
        user_age: 31,
        user_recent: ['a'],
        genre: 'drama',
        // Item-side, not stored for this item: the user's value, as a candidate without it is scored.
        price: 2,
        clicked: 1,
        seconds: 42,
      });
    });

    it('lets the item fill every feature of a spec with no item-side one (the row layout)', () => {
      const userOnly = parseModelSpec({
        ...SPEC,
        features: [
          { name: 'user_age', type: 'numeric' },
          { name: 'user_tier', type: 'categorical' },
        ],
      });
      const record = eventRecord(
        {
          ...row,
          userFeatures: { user_age: 31, user_tier: 'user' },
          itemFeatures: { user_tier: 'item' },
          weight: null,
        },
        recordColumns(userOnly),
      );
      expect(record).toMatchObject({ user_age: 31, user_tier: 'item' });
      expect(
        eventRecord({ ...row, itemFeatures: { user_tier: 'item' }, weight: null }, recordColumns(SIDED)),
      ).not.toHaveProperty('user_tier');
    });

    it('leaves a label the event lacks missing, tolerates unknown users and items, and reads booleans as categories', () => {
      const record = eventRecord(
        { ...row, itemFeatures: { premium: true }, labels: { click: 0 }, weight: null },
        recordColumns(parseModelSpec({ ...SPEC, features: [{ name: 'premium', type: 'categorical' }] })),
      );
      expect(record).toEqual({ user_id: 'u', item_id: 'i', premium: 'true', clicked: 0, seconds: undefined });
    });

    it("puts the event's weight under the spec's sample-weight column (null: the table reads 1)", () => {
      const spec = parseModelSpec({ ...SPEC, training: { sampleWeight: 'w' } });
      expect(eventRecord({ ...row, labels: { click: 1 }, weight: 2.5 }, recordColumns(spec))).toMatchObject({ w: 2.5 });
      const table = new RawTable(spec);
      table.add(eventRecord({ ...row, labels: { click: 1 }, weight: null }, recordColumns(spec)));
      table.add(eventRecord({ ...row, labels: { click: 1 }, weight: 0.5 }, recordColumns(spec)));
      expect(Array.from(table.weightColumn()!)).toEqual([1, 0.5]);
    });
  });

  describe('listsToRebuild', () => {
    const fed = (name: string, maxLength: number, fromEvents?: { task: string; itemFeature?: string }) => ({
      name,
      type: 'sequence' as const,
      maxLength,
      ...(fromEvents && { fromEvents }),
    });
    const specWith = (...lists: ReturnType<typeof fed>[]) =>
      parseModelSpec({ ...SPEC, features: [...lists, { name: 'genre', type: 'categorical' }] });

    it("rebuilds one list where both specs' have the same source, at the longer maxLength", () => {
      const lists = listsToRebuild(
        specWith(fed('user_recent', 2, { task: 'click' })),
        specWith(fed('user_recent', 3, { task: 'click' })),
      );
      expect(lists).toEqual({
        feeds: [{ feature: 'user_recent', task: 'click', maxLength: 3 }],
        candidateRenames: new Map(),
      });
    });

    it("rebuilds the candidate's apart where production reads that name from another source, events or a PUT", () => {
      for (const theirs of [fed('user_recent', 3, { task: 'click', itemFeature: 'genre' }), fed('user_recent', 3)]) {
        const { feeds, candidateRenames } = listsToRebuild(
          specWith(fed('user_recent', 2, { task: 'click' })),
          specWith(theirs),
        );
        const apart = [...candidateRenames.keys()];
        expect([...candidateRenames.values()]).toEqual(['user_recent']);
        expect(feeds).toEqual([
          ...(theirs.fromEvents ? [{ feature: 'user_recent', task: 'click', maxLength: 3, itemFeature: 'genre' }] : []),
          { feature: apart[0], task: 'click', maxLength: 2 },
        ]);
        expect(renamedLists({ user_recent: ['stored'], [apart[0]]: ['rebuilt'] }, candidateRenames)).toMatchObject({
          user_recent: ['rebuilt'],
        });
      }
    });

    it("rebuilds production's for a candidate that reads it as a plain feature: it is served the fed list", () => {
      expect(
        listsToRebuild(specWith(fed('user_recent', 2)), specWith(fed('user_recent', 3, { task: 'click' }))),
      ).toEqual({
        feeds: [{ feature: 'user_recent', task: 'click', maxLength: 3 }],
        candidateRenames: new Map(),
      });
    });
  });

  describe('time split', () => {
    it('holds out the rows in the last fraction of the time the data spans, not the last fraction of rows', () => {
      expect(timeSplitIndex([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 0.2)).toBe(8);
      // Most rows are early: the last 20 % of the time holds only the last row.
      expect(timeSplitIndex([0, 1, 2, 3, 100], 0.2)).toBe(4);
      // A row exactly at the cutoff belongs to the later slice.
      expect(timeSplitIndex([0, 50, 80, 100], 0.2)).toBe(2);
    });

    it('leaves nothing to train on when every row has the same time, and handles no rows', () => {
      expect(timeSplitIndex([5, 5, 5], 0.2)).toBe(0);
      expect(timeSplitIndex([], 0.2)).toBe(0);
    });

    it('splits a file by row order', () => {
      expect(orderSplitIndex(10, 0.2)).toBe(8);
      expect(orderSplitIndex(5, 0.25)).toBe(4);
      expect(splitAt([1, 2, 3, 4, 5], 4)).toEqual({ train: [1, 2, 3, 4], holdout: [5] });
    });

    it('defaults the holdout fraction to 0.2 and refuses one that leaves a slice empty', () => {
      expect(holdoutFractionOf(undefined)).toBe(0.2);
      expect(holdoutFractionOf(0.5)).toBe(0.5);
      for (const bad of [0, 1, -0.1, NaN]) expect(() => holdoutFractionOf(bad)).toThrow(TrainingInputError);
    });
  });

  it('holds rows back for validation in every job but an incremental one, whose child would never train on them', () => {
    const from = '2026-12-01T00:00:00.000Z';
    expect(holdsValidation({ source: { kind: 'events', from, to: '2026-12-02T00:00:00.000Z' } })).toBe(true);
    expect(holdsValidation({ source: { kind: 'csv', path: '/data/train.csv' } })).toBe(true);
    expect(holdsValidation({ source: { kind: 'incremental', to: from } })).toBe(false);
  });

  describe('tables', () => {
    it('builds both slices for a spec and counts the rows it cannot read', () => {
      const tables = toTables(SPEC, {
        train: [...rows(5), { age: 'old', genre: 'g1', clicked: 1 }],
        holdout: [...rows(2), { age: 3, clicked: 'yes' }],
      });
      expect([tables.train.size, tables.holdout.size, tables.skipped]).toEqual([5, 2, 2]);
    });

    it('groups the held-out rows by groupBy (user_id by default for events) for GAUC', () => {
      const tables = toTables(
        SPEC,
        { train: rows(3), holdout: rows(4, (i) => ({ user_id: ['a', 'b', 'a', ''][i] })) },
        'user_id',
      );
      expect(Array.from(tables.holdout.groupIds()!)).toEqual([0, 1, 0, -1]);
      expect(tables.train.groupIds()).toBeUndefined();
      expect(groupByOf({ source: { kind: 'events', from: 'a', to: 'b' } })).toBe('user_id');
      expect(groupByOf({ source: { kind: 'incremental', to: 'b' } })).toBe('user_id');
      expect(groupByOf({ source: { kind: 'csv', path: 'x.csv' } })).toBeUndefined();
      expect(groupByOf({ source: { kind: 'csv', path: 'x.csv' }, groupBy: 'session' })).toBe('session');
    });

    it('refuses a groupBy that no held-out row has a value for, and takes one that some rows lack', () => {
      const holdout = rows(2, (i) => ({ user_id: ['a', ''][i] }));
      expect(() =>
        checkGroups(toTables(SPEC, { train: rows(3), holdout }, 'user_id').holdout, 'user_id'),
      ).not.toThrow();
      expect(() => checkGroups(toTables(SPEC, { train: rows(3), holdout }, 'usr_id').holdout, 'usr_id')).toThrow(
        new TrainingInputError(
          `groupBy: none of the 2 held-out rows has a value for "usr_id" (events carry user_id, item_id and the spec's features)`,
        ),
      );
      expect(() => checkGroups(toTables(SPEC, { train: rows(3), holdout }).holdout, undefined)).not.toThrow();
    });

    it('accepts enough rows with labels for every task in both slices', () => {
      expect(() => checkTables(SPEC, toTables(SPEC, { train: rows(8), holdout: rows(2) }), 10)).not.toThrow();
    });

    it.each<[string, FlatRecord[], FlatRecord[], RegExp]>([
      [
        'too few rows',
        rows(7),
        rows(2),
        /^too little data: 9 usable rows, at least 10 are needed \(TRAINING_MIN_ROWS\)$/,
      ],
      ['an empty held-out slice', rows(10), [], /^the held-out slice is empty/],
      ['a training slice of one row', rows(1), rows(9), /^the training slice has 1 rows/],
      [
        'a task without labels in training',
        rows(8, () => ({ seconds: undefined })),
        rows(2),
        /^task "watch" has no labels in the training slice \(label "seconds"\)$/,
      ],
      [
        'a task without labels in the held-out slice',
        rows(8),
        rows(2, () => ({ clicked: '' })),
        /^task "click" has no labels in the held-out slice/,
      ],
    ])('refuses %s', (_, train, holdout, message) => {
      expect(() => checkTables(SPEC, toTables(SPEC, { train, holdout }), 10)).toThrow(
        expect.objectContaining({ name: 'TrainingInputError', message: expect.stringMatching(message) }),
      );
    });
  });
});
