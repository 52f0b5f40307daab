import { randomInt } from 'node:crypto';

/**
 * Finds repeated strings in a list over one reused table: a Set per list was ~20 KB of garbage for 500 ids (its
 * tables as they grow), on the scoring hot path. Open addressing over an Int32Array of list indices + 1 (0: empty),
 * sized to at least twice the list; it keeps no string, so nothing of a request outlives the call. The hash is seeded
 * per process, so that a caller cannot choose ids that all collide.
 */
export class DistinctStrings {
  private slots = new Int32Array(1024);
  private readonly seed = randomInt(0x7fffffff);

  /** The index of the first of list[0, end) equal to an earlier one, or -1; those elements must be strings. */
  firstRepeat(list: readonly unknown[], end = list.length): number {
    let capacity = 16;
    while (capacity < end * 2) capacity *= 2;
    if (capacity > this.slots.length) this.slots = new Int32Array(capacity);
    const slots = this.slots;
    slots.fill(0, 0, capacity);
    const mask = capacity - 1;
    for (let index = 0; index < end; index++) {
      const value = list[index] as string;
      let hash = this.seed;
      for (let i = 0; i < value.length; i++) hash = Math.imul(hash ^ value.charCodeAt(i), 0x01000193);
      let slot = (hash ^ (hash >>> 15)) & mask;
      for (let held = slots[slot]; held !== 0; held = slots[slot]) {
        if (list[held - 1] === value) return index;
        slot = (slot + 1) & mask;
      }
      slots[slot] = index + 1;
    }
    return -1;
  }
}
