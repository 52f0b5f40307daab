/** Where a serving request finds a feature: the user's record, the request's context, or each candidate item. */
export type FeatureSide = 'user' | 'item' | 'context';

/**
 * The spec's `side`, else inferred from the name: `user_…` the user, `context_…` the context, anything else the item.
 * Item is the safe default (an item-side feature is simply computed per candidate); the prefixes are the naming the
 * examples and the demo already follow. Imports nothing: the spec schema checks sides with it.
 */
export function featureSide(feature: { name: string; side?: FeatureSide }): FeatureSide {
  if (feature.side) return feature.side;
  if (feature.name.startsWith('user_')) return 'user';
  if (feature.name.startsWith('context_')) return 'context';
  return 'item';
}
