import type { PreprocessingState } from '../data/preprocessor';
import type { ModelSpec } from './model-spec.schema';
import { featureSide } from './side';

export { featureSide, type FeatureSide } from './side';

/**
 * A user-side list fed by events (a sequence feature's `fromEvents`): the task whose positive events it lists, the
 * last maxLength by time, and what it lists of each: the item id, or the item's `itemFeature`.
 */
export interface EventFeed {
  feature: string;
  task: string;
  maxLength: number;
  itemFeature?: string;
}

/** The spec's event-fed lists. */
export function eventFeeds(spec: Pick<ModelSpec, 'features'>): EventFeed[] {
  return spec.features.flatMap((f) => {
    if (f.type !== 'sequence' || !f.fromEvents) return [];
    const { task, itemFeature } = f.fromEvents;
    return [{ feature: f.name, task, maxLength: f.maxLength, ...(itemFeature && { itemFeature }) }];
  });
}

/**
 * The lists the served specs (production first, then the canary and the shadow) declare fed by events, one per
 * feature name: the first spec's source (task, itemFeature) wins a clash (which the rollout refuses to serve, see
 * feedClashes: this only decides for versions served together before that check), and the longest maxLength of the
 * specs that agree on it is kept (each model reads only its own last maxLength).
 */
export function servedEventFeeds(specs: readonly Pick<ModelSpec, 'features'>[]): EventFeed[] {
  const byName = new Map<string, EventFeed>();
  for (const feed of specs.flatMap(eventFeeds)) {
    const kept = byName.get(feed.feature);
    if (!kept) byName.set(feed.feature, feed);
    else if (kept.task === feed.task && kept.itemFeature === feed.itemFeature && feed.maxLength > kept.maxLength)
      byName.set(feed.feature, { ...kept, maxLength: feed.maxLength });
  }
  return [...byName.values()];
}

/** A user feature two specs both read, one of them fed by events, from sources that differ. */
export interface FeedClash {
  feature: string;
  /** Where each spec has it from: `click events`, `click events' item_genre`, or `PUT` (no `fromEvents`). */
  sources: [string, string];
}

/**
 * The user features `a` and `b` cannot be served side by side: a user has one stored value per name, and a list fed
 * by events replaces whatever else is stored under its name, so two versions that take it from different sources (other
 * events, another item feature, or a PUT) would each read the other's. The longest maxLength is kept of lists that
 * agree (servedEventFeeds), so a length is no clash.
 */
export function feedClashes(a: Pick<ModelSpec, 'features'>, b: Pick<ModelSpec, 'features'>): FeedClash[] {
  const source = (f: ModelSpec['features'][number]) =>
    f.type === 'sequence' && f.fromEvents
      ? `${f.fromEvents.task} events${f.fromEvents.itemFeature ? `' ${f.fromEvents.itemFeature}` : ''}`
      : 'PUT';
  const theirs = new Map(b.features.filter((f) => featureSide(f) === 'user').map((f) => [f.name, source(f)]));
  return a.features.flatMap((f) => {
    const other = theirs.get(f.name);
    if (other === undefined || featureSide(f) !== 'user') return [];
    const ours = source(f);
    return ours === other ? [] : [{ feature: f.name, sources: [ours, other] as [string, string] }];
  });
}

/** Preprocessing indices of one kind of feature: those every candidate of a request shares, and the item's. */
export interface SideSplit {
  shared: number[];
  item: number[];
}

/** Per kind of feature, which encoded columns are a request's (user and context sides) and which each item's. */
export interface RequestSides {
  numeric: SideSplit;
  categorical: SideSplit;
  sequence: SideSplit;
}

/**
 * The request layout of a model. Without any item-side feature every candidate would get the same row and the graph
 * would have no per-candidate input: such a model is served per row (everything counted as item-side).
 */
export function requestSides(spec: ModelSpec, preprocessing: PreprocessingState): RequestSides {
  const side = new Map(spec.features.map((f) => [f.name, featureSide(f)]));
  const split = (features: { name: string }[]): SideSplit => {
    const result: SideSplit = { shared: [], item: [] };
    features.forEach(({ name }, i) => (side.get(name) === 'item' ? result.item : result.shared).push(i));
    return result;
  };
  const sides: RequestSides = {
    numeric: split(preprocessing.numeric),
    categorical: split(preprocessing.categorical),
    sequence: split(preprocessing.sequence),
  };
  const hasItem = sides.numeric.item.length + sides.categorical.item.length + sides.sequence.item.length > 0;
  return hasItem ? sides : rowSides(preprocessing);
}

/** Every feature per row: the row graph's layout. */
export function rowSides(preprocessing: PreprocessingState): RequestSides {
  const all = (features: unknown[]): SideSplit => ({ shared: [], item: features.map((_, i) => i) });
  return {
    numeric: all(preprocessing.numeric),
    categorical: all(preprocessing.categorical),
    sequence: all(preprocessing.sequence),
  };
}

/**
 * The features a candidate's own stored value fills when scoring (over the user's and the context's): the item-side
 * ones, or every feature when none is (the row layout, rowSides).
 */
export function itemFilledFeatures(spec: Pick<ModelSpec, 'features'>): string[] {
  const item = spec.features.filter((f) => featureSide(f) === 'item').map((f) => f.name);
  return item.length > 0 ? item : spec.features.map((f) => f.name);
}

/** True when some feature is shared by a request's candidates (the request graph then differs from the row graph). */
export function hasSharedSide(sides: RequestSides): boolean {
  return sides.numeric.shared.length + sides.categorical.shared.length + sides.sequence.shared.length > 0;
}
