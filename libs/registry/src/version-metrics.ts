import type {
  EvaluationReport,
  Int8Check,
  ModelSpec,
  TrainSummary,
  VocabularyGrowth,
  VocabularyOverflow,
} from '@app/mmoe';

/** Metrics by task, then by name (auc, gauc, logloss, rmse …). */
export type TaskMetricsByName = EvaluationReport['tasks'];

/** What the worker's gate decided for a version it trained, and why; a canary refused after it makes it a candidate. */
export interface GateDecision {
  decision: 'canary' | 'candidate';
  reason: string;
}

/** Another version judged on the same held-out slice as the one recording it. */
export interface HoldoutComparison {
  versionId: number;
  tasks: TaskMetricsByName;
  /** Production's: when it had trained on the slice's earlier rows, what the gate compared instead (absent before). */
  unseen?: UnseenComparison;
}

/** The candidate and production on the held-out rows that production has not trained on, which the gate judges by. */
export interface UnseenComparison {
  /** Production's `dataset.trainedTo`: the rows compared are those at or after it. */
  trainedTo: string;
  /** How many of the candidate's held-out rows those are (0: the candidate is kept, uncompared). */
  rows: number;
  candidate: TaskMetricsByName;
  production: TaskMetricsByName;
}

/** How a worker trained a version: the training summary without its validation report, which `validation` sums up. */
export type TrainingRecord = Omit<TrainSummary, 'valid' | 'optimizer' | 'examplesTrained'> & {
  /** Whether Adam started afresh (absent before it was recorded: afresh). */
  optimizer?: TrainSummary['optimizer'];
  /** Absent before it was recorded. */
  examplesTrained?: number;
  validation: TaskMetricsByName;
  /** The job's overrides of the spec's training section, which the version's spec does not carry. */
  overrides?: Partial<ModelSpec['training']>;
  /** Rows trained on, early stopping's validation share included. */
  rows: number;
  /** That validation share, the parameter count and the backend (absent for versions trained before the report). */
  validationRows?: number;
  parameters?: number;
  backend?: string;
  /** A warm start: the parent it started from, and what happened to each learnt vocabulary. */
  warmStart?: { parentVersionId: number; vocabularies: VocabularyGrowth[] };
  /** The learnt vocabularies that reached maxVocab, and the ids each left out (absent before it was recorded). */
  vocabularyOverflow?: VocabularyOverflow[];
  /**
   * The refit after the gate (TRAINING_REFIT, a job's `refit`): the candidate trained `epochs` more on the `rows` of
   * the held-out slice, every one of them (calibration refitted on the same `validationRows`; versions refitted before
   * 2026-12-06 held a tenth back), which the version's weights are.
   * The version's metrics are the candidate's before it.
   */
  refit?: {
    rows: number;
    validationRows: number;
    epochs: number;
    seconds: number;
    examplesPerSec: number;
    validation: TaskMetricsByName;
    /** `continued`: from the Adam state of the candidate's best epoch (absent before it was recorded: afresh). */
    optimizer?: TrainSummary['optimizer'];
    /** What happened to each learnt vocabulary (ids first seen in the slice get rows). */
    vocabularies?: VocabularyGrowth[];
    vocabularyOverflow: VocabularyOverflow[];
  };
};

/** The source of a job's data as the job named it (the queue contract's TrainingDataSource, as it was recorded). */
export type RecordedSource =
  | { kind: 'events'; from: string; to: string }
  | { kind: 'csv'; path: string }
  | { kind: 'incremental'; to: string; replay?: number };

/** The data a worker trained and judged a version on. */
export interface DatasetRecord {
  source: RecordedSource;
  /** The events trained and judged on (an incremental source resolved). */
  window?: { from: string; to: string };
  /**
   * Where the events trained on end (exclusive): the time of the first held-out event, or the window's end after a
   * refit on the held-out slice (`training.refit`). The next incremental job starts here, so that no event is trained
   * on twice nor skipped by a lineage (absent before it was recorded: the window's end is used, and those events are
   * never trained on).
   */
  trainedTo?: string;
  /**
   * Where the lineage's events start: the window's start for a job from scratch, the parent's `historyFrom` for an
   * incremental one. Replay draws from here on (bounded by TRAINING_REPLAY_DAYS).
   */
  historyFrom?: string;
  /**
   * The Postgres snapshot (pg_snapshot text, `xmin:xmax:xip,…`) the job read its events in (absent before it was
   * recorded, and for a file). An event it does not see was stored after the read: an incremental child trains on it
   * even if it occurred before `trainedTo` (see `late`).
   */
  snapshot?: string;
  /**
   * Events that occurred before the window (from the lineage's `historyFrom` to the window's start) but were stored
   * after the parent read its events (not in the parent's `snapshot`): trained on, never held out.
   */
  late?: { from: string; to: string; rows: number };
  /** Older events replayed among the training rows (an incremental job's `replay`): from where, to where, how many. */
  replay?: { from: string; to: string; rows: number };
  holdoutFraction: number;
  /** The column GAUC grouped the held-out rows by (absent before GAUC). */
  groupBy?: string | null;
  holdoutStart: string | number | null;
  skippedRows: number;
}

/**
 * What a version records of its training and evaluation (model_versions.metrics), written once when it is registered
 * (but `gate`, which a training job sets to what came of it: recordGateOutcome): by a worker (everything below but the epochs, on the held-out slice), or from an uploaded artifact's validation
 * report (`tasks`, `gates`, `examples` and the epochs; `{}` without one). Versions stored by earlier code lack the
 * parts added since, so every part is optional to a reader.
 */
export interface VersionMetrics {
  /** By task: what versions are compared by (GET /admin/models/compare). */
  tasks?: TaskMetricsByName;
  gates?: EvaluationReport['gates'];
  /** Per binary task: ECE, log loss and reliability curve before and after calibration. */
  calibration?: EvaluationReport['calibration'];
  /** Rows the metrics were measured on. */
  examples?: number;
  /** An upload: the epoch whose weights were kept, of how many, and whether early stopping ended the run. */
  bestEpoch?: number;
  epochsRun?: number;
  stoppedEarly?: boolean;
  /** Production on the same held-out slice, when it could be judged there. */
  productionHoldout?: HoldoutComparison;
  /** A warm start's parent other than production, on the same held-out slice (the gate still judges by production). */
  parentHoldout?: HoldoutComparison;
  /** The int8 serving graph against fp32 on the held-out slice: whether the version may be served in int8. */
  int8?: Int8Check;
  gate?: GateDecision;
  training?: TrainingRecord;
  dataset?: DatasetRecord;
}

/** What a worker records now: every part its evaluation produces (a retry after the commit finishes from it alone). */
export type TrainedMetrics = VersionMetrics &
  Required<Pick<VersionMetrics, 'tasks' | 'gates' | 'calibration' | 'examples' | 'gate' | 'training' | 'dataset'>>;
