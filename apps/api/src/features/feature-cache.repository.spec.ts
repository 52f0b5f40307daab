import calculateSlot from 'cluster-key-slot';

import { entryKey, generationKey, type EntityRef } from './feature-cache.repository';

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
