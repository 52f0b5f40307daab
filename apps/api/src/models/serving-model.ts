import type { ServingPrecision } from '@app/db';
import type { FeatureEncoder, ModelSpec, RequestSides, Scorer } from '@app/mmoe/serving';
import type { CompiledFusion } from '@app/registry';

export type ServingRole = 'production' | 'canary' | 'shadow';
/** The roles that answer requests; the shadow only scores them in the background. */
export type AnsweringRole = Exclude<ServingRole, 'shadow'>;

/** A model version loaded for serving: what a scoring request needs, nothing from the ORM. */
export interface ServingModel<R extends ServingRole = ServingRole> {
  versionId: number;
  role: R;
  spec: ModelSpec;
  encoder: FeatureEncoder;
  /** Which features a request shares (user and context sides) and which each candidate's item holds. */
  sides: RequestSides;
  scorer: Scorer;
  /** The precision of the scorer's ONNX Runtime graph (the version's servingPrecision when it was loaded). */
  precision: ServingPrecision;
  /** The version's rule fusing task scores into the ranking score (its product rule, else the sum of its weights). */
  fusion: CompiledFusion;
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
export interface ModelLease<R extends ServingRole = ServingRole> {
  model: ServingModel<R>;
  release(): void;
}
