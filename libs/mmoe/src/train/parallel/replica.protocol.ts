import { EncodedDataset, PreprocessingState } from '../../data/preprocessor';
import { ModelSpec } from '../../model-spec/model-spec.schema';
import { AdamState } from '../../model/network';
import { ExchangeBuffers } from './gradient-exchange';

/** Main thread → replica thread. The dataset's arrays live in SharedArrayBuffers: posting them shares, not copies. */
export type ReplicaCommand =
  | {
      kind: 'init';
      spec: ModelSpec;
      preprocessing: PreprocessingState;
      weights: Map<string, Float32Array>;
      /** Adam's state to go on from (TrainOptions.optimizer): every replica applies the same steps. */
      optimizerState?: AdamState;
      data: EncodedDataset;
      exchange: ExchangeBuffers;
      /** The epoch's shuffled row order, written by the main thread before each epoch. */
      order: SharedArrayBuffer;
      replicas: number;
      replica: number;
      size: number;
    }
  | { kind: 'epoch'; steps: number };

/** `outOfMemory`: the failure was a WasmMemoryError (a class does not cross threads), which the runner throws again. */
export type ReplicaReply = { kind: 'ready' } | { kind: 'failed'; message: string; outOfMemory?: boolean };
