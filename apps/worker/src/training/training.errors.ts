import { DomainError, UnavailableError } from '@app/common';
import { SpecValidationError, WasmMemoryError } from '@app/mmoe';

/**
 * A training job that cannot succeed however often it runs (too little data, a bad spec, a missing file): the worker
 * fails it at once with this message instead of retrying it.
 */
export class TrainingInputError extends DomainError {
  override readonly name = 'TrainingInputError';
}

/**
 * An incremental window that holds no event yet, or too few to train on (checkTables): a scheduled run skips it, a
 * manual job fails with this message.
 */
export class EmptyWindowError extends TrainingInputError {
  /** `shortOf`: the window has events, but too few to train on yet (why, as checkTables says it). */
  constructor(
    readonly parentVersionId: number,
    readonly window: { from: string; to: string },
    shortOf?: string,
  ) {
    const where = `the incremental window [${window.from}, ${window.to}) since version ${parentVersionId}'s training data`;
    super(
      shortOf
        ? `source.to: too little in ${where} to train on yet: ${shortOf}`
        : `source.to: no new events in ${where}`,
    );
  }
}

/** The job was cancelled, or this worker lost it to another after a stall: it stops without registering anything. */
export class TrainingStoppedError extends Error {
  override readonly name = 'TrainingStoppedError';
}

/**
 * Errors that another attempt would only repeat: domain errors (bad input, a version that does not exist, a refused
 * transition) and a stopped job. Anything else (Postgres or Redis unreachable, a service unavailable for now …) is
 * retried with back-off.
 */
export function isPermanent(error: unknown): boolean {
  return (
    (error instanceof DomainError && !(error instanceof UnavailableError)) || error instanceof TrainingStoppedError
  );
}

/**
 * The model library's errors that are the job's own input's fault, as a TrainingInputError: a spec it refuses (some
 * only once the data's vocabularies are fitted), and a network and batch too large for wasm's memory when the job
 * had the memory to itself (`soleJob`: the same job would run out again). Jobs running side by side in one process
 * share its wasm memory, so there another job may have taken it: retried. Anything else as it is.
 */
export function asInputError(error: unknown, { soleJob }: { soleJob: boolean }): unknown {
  return error instanceof SpecValidationError || (error instanceof WasmMemoryError && soleJob)
    ? new TrainingInputError(error.message)
    : error;
}
