import type { EncodedDataset } from '../data/preprocessor';
import { auc } from '../eval/metrics';
import { exportOnnx, type ExportSource } from '../export/onnx.exporter';
import { taskType } from '../tasks/task-types';
import { OnnxScorer } from './onnx.scorer';

/** Largest loss of holdout AUC, on any binary task, that an int8 graph may cost to be served. */
export const INT8_AUC_TOLERANCE = 0.001;

/** The int8 graph against fp32 on a version's holdout: what decides whether it may be served (see servingPrecision). */
export interface Int8Check {
  /** Per binary task, the holdout AUC of each graph's scores. */
  auc: Record<string, { fp32: number; int8: number }>;
  /** max over the tasks of fp32 − int8 AUC (negative: int8 ranked better). */
  maxAucDrop: number;
  tolerance: number;
  eligible: boolean;
  rows: number;
}

/**
 * Scores `holdout` with the fp32 and the int8 row graph of `source` on onnxruntime (uncalibrated: calibration is
 * monotonic, it would not change an AUC). Undefined without a binary task with both classes in the holdout.
 */
export async function checkInt8(source: ExportSource, holdout: EncodedDataset): Promise<Int8Check | undefined> {
  const { spec, preprocessing } = source;
  const scored = async (precision: 'fp32' | 'int8') => {
    const scorer = await OnnxScorer.create(exportOnnx(source, 'rows', precision), spec, preprocessing);
    try {
      return (await scorer.score(holdout)).scores;
    } finally {
      await scorer.dispose();
    }
  };
  const [fp32, int8] = [await scored('fp32'), await scored('int8')];
  const aucs: Int8Check['auc'] = {};
  spec.tasks.forEach((task, t) => {
    if (taskType(task).metric !== 'auc') return;
    const labels = holdout.labels[t];
    const mask = Uint8Array.from(labels, (y) => (Number.isNaN(y) ? 0 : 1));
    const pair = { fp32: auc(fp32[t], labels, mask), int8: auc(int8[t], labels, mask) };
    if (Number.isFinite(pair.fp32) && Number.isFinite(pair.int8)) aucs[task.name] = pair;
  });
  const drops = Object.values(aucs).map((a) => a.fp32 - a.int8);
  if (drops.length === 0) return undefined;
  const maxAucDrop = Math.max(...drops);
  return {
    auc: aucs,
    maxAucDrop,
    tolerance: INT8_AUC_TOLERANCE,
    eligible: maxAucDrop <= INT8_AUC_TOLERANCE,
    rows: holdout.size,
  };
}
