import { withCalibration } from '../calibration/calibrated.scorer';
import { MultiTaskModel } from '../mmoe.model';
import { loadOnnxRuntime, OnnxScorer, OnnxScorerOptions } from './onnx.scorer';
import { Scorer, ScoringEngine } from './scorer';
import { TfjsScorer } from './tfjs.scorer';

/**
 * A scorer for the model on the preferred engine. onnxruntime runs `onnx` (exported from the model when not given);
 * where onnxruntime-node cannot be loaded, the model's tfjs network scores instead, silently: `.engine` tells which.
 * An invalid or mismatching `onnx` is an error, not a reason to fall back. Either engine's raw scores go through the
 * model's calibration.
 */
export async function createScorer(
  model: MultiTaskModel,
  onnx?: Uint8Array,
  preferred: ScoringEngine = 'onnxruntime',
  options: OnnxScorerOptions = {},
): Promise<Scorer> {
  const engine =
    preferred === 'onnxruntime' && (await loadOnnxRuntime())
      ? await OnnxScorer.create(onnx ?? model.toOnnx(), model.spec, model.network.preprocessing, options)
      : new TfjsScorer(model, { batchSize: options.batchSize });
  return withCalibration(engine, model.calibration, model.spec.tasks);
}
