import type { RequestBatch } from '../data/encoded-slice';
import { EncodedDataset } from '../data/preprocessor';
import { ScoreOptions, Scorer, ScoreResult } from '../serving/scorer';
import { calibrateInPlace, Calibration } from './calibration';

/**
 * The model's output stage: the stored calibration applied to the raw task scores of any engine. Every scorer is
 * wrapped in it (createScorer does, and so must any other place that builds a scorer), so the engines stay
 * calibration-free and ONNX Runtime and tfjs serve the same calibrated numbers. In place: the result's arrays are the
 * scorer's own, fresh per call.
 */
export function applyCalibration(result: ScoreResult, calibration: Calibration | undefined): ScoreResult {
  calibration?.forEach((c, t) => calibrateInPlace(c, result.scores[t]));
  return result;
}

export function withCalibration(scorer: Scorer, calibration: Calibration | undefined): Scorer {
  if (!calibration?.some((c) => c !== null)) return scorer;
  return {
    engine: scorer.engine,
    score: async (data: EncodedDataset, options?: ScoreOptions) =>
      applyCalibration(await scorer.score(data, options), calibration),
    scoreRequest: async (batch: RequestBatch, options?: ScoreOptions) =>
      applyCalibration(await scorer.scoreRequest(batch, options), calibration),
    estimate: scorer.estimate && ((rows: number, aheadRows?: number) => scorer.estimate!(rows, aheadRows)),
    dispose: () => scorer.dispose(),
  };
}
