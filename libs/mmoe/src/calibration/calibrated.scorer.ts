import type { RequestBatch } from '../data/encoded-slice';
import { EncodedDataset } from '../data/preprocessor';
import type { TaskSpec } from '../model-spec/model-spec.schema';
import { ScoreOptions, Scorer, ScoreResult } from '../serving/scorer';
import { calibrateInPlace, Calibration } from './calibration';

/** The model's output stage, in place over a scorer's result (its arrays are the scorer's own, fresh per call). */
export type OutputStage = (result: ScoreResult) => ScoreResult;

/**
 * The stored calibration applied to the raw task scores of any engine, or undefined when nothing is calibrated. Then
 * each funnel step (conditionalOn, dependsOn) is held at or below the step before it, parents first: each task is
 * calibrated on its own, and isotonic's steps put 7 rows in 1,000 of an AITM funnel's conversion above its click.
 * Every scorer is wrapped in it (createScorer does, and so must any other place that builds a scorer), so the engines
 * stay calibration-free and ONNX Runtime and tfjs serve the same calibrated numbers.
 */
export function outputStage(
  calibration: Calibration | undefined,
  tasks: readonly Pick<TaskSpec, 'name' | 'conditionalOn' | 'dependsOn'>[],
): OutputStage | undefined {
  if (!calibration?.some((c) => c !== null)) return undefined;
  const steps = funnelSteps(tasks);
  return (result) => {
    calibration.forEach((c, t) => calibrateInPlace(c, result.scores[t]));
    for (const [t, parent] of steps) {
      const [step, before] = [result.scores[t], result.scores[parent]];
      for (let i = 0; i < step.length; i++) if (step[i] > before[i]) step[i] = before[i];
    }
    return result;
  };
}

/** [task, the funnel step before it] for every funnel step, each after its parent's own pair (chains in order). */
function funnelSteps(tasks: readonly Pick<TaskSpec, 'name' | 'conditionalOn' | 'dependsOn'>[]): [number, number][] {
  const parentOf = tasks.map((t) => tasks.findIndex((p) => p.name === (t.conditionalOn ?? t.dependsOn)));
  const depth = (t: number): number => (parentOf[t] < 0 ? 0 : 1 + depth(parentOf[t]));
  return parentOf
    .flatMap((parent, t): [number, number][] => (parent < 0 ? [] : [[t, parent]]))
    .sort(([a], [b]) => depth(a) - depth(b));
}

export function withCalibration(
  scorer: Scorer,
  calibration: Calibration | undefined,
  tasks: readonly Pick<TaskSpec, 'name' | 'conditionalOn' | 'dependsOn'>[],
): Scorer {
  const stage = outputStage(calibration, tasks);
  if (!stage) return scorer;
  return {
    engine: scorer.engine,
    score: async (data: EncodedDataset, options?: ScoreOptions) => stage(await scorer.score(data, options)),
    scoreRequest: async (batch: RequestBatch, options?: ScoreOptions) =>
      stage(await scorer.scoreRequest(batch, options)),
    estimate: scorer.estimate && ((rows: number, aheadRows?: number) => scorer.estimate!(rows, aheadRows)),
    dispose: () => scorer.dispose(),
  };
}
