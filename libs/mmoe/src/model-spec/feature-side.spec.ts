import { featureSide, feedClashes, requestSides, rowSides, servedEventFeeds } from './feature-side';
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

describe('servedEventFeeds', () => {
  const fed = (name: string, task: string, maxLength: number) => ({
    name,
    type: 'sequence' as const,
    hashBuckets: 8,
    maxLength,
    fromEvents: { task },
  });
  const specWith = (...features: object[]) =>
    parseModelSpec({
      features,
      tasks: [
        { name: 'click', label: 'click', type: 'binary' },
        { name: 'like', label: 'like', type: 'binary' },
      ],
      model: { expertUnits: [4] },
    });

  it("is the union of the served specs' fed lists: production's source wins a name, the longest length is kept", () => {
    const production = specWith(fed('user_clicks', 'click', 3));
    const canary = specWith(fed('user_clicks', 'click', 5), fed('user_likes', 'like', 2));
    const shadow = specWith(fed('user_likes', 'click', 9));
    expect(servedEventFeeds([production, canary, shadow])).toEqual([
      { feature: 'user_clicks', task: 'click', maxLength: 5 },
      { feature: 'user_likes', task: 'like', maxLength: 2 },
    ]);
    expect(servedEventFeeds([])).toEqual([]);
  });

  it('finds the user features two specs take from different sources, of which one is events', () => {
    const genres = { ...fed('user_genres', 'click', 3), fromEvents: { task: 'click', itemFeature: 'item_genre' } };
    const item = { name: 'item_genre', type: 'categorical' as const };
    const written = { name: 'user_clicks', type: 'sequence' as const, hashBuckets: 8, maxLength: 3 };
    const a = specWith(fed('user_clicks', 'click', 3), item, genres);
    // A length is no clash, nor a feature only one of them has.
    expect(feedClashes(a, specWith(fed('user_clicks', 'click', 9), fed('user_likes', 'like', 2)))).toEqual([]);
    expect(feedClashes(a, specWith(fed('user_clicks', 'like', 3), item, fed('user_genres', 'click', 3)))).toEqual([
      { feature: 'user_clicks', sources: ['click events', 'like events'] },
      { feature: 'user_genres', sources: ["click events' item_genre", 'click events'] },
    ]);
    expect(feedClashes(a, specWith(written))).toEqual([{ feature: 'user_clicks', sources: ['click events', 'PUT'] }]);
    expect(feedClashes(specWith(written), specWith(written))).toEqual([]);
  });
});
