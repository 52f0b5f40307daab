import { featureSide, requestSides, rowSides } from './feature-side';
import { parseModelSpec } from './model-spec';

const spec = (features: unknown[]) =>
  parseModelSpec({ features, tasks: [{ name: 'click', label: 'click', type: 'binary' }], model: { expertUnits: [4] } });

describe('feature sides', () => {
  it('are the spec side, else user_ → user, context_ → context, anything else item', () => {
    expect(featureSide({ name: 'user_age' })).toBe('user');
    expect(featureSide({ name: 'context_hour' })).toBe('context');
    expect(featureSide({ name: 'userage' })).toBe('item');
    expect(featureSide({ name: 'item_price' })).toBe('item');
    expect(featureSide({ name: 'user_age', side: 'item' })).toBe('item');
    expect(featureSide({ name: 'hour', side: 'context' })).toBe('context');
  });

  it('is validated, naming the path', () => {
    expect(() => spec([{ name: 'age', type: 'numeric', side: 'items' }])).toThrow(
      'features[0].side: must be "user", "item" or "context"',
    );
  });

  it('split a request: user and context features shared, the item ones per candidate; with no item feature, per row', () => {
    const preprocessing = {
      numeric: [
        { name: 'user_age', mean: 0, std: 1 },
        { name: 'price', mean: 0, std: 1 },
      ],
      categorical: [{ name: 'hour', embeddingDim: 2, hashBuckets: 24 }],
      sequence: [],
      labels: [],
    };
    const features = [
      { name: 'user_age', type: 'numeric' },
      { name: 'price', type: 'numeric' },
      { name: 'hour', type: 'categorical', side: 'context' },
    ];
    expect(requestSides(spec(features), preprocessing)).toEqual({
      numeric: { shared: [0], item: [1] },
      categorical: { shared: [0], item: [] },
      sequence: { shared: [], item: [] },
    });
    const noItem = spec([features[0], { ...features[1], side: 'user' }, features[2]]);
    expect(requestSides(noItem, preprocessing)).toEqual(rowSides(preprocessing));
  });
});
