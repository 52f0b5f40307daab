import { featureMapProblem } from './feature-map.validator';

describe('featureMapProblem', () => {
  it('accepts scalar values, lists of strings (sequence features) and null', () => {
    expect(
      featureMapProblem({ age: 31, ratio: -0.5, country: 'fr', premium: false, missing: null }, 'features'),
    ).toBeUndefined();
    expect(featureMapProblem({ recent_items: ['i1', 'i2'], tags: [] }, 'features')).toBeUndefined();
    expect(featureMapProblem({}, 'features')).toBeUndefined();
  });

  it('names the feature whose value is not a scalar or a list of strings', () => {
    expect(featureMapProblem({ age: 1, address: { city: 'x' } }, 'features')).toBe(
      'features.address must be a number (within ±1e18), string, boolean, list of strings or null',
    );
    // A float32 in the model: past the bound its square, or the value, is infinite, and the scores NaN.
    expect(featureMapProblem({ price: 1e39 }, 'features')).toBe(
      'features.price must be a number (within ±1e18), string, boolean, list of strings or null',
    );
    expect(featureMapProblem({ price: -1e18 }, 'features')).toBeUndefined();
    expect(featureMapProblem({ tags: ['a', 3] }, 'features')).toBe('features.tags[1] must be a string');
    expect(featureMapProblem({ tags: ['a\0'] }, 'features')).toBe('features.tags[0] must not contain NUL characters');
    expect(featureMapProblem({ tags: Array.from({ length: 1025 }, () => 'a') }, 'features')).toBe(
      'features.tags must have at most 1024 values, got 1025',
    );
    expect(featureMapProblem({ bad: Number.NaN }, 'features')).toBe(
      'features.bad must be a number (within ±1e18), string, boolean, list of strings or null',
    );
    expect(featureMapProblem({ name: 'a\0b' }, 'features')).toBe('features.name must not contain NUL characters');
    expect(featureMapProblem({ name: 'n'.repeat(1024), tags: ['t'.repeat(1024)] }, 'features')).toBeUndefined();
    expect(featureMapProblem({ name: 'n'.repeat(1025) }, 'features')).toBe(
      'features.name must be at most 1024 characters long',
    );
    expect(featureMapProblem({ tags: ['t'.repeat(1025)] }, 'features')).toBe(
      'features.tags[0] must be at most 1024 characters long',
    );
  });

  it('rejects what is not an object, too many features and bad names', () => {
    for (const value of [undefined, null, 'x', 3, []])
      expect(featureMapProblem(value, 'features')).toMatch(/^features must be an object/);
    const many = Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`f${i}`, i]));
    expect(featureMapProblem(many, 'features')).toBe('features must have at most 256 features, got 257');
    expect(featureMapProblem({ '': 1 }, 'features')).toMatch(/^features has an invalid feature name ""/);
    expect(featureMapProblem({ ['n'.repeat(129)]: 1 }, 'features')).toMatch(/invalid feature name/);
  });
});
