import { join } from 'node:path';

import { initBackend } from '../backend/backend';
import { RawTable } from '../data/raw-table';
import { auc } from '../eval/metrics';
import { MultiTaskModel } from '../mmoe.model';
import { loadModelSpec } from '../model-spec/model-spec';
import { ModelSpec } from '../model-spec/model-spec.schema';
import {
  generateInteractions,
  INTERACTION_DRIFT,
  INTERACTION_FEATURES,
  InteractionData,
  InteractionOptions,
  interactionsToRecords,
} from './interactions.data';

const EXAMPLE_SPEC = join(__dirname, '../../../../examples/interactions.spec.json');
const START = new Date('2024-03-01T00:00:00Z');
const options: InteractionOptions = { users: 2000, items: 400, impressions: 25_000, seed: 1, start: START, days: 14 };

let data: InteractionData;
beforeAll(async () => {
  await initBackend('wasm');
  data = generateInteractions(options);
});

describe('generateInteractions', () => {
  it('is deterministic from the seed', () => {
    const small = { ...options, impressions: 500 };
    expect(generateInteractions(small)).toEqual(generateInteractions(small));
    const labels = (d: InteractionData) => d.events.map((e) => e.labels);
    expect(labels(generateInteractions({ ...small, seed: 2 }))).not.toEqual(labels(generateInteractions(small)));
  });

  it('draws the same users and items whatever the number of impressions', () => {
    const fewer = generateInteractions({ ...options, impressions: 10 });
    expect(fewer.users).toEqual(data.users);
    expect(fewer.items).toEqual(data.items);
  });

  it('has the requested sizes, unique ids and known references', () => {
    expect(data.users).toHaveLength(2000);
    expect(data.items).toHaveLength(400);
    expect(data.events).toHaveLength(25_000);
    expect(new Set(data.events.map((e) => e.eventId)).size).toBe(25_000);
    expect(data.events[7].eventId).toBe('e-1-7');
    const userIds = new Set(data.users.map((u) => u.id));
    const itemIds = new Set(data.items.map((it) => it.id));
    expect(data.events.every((e) => userIds.has(e.userId) && itemIds.has(e.itemId))).toBe(true);
  });

  it('spreads timestamps over [start, start + days) in order', () => {
    const times = data.events.map((e) => e.occurredAt.getTime());
    expect(times.every((t, i) => i === 0 || t >= times[i - 1])).toBe(true);
    expect(times[0]).toBeGreaterThanOrEqual(START.getTime());
    expect(times[times.length - 1]).toBeLessThan(START.getTime() + 14 * 86_400_000);
    expect(times[times.length - 1] - times[0]).toBeGreaterThan(13 * 86_400_000);
  });

  it('gives every user and item the observable features', () => {
    const names = INTERACTION_FEATURES.map((f) => f.name);
    const keys = [...Object.keys(data.users[0].features), ...Object.keys(data.items[0].features)];
    expect(keys.sort()).toEqual([...names].sort());
    const genres = new Set(data.items.map((it) => it.features.item_genre));
    expect(genres.size).toBe(20);
    // Skewed markets: the largest country has several times the users of the smallest.
    const countries = new Map<unknown, number>();
    for (const u of data.users)
      countries.set(u.features.user_country, (countries.get(u.features.user_country) ?? 0) + 1);
    const counts = [...countries.values()];
    expect(Math.max(...counts)).toBeGreaterThan(5 * Math.min(...counts));
    // Histories of items that exist, most recent last, at most 20.
    const histories = data.users.map((u) => u.features.user_recent_items as string[]);
    expect(histories.every((h) => h.length <= 20 && h.every((id) => /^i-\d+$/.test(id)))).toBe(true);
    expect(histories.some((h) => h.length >= 5)).toBe(true);
  });

  it('clicks on roughly 5–15 % of impressions', () => {
    const rate = data.events.filter((e) => e.labels.click === 1).length / data.events.length;
    expect(rate).toBeGreaterThan(0.05);
    expect(rate).toBeLessThan(0.15);
  });

  it('likes only clicked items, and only some of them', () => {
    const clicks = data.events.filter((e) => e.labels.click === 1);
    const likes = data.events.filter((e) => e.labels.like === 1);
    expect(likes.every((e) => e.labels.click === 1)).toBe(true);
    expect(likes.length / clicks.length).toBeGreaterThan(0.1);
    expect(likes.length / clicks.length).toBeLessThan(0.7);
  });

  it('watches nothing without a click and at most the item length after one', () => {
    const length = new Map(data.items.map((it) => [it.id, it.features.item_length_min as number]));
    const [clicked, skipped] = [
      data.events.filter((e) => e.labels.click === 1),
      data.events.filter((e) => e.labels.click === 0),
    ];
    expect(skipped.filter((e) => e.labels.watch_time !== 0)).toEqual([]);
    expect(clicked.filter((e) => !(e.labels.watch_time > 0 && e.labels.watch_time <= length.get(e.itemId)!))).toEqual(
      [],
    );
    // Not all clicks end at the same share of the item: watch time varies with affinity.
    expect(clicked.filter((e) => e.labels.watch_time === length.get(e.itemId)).length).toBeLessThan(
      0.1 * clicked.length,
    );
  });

  it('drifts: one genre gains clicks and impressions over the days, another loses them', () => {
    const { events, items } = generateInteractions({ ...options, impressions: 60_000 });
    const genre = new Map(items.map((it) => [it.id, it.features.item_genre]));
    const slice = (from: number, to: number) =>
      events.slice(Math.floor(from * events.length), Math.floor(to * events.length));
    const stats = (part: typeof events, name: string) => {
      const shown = part.filter((e) => genre.get(e.itemId) === name);
      return {
        share: shown.length / part.length,
        clickRate: shown.filter((e) => e.labels.click === 1).length / shown.length,
      };
    };
    const early = slice(0, 0.3);
    const late = slice(0.7, 1);
    const rising = [stats(early, INTERACTION_DRIFT.rising), stats(late, INTERACTION_DRIFT.rising)];
    const fading = [stats(early, INTERACTION_DRIFT.fading), stats(late, INTERACTION_DRIFT.fading)];
    expect(rising[1].clickRate).toBeGreaterThan(rising[0].clickRate + 0.04);
    expect(rising[1].share).toBeGreaterThan(1.5 * rising[0].share);
    expect(fading[1].clickRate).toBeLessThan(fading[0].clickRate - 0.02);
    expect(fading[1].share).toBeLessThan(0.8 * fading[0].share);
  });

  it('rejects invalid options', () => {
    expect(() => generateInteractions({ ...options, users: 0 })).toThrow(RangeError);
    expect(() => generateInteractions({ ...options, items: 1.5 })).toThrow(RangeError);
    expect(() => generateInteractions({ ...options, impressions: -1 })).toThrow(RangeError);
    expect(() => generateInteractions({ ...options, days: 0 })).toThrow(RangeError);
    expect(() => generateInteractions({ ...options, start: new Date('nope') })).toThrow(RangeError);
    expect(() => generateInteractions({ ...options, latentDim: 0 })).toThrow(RangeError);
    expect(() => generateInteractions({ ...options, newItems: 1 })).toThrow(RangeError);
    expect(() => generateInteractions({ ...options, sessionInterest: { hours: 0, strength: 1 } })).toThrow(RangeError);
    expect(() => generateInteractions({ ...options, sessionInterest: { hours: 1, strength: 1, browse: 1 } })).toThrow(
      RangeError,
    );
  });

  it('leaves every draw as it was without the optional dynamics', () => {
    const small = { ...options, impressions: 500 };
    expect(generateInteractions({ ...small, newItems: 0 })).toEqual(generateInteractions(small));
  });

  it('releases the last share of items over the span: none is shown before its release', () => {
    const { events } = generateInteractions({ ...options, impressions: 20_000, newItems: 0.25 });
    const firstSeen = new Map<number, number>();
    for (const e of events) {
      const id = Number(e.itemId.slice(2));
      if (!firstSeen.has(id)) firstSeen.set(id, e.occurredAt.getTime() - START.getTime());
    }
    const days = (ids: number[]) => ids.map((id) => firstSeen.get(id)! / 86_400_000);
    const oldIds = [...firstSeen.keys()].filter((id) => id < 300);
    const newIds = [...firstSeen.keys()].filter((id) => id >= 300);
    // Old items show from the first days; new ones are first seen spread over the fortnight.
    expect(Math.max(...days(oldIds).filter((_, i) => i < 200))).toBeLessThan(7);
    expect(newIds.length).toBeGreaterThan(60);
    const newDays = days(newIds);
    expect(newDays.filter((d) => d > 7).length).toBeGreaterThan(20);
    expect(newDays.filter((d) => d < 7).length).toBeGreaterThan(20);
  });

  it("makes a user's last click's genre likelier to be clicked again soon with a session interest", () => {
    const genreOf = new Map(data.items.map((it) => [it.id, it.features.item_genre]));
    /** Click rate of impressions within an hour of the user's last click, on its genre and on others. */
    const sameGenreLift = (generated: InteractionData) => {
      const last = new Map<string, { genre: unknown; at: number }>();
      const counts = { same: [0, 0], other: [0, 0] };
      for (const e of generated.events) {
        const previous = last.get(e.userId);
        if (previous && e.occurredAt.getTime() - previous.at < 3_600_000) {
          const bucket = genreOf.get(e.itemId) === previous.genre ? counts.same : counts.other;
          bucket[0] += e.labels.click;
          bucket[1]++;
        }
        if (e.labels.click) last.set(e.userId, { genre: genreOf.get(e.itemId), at: e.occurredAt.getTime() });
      }
      return counts.same[0] / counts.same[1] / (counts.other[0] / counts.other[1]);
    };
    const busy = { ...options, users: 200, impressions: 60_000 };
    const withInterest = sameGenreLift(generateInteractions({ ...busy, sessionInterest: { hours: 1, strength: 3 } }));
    const without = sameGenreLift(generateInteractions(busy));
    expect(withInterest).toBeGreaterThan(1.25 * without);
  });

  it("gives each event's click logit without noise on request, drawing nothing: what ranks best, interest included", () => {
    const busy = {
      ...options,
      users: 200,
      impressions: 20_000,
      sessionInterest: { hours: 6, strength: 1.5, browse: 0.3 },
    };
    const { truth, ...generated } = generateInteractions({ ...busy, truth: true });
    expect(generated).toEqual(generateInteractions(busy));
    const clicks = Float32Array.from(generated.events, (e) => e.labels.click);
    const withoutInterest = truth!.clickLogit.map((logit, i) => logit - truth!.interestLogit[i]);
    expect(auc(truth!.clickLogit, clicks)).toBeGreaterThan(auc(withoutInterest, clicks) + 0.02);
    expect(truth!.interestLogit.filter((v) => v !== 0).length / clicks.length).toBeGreaterThan(0.03);
    expect(
      generateInteractions({ ...options, impressions: 100, truth: true }).truth!.interestLogit.every((v) => v === 0),
    ).toBe(true);
  });

  it('shows a browsing user more of their genre of the moment: consecutive impressions share a genre more often', () => {
    const genreOf = new Map(data.items.map((it) => [it.id, it.features.item_genre]));
    const sameGenreShare = (generated: InteractionData) => {
      const last = new Map<string, { genre: unknown; at: number }>();
      let [same, pairs] = [0, 0];
      for (const e of generated.events) {
        const previous = last.get(e.userId);
        const genre = genreOf.get(e.itemId);
        if (previous && e.occurredAt.getTime() - previous.at < 3_600_000) {
          pairs++;
          if (genre === previous.genre) same++;
        }
        last.set(e.userId, { genre, at: e.occurredAt.getTime() });
      }
      return same / pairs;
    };
    const busy = { ...options, users: 200, impressions: 30_000 };
    const interest = { hours: 6, strength: 1 };
    const browsing = sameGenreShare(generateInteractions({ ...busy, sessionInterest: { ...interest, browse: 0.4 } }));
    const not = sameGenreShare(generateInteractions({ ...busy, sessionInterest: interest }));
    expect(browsing).toBeGreaterThan(not + 0.1);
  });
});

