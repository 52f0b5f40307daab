import { InvalidFieldsError } from '@app/common';
import type { InferenceEstimate } from '@app/mmoe/serving';

/** The header a caller sets its own deadline with, in milliseconds from the request's arrival (as gRPC's timeout). */
export const DEADLINE_HEADER = 'x-request-deadline-ms';
/**
 * The header a caller opts in to a degraded answer with (`true`). A header, like the deadline, because both are read
 * before the body: an overloaded process refuses a request without parsing its candidates (ScoringAdmission).
 */
export const DEGRADED_HEADER = 'x-allow-degraded';

/** Why a score request is not scored: it could not be answered in time (overloaded), or its time ran out (deadline). */
export type ShedReason = 'overloaded' | 'deadline';

export interface Refusal {
  reason: ShedReason;
  /** For an overload: seconds until the work ahead of it should be done (Retry-After, at least 1). */
  retryAfterSeconds: number;
}

/**
 * The request's time budget in ms: its `x-request-deadline-ms` header, else the configured default. A header that is
 * not a whole number from 1 to `maxMs` is a 400 naming it, not silently replaced.
 */
export function deadlineBudgetMs(header: string | undefined, defaultMs: number, maxMs: number): number {
  if (header === undefined) return defaultMs;
  const ms = /^\d+$/.test(header) ? Number(header) : NaN; // leading zeros too: the value is bounded, not its digits
  if (!(ms >= 1 && ms <= maxMs)) {
    throw new InvalidFieldsError([
      {
        field: DEADLINE_HEADER,
        message: `${DEADLINE_HEADER} must be a whole number of milliseconds from 1 to ${maxMs}`,
      },
    ]);
  }
  return ms;
}

/** What admission knows when a score request arrives. */
export interface AdmissionState {
  /** Ms left before the request's deadline. */
  remainingMs: number;
  /** Its candidates. */
  rows: number;
  /** Candidates of the requests admitted and not answered yet, and the most there may be. */
  rowsInFlight: number;
  maxRowsInFlight: number;
  /**
   * The inference engine's estimate for this request: the wait for a thread and its own pass (undefined while the
   * engine has measured nothing, or has no queue).
   */
  inference: InferenceEstimate | undefined;
}

/** Whether the caller opts in to a degraded answer: `true` or `false` (the default), else a 400 naming the header. */
export function allowsDegraded(header: string | undefined): boolean {
  if (header === undefined || header === 'false') return false;
  if (header === 'true') return true;
  throw new InvalidFieldsError([{ field: DEGRADED_HEADER, message: `${DEGRADED_HEADER} must be true or false` }]);
}

/**
 * The estimate must fit this many times in the time left: passes run slower than measured when the cores get
 * busier, and the request still has its other stages (features, ranking) and its answer to write. Under overload
 * the queue then holds half a deadline of work, which keeps the threads busy as well as a full one would, and an
 * admitted request that the estimate underrated by up to 2× is still on time.
 */
export const ESTIMATE_MARGIN = 2;

/**
 * Whether a score request is refused, and why; undefined admits it. Refused: a request whose deadline has already
 * passed; one that would take the rows in flight beyond their bound (unless none are, so that any request can run);
 * one whose inference the estimate does not finish well within its deadline (ESTIMATE_MARGIN). Refusing at once what
 * would be late anyway keeps the queue short enough for the admitted requests to be on time. Nothing ahead of a
 * request always admits it: refusing it would not make it faster, and only passes that run correct an estimate that
 * has become too long (a busy machine, a slow first pass). A request that is late all the same is dropped at its
 * deadline, before inference.
 */
export function refusalOf(state: AdmissionState): Refusal | undefined {
  const { remainingMs, rows, rowsInFlight, maxRowsInFlight, inference } = state;
  if (remainingMs <= 0) return { reason: 'deadline', retryAfterSeconds: 1 };
  if (rowsInFlight > 0 && rowsInFlight + rows > maxRowsInFlight) return { reason: 'overloaded', retryAfterSeconds: 1 };
  if (!inference || inference.waitMs === 0) return undefined;
  if (ESTIMATE_MARGIN * (inference.waitMs + inference.passMs) <= remainingMs) return undefined;
  return { reason: 'overloaded', retryAfterSeconds: Math.max(1, Math.ceil(inference.waitMs / 1000)) };
}
