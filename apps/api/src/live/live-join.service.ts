import { Inject, Injectable, Logger } from '@nestjs/common';

import { APP_CONFIG, type AppConfig } from '@app/config';
import {
  LiveStateRepository,
  PredictionLogRepository,
  servedKey,
  type CanaryEpoch,
  type JoinWatermark,
  type LiveStateTransaction,
  type ServedKey,
  type StoredAggregate,
} from '@app/db';
import { decodeAggregate, encodeAggregate, mergeAggregate, type TaskAggregate } from '@app/mmoe/serving';
import { ModelRegistryService, specOf } from '@app/registry';

import { aggregateKey, planCanaryEpoch, planJoin, type JoinPlan, type VersionTasks } from './live-join.rules';

/** Events joined per transaction, and how long one run may go on passing batches before it leaves the rest for the next. */
const BATCH_EVENTS = 5000;
const RUN_BUDGET_MS = 10_000;

export interface JoinRun {
  /** Events read, and labelled predictions written or relabelled (by the first watermark's passes). */
  events: number;
  labelled: number;
  passes: number;
  /** Predictions the late watermark's passes labelled: those that reached the log after their events were joined. */
  lateLabelled: number;
}

/**
 * Keeps the live state up to date: joins the events stored since the last pass (a watermark) with the predictions
 * they label and applies the change to the aggregates (planJoin). Events are far fewer than predictions, so the log is
 * only read by (request, user, item), never scanned. One pass is one transaction, watermark included, under a
 * cluster-wide lock: a pass either counts its events once or not at all.
 */