describe('interactionsToRecords', () => {
  it('joins user and item features with the labels, one record per event', () => {
    const small = generateInteractions({ ...options, impressions: 50 });
    const records = [...interactionsToRecords(small)];
    expect(records).toHaveLength(50);
    const event = small.events[3];
    expect(records[3]).toEqual({
      ...small.users.find((u) => u.id === event.userId)!.features,
      ...small.items.find((it) => it.id === event.itemId)!.features,
      ...event.labels,
    });
  });
});

describe('examples/interactions.spec.json', () => {
  let spec: ModelSpec;
  beforeAll(async () => {
    spec = await loadModelSpec(EXAMPLE_SPEC);
  });

  it('reads exactly the generated features and labels', () => {
    expect(spec.features.map((f) => [f.name, f.type])).toEqual(INTERACTION_FEATURES.map((f) => [f.name, f.type]));
    expect(spec.tasks.map((t) => t.label)).toEqual(['click', 'like', 'watch_time']);
  });

  it('lets a model predict clicks from the features on a later, held-out slice', async () => {
    // Trained on the first 20k impressions and judged on the next 5k, as a retraining job would be. The shortened
    // training keeps the test fast and measured a click AUC of 0.705 here.
    const quick: ModelSpec = {
      ...spec,
      training: { ...spec.training, epochs: 3, batchSize: 256, learningRate: 0.005 },
    };
    const train = new RawTable(quick);
    const test = new RawTable(quick);
    let n = 0;
    for (const record of interactionsToRecords(data)) (n++ < 20_000 ? train : test).add(record);
    const { model } = await MultiTaskModel.train(quick, train);
    try {
      expect(test.size).toBe(5000);
      expect(model.evaluate(test).tasks.click.auc).toBeGreaterThan(0.67);
    } finally {
      model.dispose();
    }
  });
});
