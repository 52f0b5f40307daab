import calculateSlot from 'cluster-key-slot';

import { loadConfig } from '@app/config';
import type { RedisClient } from '@app/redis';

import { entryKey, FeatureCacheRepository, generationKey, type EntityRef } from './feature-cache.repository';

describe('feature cache keys', () => {
  const entities = Array.from({ length: 20_000 }, (_, i): EntityRef => ({
    kind: i % 2 ? 'item' : 'user',
    id: `e-${i}`,
  }));

  it("put an entity's entries and its generation in one slot, whatever its id holds", () => {
    for (const entity of [...entities.slice(0, 100), { kind: 'item', id: 'a}b{c' } as EntityRef])
      expect(
        new Set([entryKey('v1', entity), entryKey('v2', entity), generationKey(entity)].map(calculateSlot)).size,
      ).toBe(1);
  });

  it('use 128 slots, one every 128, evenly', () => {
    const slots = entities.map((entity) => calculateSlot(generationKey(entity)));
    const counts = new Map<number, number>();
    for (const slot of slots) counts.set(slot, (counts.get(slot) ?? 0) + 1);
    expect([...counts.keys()].every((slot) => slot % 128 === 0)).toBe(true);
    expect(counts.size).toBe(128);
    // 20,000 / 128 ≈ 156 each; a thirds split of the slot range takes a third of the entities.
    expect(Math.min(...counts.values())).toBeGreaterThan(100);
    const firstThird = slots.filter((slot) => slot < 16384 / 3).length / slots.length;
    expect(firstThird).toBeCloseTo(1 / 3, 1);
  });
});

describe('FeatureCacheRepository.invalidate', () => {
  /** A client whose first `redirected` pipelines get a MOVED for their first command; records each one's SETs. */
  function writesRedirected(redirected: number) {
    const runs: [string, string][][] = [];
    const client = {
      isCluster: false,
      refreshSlotsCache: (done: (error?: Error) => void) => done(),
      pipeline: () => {
        const sets: [string, string][] = [];
        const pipeline = {
          set: (key: string, value: string) => (sets.push([key, value]), pipeline),
          exec: async () => {
            runs.push(sets);
            const moved = runs.length <= redirected;
            return sets.map((_, i) => (moved && i === 0 ? [new Error('MOVED 1 127.0.0.1:7001'), null] : [null, 'OK']));
          },
        };
        return pipeline;
      },
    };
    return { client: client as unknown as RedisClient, runs };
  }

  it("runs again after a redirection, with a new generation: the first run's may have been replaced since", async () => {
    const { client, runs } = writesRedirected(1);
    await new FeatureCacheRepository(client, client, loadConfig({})).invalidate('user', ['u1', 'u2']);
    expect(runs).toHaveLength(2);
    const generations = runs.map((sets) => new Set(sets.map(([, value]) => value)));
    expect(generations.map((g) => g.size)).toEqual([1, 1]); // one token a run, for every entity
    expect([...generations[1]][0]).not.toBe([...generations[0]][0]);
    expect(runs[1].map(([key]) => key)).toEqual(runs[0].map(([key]) => key));
  });

  it('fails once the cluster has redirected it five times', async () => {
    const { client, runs } = writesRedirected(Infinity);
    await expect(new FeatureCacheRepository(client, client, loadConfig({})).invalidate('item', ['i1'])).rejects.toThrow(
      'MOVED',
    );
    expect(runs).toHaveLength(5);
  });
});
