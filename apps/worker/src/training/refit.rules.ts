import type { AppConfig } from '@app/config';
import { MultiTaskModel, RawTable, type TrainedModel, type TrainOptions } from '@app/mmoe';
import type { TrainingJobPayload } from '@app/queue';

/**
 * Whether a job refits its candidate on the held-out slice once the gate has judged it: the job's `refit`, else
 * TRAINING_REFIT by the job's kind (`full`: every job but an incremental one, whose held-out events its child trains
 * on anyway).
 */
export function refitsJob(
  payload: Pick<TrainingJobPayload, 'refit' | 'source'>,
  setting: AppConfig['TRAINING_REFIT'],
): boolean {
  if (payload.refit !== undefined) return payload.refit;
  return setting === 'all' || (setting === 'full' && payload.source.kind !== 'incremental');
}

/**
 * Fewest held-out rows a refit trains on. Below it the epoch and the calibration refitted on a handful of rows would
 * fit noise: the judged candidate is registered as it is, rather than failing a job whose gate has already passed.
 */
export const MIN_REFIT_ROWS = 10;

/** Whether a job refits (refitsJob) on its `heldOutRows`: 'too few' when asked to, with fewer than MIN_REFIT_ROWS. */
export function refitOf(
  payload: Pick<TrainingJobPayload, 'refit' | 'source'>,
  setting: AppConfig['TRAINING_REFIT'],
  heldOutRows: number,
): 'refit' | 'none' | 'too few' {
  if (!refitsJob(payload, setting)) return 'none';
  return heldOutRows >= MIN_REFIT_ROWS ? 'refit' : 'too few';
}

/**
 * The candidate trained one epoch more on the held-out rows, so that the version served has learnt from the latest
 * events (a full retrain otherwise never trains on the last `holdoutFraction` of its window). A warm start from the
 * candidate: its weights, vocabularies grown by ids first seen in the slice, numeric scales kept, calibration refitted
 * on the slice, and the Adam state its training kept (`keepOptimizer`) going on, as in one more epoch of its run
 * (but a loss balancing method's learnt task weights, which start again). Every row of the slice is trained on, none
 * held back for validation: the version then records its data as ending at the window's end, where its child starts,
 * so a row held back would be trained on by no version. The model keeps the candidate's spec, its job's training
 * overrides included; the version records the spec without them (jobSpecOf). The candidate's weights are only read;
 * its kept Adam state is dropped once used.
 */
export async function refitOnHoldout(
  candidate: MultiTaskModel,
  holdout: RawTable,
  options: Omit<TrainOptions, 'optimizer'> = {},
): Promise<TrainedModel> {
  const refitted = await MultiTaskModel.train(candidate.spec, holdout, holdout, {
    ...options,
    epochs: 1,
    parent: candidate,
    continueOptimizer: true,
  });
  // Gone on with: a candidate is refitted once, and its state is twice its weights.
  candidate.network.optimizerState = undefined;
  return refitted;
}
