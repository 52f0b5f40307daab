import type {
  LockedRecords,
  ModelVersionRecord,
  RolloutEventRecord,
  RolloutRecordPage,
  ServingPrecision,
  ServingRecords,
} from '@app/db';

import type { FusionRule } from './fusion.rules';
import {
  readRolloutPolicy,
  type EarlierPolicyDecision,
  type PolicyDecision,
  type RolloutPolicy,
  type StoredRolloutPolicy,
} from './rollout-policy.rules';
import type { VersionMetrics } from './version-metrics';

/** A model version as the registry hands it out: its JSON columns read into the registry's types. */
export interface ModelVersion extends Omit<ModelVersionRecord, 'metrics' | 'rolloutPolicy' | 'fusion'> {
  metrics: VersionMetrics;
  /** With the defaults of the fields added since it was set. */
  rolloutPolicy: RolloutPolicy | null;
  /** A product rule (a sum is stored as objectiveWeights); null: the weighted sum of objectiveWeights. */
  fusion: FusionRule | null;
}

/** The versions that serve now, by role. */
export interface ServingVersions {
  production?: ModelVersion;
  canary?: ModelVersion;
  /** Scores a share of requests in the background; never answers one. */
  shadow?: ModelVersion;
}

/** What a transition locked: the serving versions and the version it names, when it names one and it exists. */
export interface LockedVersions extends ServingVersions {
  target?: ModelVersion;
}

/**
 * What a rollout event records beside its versions: the evidence of an automatic decision (actor `policy`; events
 * from before the clustered test keep the earlier test's), the policy set or cleared (`policy` events), the precision
 * chosen (`precision` events), the run skipped (`skip` events); null for a transition made by hand.
 */
export type RolloutEvidence =
  | PolicyDecision
  | EarlierPolicyDecision
  | { policy: StoredRolloutPolicy | null }
  | { precision: ServingPrecision }
  | { skipped: SkippedRun };

/** A scheduled training run that had nothing to train on (a `skip` event): its job, why, and the empty window. */
export interface SkippedRun {
  job: string;
  reason: string;
  window: { from: string; to: string };
}

export interface RolloutEvent extends Omit<RolloutEventRecord, 'evidence'> {
  evidence: RolloutEvidence | null;
}

export interface RolloutPage {
  items: RolloutEvent[];
  total: number;
}

/*
 * The JSON columns are written by the registry alone, each from its type above, so reading one back is where its
 * type is trusted; what rows written by earlier code lack is optional in VersionMetrics and RolloutEvidence, and
 * defaulted for a rollout policy (whose test reads every field).
 */

export function readVersion(record: ModelVersionRecord): ModelVersion {
  const { metrics, rolloutPolicy, fusion, ...columns } = record;
  return {
    ...columns,
    metrics: metrics as VersionMetrics,
    rolloutPolicy: rolloutPolicy && readRolloutPolicy(rolloutPolicy),
    fusion: fusion as FusionRule | null,
  };
}

export function readServing({ production, canary, shadow }: ServingRecords): ServingVersions {
  return {
    production: production && readVersion(production),
    canary: canary && readVersion(canary),
    shadow: shadow && readVersion(shadow),
  };
}

export function readLocked(locked: LockedRecords): LockedVersions {
  return { ...readServing(locked), target: locked.target && readVersion(locked.target) };
}

export function readEvent(record: RolloutEventRecord): RolloutEvent {
  return { ...record, evidence: record.evidence as RolloutEvidence | null };
}

export function readPage({ items, total }: RolloutRecordPage): RolloutPage {
  return { items: items.map(readEvent), total };
}
