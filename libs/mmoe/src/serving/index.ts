/**
 * What a server scoring through ONNX Runtime needs, and nothing that loads TensorFlow.js: an API process imports
 * `@app/mmoe/serving`, and `@app/mmoe` (tfjs) only when it has to fall back to the tfjs scorer.
 */
export * from '../artifact/artifact.codec';
export { checkDeclaredNetwork } from '../artifact/artifact.rules';
export * from '../calibration/calibrated.scorer';
export * from '../calibration/calibration';
export * from '../data/preprocessor';
export * from '../eval/clustered-auc';
export * from '../eval/confidence-sequence';
export * from '../eval/delong';
export * from '../eval/metrics';
export * from '../eval/task-aggregate';
export * from '../eval/task-aggregate.codec';
export * from '../eval/live-task-metrics';
export { liveTaskMetrics, taskType, TASK_TYPES, type TaskType, type TaskTypeName } from '../tasks/task-types';
export * from '../export/onnx.exporter';
export { exportOnnxOffThread } from '../export/onnx-export.thread';
export { installedNativeBinding, NATIVE_PACKAGES } from '../backend/native-binding';
export { MAX_NUMBER_MAGNITUDE, MIN_SAMPLE_WEIGHT, RowError } from '../data/raw-table';
export * from '../model-spec/model-spec';
export * from '../model-spec/model-spec.schema';
export * from '../model-spec/feature-side';
export * from '../model-spec/task-space.rules';
export * from '../model-spec/warm-start.rules';
export * from '../model/topology';
export { fnv1a32, sha256Hex } from '../util/hash';
export { invalidUtf8At } from '../util/utf8';
export * from './inference.pool';
export * from './onnx.scorer';
export * from './scorer';
export * from '../data/encoded-slice';

/** The whole library, TensorFlow.js included, loaded on demand (a relative import: path aliases are not rewritten in dynamic imports). */
export const loadTfjsLibrary = (): Promise<typeof import('../index')> => import('../index');
export * from './precision.check';
