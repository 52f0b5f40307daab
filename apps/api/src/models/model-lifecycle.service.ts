import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';

import { APP_CONFIG, type AppConfig } from '@app/config';
import type { ServingPrecision } from '@app/db';
import { featureSchemaVersion, type FeatureEncoder, type RequestSides, type Scorer } from '@app/mmoe/serving';
import {
  compileFusion,
  fusionOf,
  ModelChangeRepository,
  ModelRegistryService,
  specOf,
  type ModelVersion,
  type ServingVersions,
} from '@app/registry';

import { canaryBucket } from './canary-split';
import { ScorerLoader } from './scorer.loader';
import type { AnsweringRole, ModelLease, ServingModel } from './serving-model';

/** One version's engine, shared by every ServingModel of that version: its role and objective weights change, the network does not. */
interface LoadedVersion {
  versionId: number;
  precision: ServingPrecision;
  encoder: FeatureEncoder;
  sides: RequestSides;
  scorer: Scorer;
  inFlight: number;
  retired: boolean;
}

interface Slot {
  model: ServingModel;
  loaded: LoadedVersion;
}

interface ServingState {
  production?: Slot;
  canary?: Slot;
  canaryPercent: number;
  /** Scores `shadowPercent` % of requests in the background, never answers one. */
  shadow?: Slot;
  shadowPercent: number;
  /** Serving ids, percents and weights, as last loaded: a reload with the same signature does nothing. */
  signature: string;
}

export interface ServingSnapshot {
  production?: ServingModel;
  canary?: ServingModel;
  canaryPercent: number;
  shadow?: ServingModel;
  shadowPercent: number;
}

const EMPTY: ServingState = { canaryPercent: 0, shadowPercent: 0, signature: 'none' };

/**
 * Holds the production model (and the canary) of this process. Reloads follow the `models:changed` notice, with a
 * periodic check as a fallback, are serialized, and load everything before swapping the state in one assignment;
 * a version that leaves is disposed once the requests that leased it are done.
 */
