import { Inject, Injectable } from '@nestjs/common';

import { APP_CONFIG, type AppConfig } from '@app/config';
import { LiveStateRepository, type ModelStatus } from '@app/db';
import {
  decodeAggregate,
  liveTaskMetrics,
  mergeAggregate,
  taskType,
  type LiveTaskMetrics,
  type TaskAggregate,
} from '@app/mmoe/serving';
import { gatedTasks, ModelRegistryService, specOf } from '@app/registry';

import { aucTest, windowAggregates, type AucTest } from './live-metrics.rules';

export interface VersionLiveMetrics {
  versionId: number;
  status: ModelStatus;
  /** The window's start, at the start of the minute, hour or day whose aggregates answer it. */
  since: Date;
  /** Logged predictions of the version in the window that an event labelled (for the task labelled most). */
  labelledPredictions: number;
  tasks: Record<string, LiveTaskMetrics>;
}

export type { AucTest };

export interface LiveComparison {
  a: VersionLiveMetrics;
  b: VersionLiveMetrics;
  /** Per binary task that both versions have. */
  aucTests: Record<string, AucTest>;
}

/**
 * Online metrics: a version's logged predictions joined with the events that came back for them, read from the
 * aggregates the live join keeps (LiveJoinService), never from the log itself, so that they answer in the same time
 * whatever the traffic.
 */
@Injectable()
export class LiveMetricsService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly registry: ModelRegistryService,
    private readonly state: LiveStateRepository,
  ) {}

  async forVersion(id: number, since: Date): Promise<VersionLiveMetrics> {
    const version = await this.registry.get(id);
    const { granularity, from } = windowAggregates(since);
    const merged = new Map<string, TaskAggregate>();
    for (const stored of await this.state.aggregates(id, granularity, from)) {
      const aggregate = decodeAggregate(stored.state);
      const sum = merged.get(stored.task);
      merged.set(stored.task, sum ? mergeAggregate(sum, aggregate) : aggregate);
    }
    const tasks: Record<string, LiveTaskMetrics> = {};
    for (const task of specOf(version).tasks)
      tasks[task.name] = liveTaskMetrics(merged.get(task.name) ?? taskType(task).aggregate(1));
    return {
      versionId: id,
      status: version.status,
      since: from,
      labelledPredictions: Math.max(0, ...Object.values(tasks).map((t) => t.count)),
      tasks,
    };
  }

  /**
   * Both versions' metrics over the same window and, per binary task, whether b's AUC differs from a's: tested on
   * the newest LIVE_METRICS_MAX_ROWS labelled predictions of each in the window (a bounded read, whatever the traffic).
   */
  async compare(a: number, b: number, since: Date): Promise<LiveComparison> {
    const [first, second] = await Promise.all([this.forVersion(a, since), this.forVersion(b, since)]);
    const [specA, specB] = (await Promise.all([this.registry.get(a), this.registry.get(b)])).map(specOf);
    const inA = gatedTasks(specA);
    const common = gatedTasks(specB).filter((t) => inA.includes(t));
    const tasks = (spec: typeof specA) =>
      common.map((name) => ({ name, index: spec.tasks.findIndex((t) => t.name === name) }));
    const [rowsA, rowsB] = await Promise.all([
      this.state.labelledTasks(a, tasks(specA), first.since, this.config.LIVE_METRICS_MAX_ROWS),
      this.state.labelledTasks(b, tasks(specB), first.since, this.config.LIVE_METRICS_MAX_ROWS),
    ]);
    const aucTests = Object.fromEntries(common.map((task, k) => [task, aucTest(rowsA[k], rowsB[k])]));
    return { a: first, b: second, aucTests };
  }
}
