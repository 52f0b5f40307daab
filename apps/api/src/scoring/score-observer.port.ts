import type { ServingModel } from '../models/serving-model';
import type { ScoreRequestDto } from './dto/score.dto';
import type { Ranking } from './ranking';

/** A score that was just served: references to what the request already built, nothing copied. */
export interface ServedScore {
  requestId: string;
  request: ScoreRequestDto;
  model: ServingModel;
  /** The response's ranking, by column (per-task scores in request order); never mutated after the response. */
  ranking: Ranking;
}

/**
 * What scoring tells the rest of the service about each served score (prediction logging, shadow scoring). It is
 * called on the request path, so an implementation must do O(1) work there and defer the rest.
 */
export interface ScoreObserver {
  served(score: ServedScore): void;
}

export const SCORE_OBSERVER = Symbol('ScoreObserver');