@Injectable()
export class ModelLifecycleService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(ModelLifecycleService.name);
  private state: ServingState = EMPTY;
  /** By `versionId:precision`: a version whose precision changes is loaded anew, the old graph retired. */
  private readonly loaded = new Map<string, LoadedVersion>();
  private reloads: Promise<void> = Promise.resolve();
  private poll?: NodeJS.Timeout;
  private stopped = false;
  /** Told after each change of the versions served (onServingChange). */
  private readonly listeners: (() => void)[] = [];

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly registry: ModelRegistryService,
    private readonly changes: ModelChangeRepository,
    private readonly loader: ScorerLoader,
  ) {}

  async onModuleInit(): Promise<void> {
    // Subscribed before the first load, so that a change committed in between is not missed.
    await this.changes
      .subscribe(() => void this.refresh())
      .catch((e: Error) =>
        this.logger.warn(
          `no models:changed subscription (${e.message}); relying on the periodic check until it is made`,
        ),
      );
    await this.refresh();
    this.poll = setInterval(() => void this.refresh(), this.config.MODEL_POLL_SECONDS * 1000);
    this.poll.unref();
  }

  async onModuleDestroy(): Promise<void> {
    // A notice can still arrive until Redis is closed, after this; it must not load anything any more.
    this.stopped = true;
    clearInterval(this.poll);
    await this.reloads;
    const loaded = [...this.loaded.values()];
    this.state = EMPTY;
    this.loaded.clear();
    await Promise.all(loaded.map((version) => this.retire(version)));
  }

  /**
   * The model for this user's request: the canary for `canaryPercent` % of users (by a stable hash of the id), else
   * production; undefined while there is no production version. The caller must release() the lease.
   */
  acquire(userId: string): ModelLease<AnsweringRole> | undefined {
    const { production, canary, canaryPercent } = this.state;
    if (!production) return undefined;
    // Only the production and canary slots are chosen here, so the role is one that answers.
    return this.lease(
      canary && canaryBucket(userId) < canaryPercent ? canary : production,
    ) as ModelLease<AnsweringRole>;
  }

  /** The shadow version, leased like acquire()'s model (the caller must release()); undefined when there is none. */
  acquireShadow(): ModelLease | undefined {
    return this.state.shadow && this.lease(this.state.shadow);
  }

  private lease(slot: Slot): ModelLease {
    const { loaded } = slot;
    loaded.inFlight++;
    let released = false;
    return {
      model: slot.model,
      release: () => {
        if (released) return;
        released = true;
        loaded.inFlight--;
        if (loaded.retired && loaded.inFlight === 0) void this.dispose(loaded);
      },
    };
  }

  /** `listener` is called after every change of what this process serves (a version, its role or share). */
  onServingChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  current(): ServingSnapshot {
    const { production, canary, canaryPercent, shadow, shadowPercent } = this.state;
    return {
      production: production?.model,
      canary: canary?.model,
      canaryPercent,
      shadow: shadow?.model,
      shadowPercent,
    };
  }

  /** Brings this process in line with Postgres; resolves when done. Never rejects: a failed load keeps the current models. */
  refresh(): Promise<void> {
    if (this.stopped) return this.reloads;
    this.reloads = this.reloads.then(() =>
      this.reload().catch((e: Error) =>
        this.logger.error(`model reload failed, still serving ${describe(this.state)}: ${e.message}`),
      ),
    );
    return this.reloads;
  }

  private async reload(): Promise<void> {
    const serving = await this.registry.findServing();
    const signature = signatureOf(serving);
    if (signature === this.state.signature) return;
    const fresh: LoadedVersion[] = [];
    const slot = async (record: ModelVersion, role: ServingModel['role']): Promise<Slot> => {
      let loaded = this.loaded.get(keyOf(record.id, record.servingPrecision));
      if (!loaded) {
        loaded = await this.load(record.id, record.servingPrecision);
        fresh.push(loaded);
      }
      const spec = specOf(record);
      const { encoder, sides, scorer } = loaded;
      return {
        loaded,
        model: {
          versionId: record.id,
          role,
          spec,
          encoder,
          sides,
          scorer,
          precision: loaded.precision,
          fusion: compileFusion(fusionOf(record, spec), spec.tasks),
          featureSchemaVersion: featureSchemaVersion(spec),
          featureNames: spec.features.map((f) => f.name),
          taskNames: spec.tasks.map((t) => t.name),
        },
      };
    };
    let next: ServingState;
    try {
      next = {
        production: serving.production && (await slot(serving.production, 'production')),
        canary: serving.canary && (await slot(serving.canary, 'canary')),
        canaryPercent: serving.canary?.canaryPercent ?? 0,
        shadow: serving.shadow && (await slot(serving.shadow, 'shadow')),
        shadowPercent: serving.shadow?.shadowPercent ?? 0,
        signature,
      };
    } catch (e) {
      await Promise.all(fresh.map((version) => this.dispose(version)));
      throw e;
    }
    const before = describe(this.state);
    this.state = next;
    for (const version of fresh) this.loaded.set(keyOf(version.versionId, version.precision), version);
    const kept = new Set([next.production?.loaded, next.canary?.loaded, next.shadow?.loaded]);
    for (const version of [...this.loaded.values()].filter((v) => !kept.has(v))) {
      this.loaded.delete(keyOf(version.versionId, version.precision));
      await this.retire(version);
    }
    this.logger.log(`serving ${describe(next)} (was ${before})`);
    for (const listener of this.listeners) listener();
  }

  private async load(versionId: number, precision: ServingPrecision): Promise<LoadedVersion> {
    // The artifact only: the serving graph is built from it (the stored ONNX graph is the per-row one).
    const stored = await this.registry.findArtifact(versionId);
    if (!stored) throw new Error(`version ${versionId} disappeared while loading`);
    const { encoder, sides, scorer } = await this.loader.load(stored.artifact, precision);
    return { versionId, precision, encoder, sides, scorer, inFlight: 0, retired: false };
  }

  /** No new lease can reach it any more; it goes as soon as the last request holding one is done. */
  private async retire(version: LoadedVersion): Promise<void> {
    version.retired = true;
    if (version.inFlight === 0) await this.dispose(version);
  }

  private async dispose(version: LoadedVersion): Promise<void> {
    try {
      await version.scorer.dispose();
    } catch (e) {
      this.logger.warn(`disposing version ${version.versionId} failed: ${(e as Error).message}`);
    }
  }
}

const keyOf = (versionId: number, precision: ServingPrecision) => `${versionId}:${precision}`;

function signatureOf({ production, canary, shadow }: ServingVersions): string {
  return JSON.stringify([
    production?.id,
    production?.servingPrecision,
    production?.objectiveWeights,
    production?.fusion,
    canary?.id,
    canary?.servingPrecision,
    canary?.canaryPercent,
    canary?.objectiveWeights,
    canary?.fusion,
    shadow?.id,
    shadow?.servingPrecision,
    shadow?.shadowPercent,
    shadow?.objectiveWeights,
  ]);
}

function describe({ production, canary, canaryPercent, shadow, shadowPercent }: ServingState): string {
  const name = ({ loaded }: Slot) => `v${loaded.versionId}${loaded.precision === 'int8' ? ' (int8)' : ''}`;
  const main = production ? `production ${name(production)}` : 'no production';
  const withCanary = canary ? `${main}, canary ${name(canary)} at ${canaryPercent}%` : main;
  return shadow ? `${withCanary}, shadow ${name(shadow)} at ${shadowPercent}%` : withCanary;
}
