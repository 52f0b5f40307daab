import { Inject, Injectable } from '@nestjs/common';

import { APP_CONFIG, type AppConfig } from '@app/config';
import { PredictionLogRepository, type LabelledPrediction, type ModelStatus } from '@app/db';
import { delongPaired, delongUnpaired, normalCdf } from '@app/mmoe/serving';
import { ModelRegistryService, specOf } from '@app/registry';

import { finite, liveMetrics, taskRows, type LiveTaskMetrics, type TaskRows } from './live-metrics.rules';

export interface VersionLiveMetrics {
  versionId: number;
  status: ModelStatus;
  since: Date;
  /** Logged predictions of the version in the window that an event labelled. */
  labelledPredictions: number;
  tasks: Record<string, LiveTaskMetrics>;
}

/** DeLong's test of b's AUC against a's on one task (two-sided). */
export interface AucTest {
  /** Paired when both versions scored the same (request, item) pairs (a shadow beside production). */
  paired: boolean;
  /** Predictions compared: the shared pairs when paired, else both arms' counts added. */
  count: number;
  difference: number | null;
  standardError: number | null;
  pValue: number | null;
}

export interface LiveComparison {
  a: VersionLiveMetrics;
  b: VersionLiveMetrics;
  /** Per binary task that both versions have. */
  aucTests: Record<string, AucTest>;
}

/** Online metrics: the logged predictions of a version joined with the events that came back for them. */
@Injectable()
export class LiveMetricsService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly registry: ModelRegistryService,
    private readonly log: PredictionLogRepository,
  ) {}

  async forVersion(id: number, since: Date): Promise<VersionLiveMetrics> {
    const { metrics } = await this.measure(id, since);
    return metrics;
  }

  /** Both versions' metrics over the same window and, per binary task, whether b's AUC differs from a's. */
  async compare(a: number, b: number, since: Date): Promise<LiveComparison> {
    const [first, second] = await Promise.all([this.measure(a, since), this.measure(b, since)]);
    const aucTests: Record<string, AucTest> = {};
    const binary = new Set(first.binaryTasks);
    for (const task of second.binaryTasks.filter((t) => binary.has(t)))
      aucTests[task] = aucTest(task, first.rows, second.rows);
    return { a: first.metrics, b: second.metrics, aucTests };
  }

  /** Per task, the version's labelled predictions since `since`: the samples of the rollout policy's test. */
  async samples(id: number, since: Date): Promise<Record<string, TaskRows>> {
    const version = await this.registry.get(id);
    return taskRows(specOf(version), await this.labelled(id, since));
  }

  private async measure(id: number, since: Date) {
    const version = await this.registry.get(id);
    const spec = specOf(version);
    const rows = await this.labelled(id, since);
    const metrics: VersionLiveMetrics = {
      versionId: id,
      status: version.status,
      since,
      labelledPredictions: rows.length,
      tasks: liveMetrics(spec, taskRows(spec, rows)),
    };
    return { metrics, rows, binaryTasks: spec.tasks.filter((t) => t.type === 'binary').map((t) => t.name) };
  }

  private labelled(id: number, since: Date): Promise<LabelledPrediction[]> {
    return this.log.labelled(id, since, this.config.LIVE_METRICS_MAX_ROWS);
  }
}

function aucTest(task: string, a: LabelledPrediction[], b: LabelledPrediction[]): AucTest {
  const key = (r: LabelledPrediction) => `${r.requestId}\u0000${r.itemId}`;
  const labelled = (r: LabelledPrediction) => typeof r.scores[task] === 'number' && typeof r.labels[task] === 'number';
  const byKey = new Map(a.filter(labelled).map((r) => [key(r), r]));
  const shared = b.filter(labelled).flatMap((r) => {
    const other = byKey.get(key(r));
    return other ? [{ a: other.scores[task], b: r.scores[task], label: r.labels[task] }] : [];
  });
  // Mostly the same requests: pair them (one sample, two scorers); else compare the two arms as independent samples.
  const paired = shared.length > 0 && shared.length >= 0.5 * Math.min(byKey.size, b.filter(labelled).length);
  const d = paired
    ? delongPaired(
        shared.map((s) => s.a),
        shared.map((s) => s.b),
        shared.map((s) => s.label),
      )
    : delongUnpaired(sampleOf(a.filter(labelled), task), sampleOf(b.filter(labelled), task));
  const z = d.difference / d.standardError;
  return {
    paired,
    count: paired ? shared.length : byKey.size + b.filter(labelled).length,
    difference: finite(d.difference),
    standardError: finite(d.standardError),
    pValue: finite(2 * (1 - normalCdf(Math.abs(z)))),
  };
}

function sampleOf(rows: LabelledPrediction[], task: string) {
  return { scores: rows.map((r) => r.scores[task]), labels: rows.map((r) => r.labels[task]) };
}
