import type { FeatureEncoder, ModelSpec, Scorer } from '@app/mmoe/serving';

/** A model version loaded for serving: what a scoring request needs, nothing from the ORM. */
export interface ServingModel {
  versionId: number;
  role: 'production' | 'canary';
  spec: ModelSpec;
  encoder: FeatureEncoder;
  scorer: Scorer;
  /** Default blend of task scores into the ranking score, by task name. */
  objectiveWeights: Record<string, number>;
  /** Key namespace of cached feature vectors (featureSchemaVersion(spec)). */
  featureSchemaVersion: string;
  /** The spec's feature and task names, in spec order: what every request reads, computed once per load. */
  featureNames: readonly string[];
  taskNames: readonly string[];
}

/**
 * A model held for the duration of one request: release() must be called when the request is done, so that a
 * swapped-out model is disposed only after its last in-flight request finished.
 */
export interface ModelLease {
  model: ServingModel;
  release(): void;
}
