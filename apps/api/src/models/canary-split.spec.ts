import { canaryBucket } from './canary-split';

describe('canaryBucket', () => {
  it('is a fixed function of the id (same bucket in every process)', () => {
    expect(canaryBucket('u-42')).toBe(canaryBucket('u-42'));
    // FNV-1a 32 of "a" is 0xe40c292c; pinned so that a change of hash (which would move users across a split) is noticed.
    expect(canaryBucket('a')).toBe(0xe40c292c % 100);
  });

  it.each<[string, number]>([
    ['日本語', 51],
    ['😀', 56],
    ['\ud800', 14],
    ['x\udc00y', 63],
    ['user-7', 62],
  ])('hashes the UTF-8 bytes of %j (bucket %i), lone surrogates as U+FFFD', (id, bucket) => {
    expect(canaryBucket(id)).toBe(bucket);
  });

  it('spreads ids evenly over 0..99', () => {
    const counts = new Array<number>(100).fill(0);
    for (let i = 0; i < 10_000; i++) counts[canaryBucket(`user-${i}`)]++;
    expect(Math.min(...counts)).toBeGreaterThan(60);
    expect(Math.max(...counts)).toBeLessThan(140);
  });
});
