import { DistinctStrings } from './distinct-strings.checker';

describe('DistinctStrings', () => {
  const distinct = new DistinctStrings();

  it('finds the first element that repeats an earlier one, or -1', () => {
    expect(distinct.firstRepeat(['a', 'b', 'c'])).toBe(-1);
    expect(distinct.firstRepeat(['a', 'b', 'c', 'b', 'a'])).toBe(3);
    expect(distinct.firstRepeat(['x', 'x'])).toBe(1);
    expect(distinct.firstRepeat([])).toBe(-1);
  });

  it('looks only before `end`', () => {
    expect(distinct.firstRepeat(['a', 'b', 'a'], 2)).toBe(-1);
    expect(distinct.firstRepeat(['a', 'b', 'a'], 3)).toBe(2);
  });

  it('agrees with a Set on lists of every size, one table reused across them', () => {
    let seed = 1;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
    for (let round = 0; round < 300; round++) {
      const size = random(2500);
      const list = Array.from({ length: size }, () => `item-${random(4 * size + 1)}é\t`.slice(0, 1 + random(12)));
      const seen = new Set<string>();
      const expected = list.findIndex((id) => seen.has(id) || (seen.add(id), false));
      expect(distinct.firstRepeat(list)).toBe(expected);
    }
  });
});