@Injectable()
export class LiveJoinService {
  private readonly logger = new Logger(LiveJoinService.name);
  /** Versions never change their spec: their task lists are read once. */
  private readonly tasks = new Map<number, VersionTasks | undefined>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly state: LiveStateRepository,
    private readonly log: PredictionLogRepository,
    private readonly registry: ModelRegistryService,
  ) {}

  /**
   * Passes until the events are caught up with (or the run's time is spent). What a pass needs from the registry
   * (the serving versions, the tasks of the versions it meets) is read between passes, never inside one: a pass holds
   * a transaction that reads the events, and a query on another connection could queue behind a lock waiting for it.
   */
  async run(): Promise<JoinRun> {
    const deadline = Date.now() + RUN_BUDGET_MS;
    const first = await this.drain('first', this.config.LIVE_AGGREGATION_LAG_SECONDS, deadline);
    const late = await this.drain('late', this.config.LIVE_LATE_JOIN_SECONDS, deadline);
    if (first.labelled > 0) this.logger.debug(`joined ${first.events} events: ${first.labelled} labelled predictions`);
    // Each one a prediction that was missing from the log when its events were first joined: worth a line.
    if (late.labelled > 0)
      this.logger.log(`${late.labelled} predictions reached the log after their events were joined; labelled now`);
    return { ...first, lateLabelled: late.labelled };
  }

  /** Passes over `watermark`'s events until they are caught up with (or the run's time is spent). */
  private async drain(
    watermark: JoinWatermark,
    lagSeconds: number,
    deadline: number,
  ): Promise<Omit<JoinRun, 'lateLabelled'>> {
    const run = { events: 0, labelled: 0, passes: 0 };
    for (;;) {
      const epoch = await this.servingEpoch();
      const pass = await this.state.exclusively((tx) => this.pass(tx, epoch, watermark, lagSeconds));
      if (!pass) break;
      if ('unknownVersions' in pass) {
        await this.loadTasks(pass.unknownVersions);
        continue;
      }
      run.events += pass.events;
      run.labelled += pass.labelled;
      run.passes++;
      if (pass.events < BATCH_EVENTS || Date.now() > deadline) break;
    }
    return run;
  }

  /**
   * One batch of events, joined in one transaction; nothing is written (and the batch is read again) when it meets
   * versions whose tasks are not known yet.
   */
  private async pass(
    tx: LiveStateTransaction,
    epoch: CanaryEpoch | undefined,
    watermark: JoinWatermark,
    lagSeconds: number,
  ): Promise<{ events: number; labelled: number } | { unknownVersions: number[] }> {
    const events = await tx.eventsAfterWatermark(lagSeconds, BATCH_EVENTS, watermark);
    const keys = uniqueKeys(
      events.flatMap((e) => (e.requestId ? [{ requestId: e.requestId, userId: e.userId, itemId: e.itemId }] : [])),
    );
    const labels = await tx.mergedLabels(keys);
    const predictions = await this.log.findServed(keys, tx.manager);
    const before = await tx.labelledOfRequests([...new Set(predictions.map((p) => p.requestId))]);
    const unknownVersions = [...new Set([...predictions, ...before].map((p) => p.versionId))].filter(
      (id) => !this.tasks.has(id),
    );
    if (unknownVersions.length > 0) return { unknownVersions };
    await this.enterEpoch(tx, epoch);
    if (events.length === 0) return { events: 0, labelled: 0 };
    const plan = planJoin({ predictions, labels, before, tasksOf: (id) => this.tasks.get(id), epoch });
    await tx.saveLabelled(plan.labelled);
    await this.saveAggregates(tx, plan.aggregates);
    if (epoch) await this.saveCanary(tx, epoch, plan);
    await tx.advanceWatermark(events[events.length - 1].eventId, watermark);
    return { events: events.length, labelled: plan.labelled.length };
  }

  /** The canary comparison the serving versions call for, if any, with both sides' tasks loaded. */
  private async servingEpoch(): Promise<CanaryEpoch | undefined> {
    const { production, canary } = await this.registry.findServing();
    const entered = canary && (await this.registry.canaryEntered(canary.id));
    if (!production || !canary || !entered) return undefined;
    await this.loadTasks([canary.id, production.id]);
    return {
      canaryEventId: entered.id,
      canaryVersionId: canary.id,
      productionVersionId: production.id,
      since: entered.createdAt,
    };
  }

  /**
   * Makes `epoch` the one canary comparison (every other one is dropped), building its state from the labelled
   * predictions already stored when it is new.
   */
  private async enterEpoch(tx: LiveStateTransaction, epoch: CanaryEpoch | undefined): Promise<void> {
    if (!epoch) return tx.leaveCanaryEpochs();
    if (!(await tx.enterCanaryEpoch(epoch))) return;
    const rows = [
      ...(await tx.labelledSince(epoch.canaryVersionId, epoch.since)),
      ...(await tx.labelledSince(epoch.productionVersionId, epoch.since)),
    ];
    await this.saveCanary(
      tx,
      epoch,
      planCanaryEpoch(rows, (id) => this.tasks.get(id), epoch),
    );
  }

  private async saveAggregates(tx: LiveStateTransaction, deltas: JoinPlan['aggregates']): Promise<void> {
    const stored = new Map(
      (await tx.lockAggregates([...deltas.values()])).map((a) => [
        aggregateKey(a.versionId, a.task, a.granularity, a.periodStart),
        a,
      ]),
    );
    const updated: StoredAggregate[] = [...deltas].map(([key, d]) => {
      const current = stored.get(key);
      const aggregate = current ? merged(current.state, d.delta) : d.delta;
      return { ...d, state: encodeAggregate(aggregate) };
    });
    await tx.saveAggregates(updated);
  }

  private async saveCanary(
    tx: LiveStateTransaction,
    epoch: CanaryEpoch,
    plan: Pick<JoinPlan, 'canary' | 'canaryUsers'>,
  ): Promise<void> {
    if (plan.canary.size > 0) {
      const stored = new Map(
        (await tx.lockCanaryAggregates(epoch.canaryEventId)).map((a) => [`${a.versionId}\u0000${a.task}`, a.state]),
      );
      await tx.saveCanaryAggregates(
        epoch.canaryEventId,
        [...plan.canary].map(([key, d]) => {
          const current = stored.get(key);
          return { ...d, state: encodeAggregate(current ? merged(current, d.delta) : d.delta) };
        }),
      );
    }
    await tx.addCanaryUsers(epoch.canaryEventId, plan.canaryUsers);
  }

  private async loadTasks(versionIds: number[]): Promise<void> {
    for (const id of new Set(versionIds)) {
      if (this.tasks.has(id)) continue;
      const version = await this.registry.find(id);
      const spec = version && specOf(version);
      this.tasks.set(id, spec && { names: spec.tasks.map((t) => t.name), types: spec.tasks.map((t) => t.type) });
    }
  }
}

/** The stored aggregate with `delta` added. */
function merged(state: Buffer, delta: TaskAggregate): TaskAggregate {
  return mergeAggregate(decodeAggregate(state), delta);
}

function uniqueKeys(keys: ServedKey[]): ServedKey[] {
  const seen = new Map(keys.map((k) => [servedKey(k), k]));
  return [...seen.values()];
}
