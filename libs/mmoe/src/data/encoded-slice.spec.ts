import { requestSides, rowSides } from '../model-spec/feature-side';
import { parseModelSpec } from '../model-spec/model-spec';
import { assembleRequest, encodeSlice, expandRequest, overlaySlices } from './encoded-slice';
import { FeatureEncoder, fitPreprocessing } from './preprocessor';
import { RawTable } from './raw-table';

const spec = parseModelSpec({
  features: [
    { name: 'age', type: 'numeric', side: 'user' },
    { name: 'price', type: 'numeric' },
    { name: 'city', type: 'categorical', embeddingDim: 4, side: 'context' },
    { name: 'genre', type: 'categorical', hashBuckets: 50 },
    { name: 'recent', type: 'sequence', maxLength: 2, sharedEmbedding: 'city', side: 'user' },
  ],
  tasks: [{ name: 'click', label: 'clicked', type: 'binary' }],
  model: { expertUnits: [4] },
});

const table = new RawTable(spec);
for (const [age, price, city, genre] of [
  ['20', '5', 'paris', 'g1'],
  ['40', '15', 'rome', 'g2'],
  ['30', '10', 'oslo', 'g3'],
])
  table.add({ age, price, city, genre, recent: [city], clicked: '1' });
const encoder = new FeatureEncoder(fitPreprocessing(spec, table));

describe('encoded slices', () => {
  const context = { city: 'rome', hour: 3 };
  const user = { age: 25, city: 'paris', recent: ['rome', 'oslo', 'paris'] };
  const items: (Record<string, unknown> | undefined)[] = [
    { price: 12, genre: 'g2' },
    { price: null, genre: 'g3', age: 50, recent: [] },
    undefined,
    { city: 'atlantis', recent: 'oslo|atlantis' },
  ];

  const shared = () => overlaySlices(encodeSlice(encoder, context).slice, encodeSlice(encoder, user).slice);
  const itemSlices = () => items.map((item) => item && encodeSlice(encoder, item).slice);

  it('assemble, per row, the same rows as encoding each merged record (item over user over context)', () => {
    const sides = rowSides(encoder.state);
    expect(expandRequest(sides, assembleRequest(sides, shared(), itemSlices()))).toEqual(
      encoder.encodeRecords(items.map((item) => ({ ...context, ...user, ...item }))),
    );
  });

  it('take user- and context-side features from the user and context only, once, and the item side per candidate', () => {
    const sides = requestSides(spec, encoder.state);
    expect(sides).toEqual({
      numeric: { shared: [0], item: [1] },
      categorical: { shared: [0], item: [1] },
      sequence: { shared: [0], item: [] },
    });
    const batch = assembleRequest(sides, shared(), itemSlices());
    expect(batch.numeric).toHaveLength(items.length);
    expect(batch.categorical).toHaveLength(1);
    expect(batch.sequences).toHaveLength(0);
    // An item's own age, city and recent items are not the request's: they are ignored.
    const itemSide = (item: Record<string, unknown> | undefined) =>
      item && Object.fromEntries(Object.entries(item).filter(([name]) => ['price', 'genre'].includes(name)));
    expect(expandRequest(sides, batch)).toEqual(
      encoder.encodeRecords(items.map((item) => ({ ...context, ...user, ...itemSide(item) }))),
    );
  });

  it('mark a stored value that cannot be read (no number, no list) as missing, and name its feature', () => {
    const { slice, unreadable } = encodeSlice(encoder, { age: 'old', price: 15, recent: [{}] });
    expect(unreadable).toEqual(['age', 'recent']);
    expect(Array.from(slice.present)).toEqual([1, 1, 0, 0, 1]);
    expect(slice.sequences[0]).toHaveLength(0);
    expect(slice.numeric[0]).toBe(0);
    expect(slice.numeric[1]).toBeCloseTo(encoder.encodeNumeric(1, 15));
  });
});
