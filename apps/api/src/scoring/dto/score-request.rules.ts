import { MAX_TASK_WEIGHT } from '@app/mmoe/serving';

import { DistinctStrings } from '../../platform/distinct-strings.checker';
import {
  MAX_ID_LENGTH,
  postgresTextProblem,
  requestValueError,
  textProblemIn,
} from '../../platform/postgres-text.validator';
import {
  isBoundedNumber,
  isShortText,
  isStringList,
  MAX_RECORD_ENTRIES,
  MAX_RECORD_KEY_LENGTH,
} from '../../platform/validation';
import { MAX_CANDIDATES } from './score-request.limits';

const FIELDS = new Set(['userId', 'itemIds', 'context', 'objectiveWeights', 'fusion', 'explain']);

/**
 * Whether a score body passes every rule of ScoreRequestDto's decorators, in one pass: the scoring route's fast
 * path. It must never accept what class-validator refuses (score-request.rules.spec.ts compares them); a body it
 * refuses goes through class-validator, which decides and writes the 400's messages, so a rare body refused here but
 * valid there (ids whose length class-validator counts in code points) is merely slower.
 */
export function isValidScoreRequest(body: unknown): boolean {
  if (!isPlainObject(body)) return false;
  for (const key in body) if (!FIELDS.has(key)) return false;
  const { userId, itemIds, context, objectiveWeights, fusion, explain } = body;
  return (
    isEntityId(userId) &&
    areUniqueIds(itemIds) &&
    (context === undefined || isFlatRecord(context, acceptsContextValue)) &&
    (objectiveWeights === undefined || isFlatRecord(objectiveWeights, isTaskWeight)) &&
    // Only its shape, size and text here (IsObject, and the rules of every route on any object); the rule itself is
    // checked against the model's tasks by the scoring service.
    (fusion === undefined || (isPlainObject(fusion) && requestValueError(fusion, 'fusion') === undefined)) &&
    (explain === undefined || typeof explain === 'boolean')
  );
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isEntityId(value: unknown): boolean {
  return (
    typeof value === 'string' &&
    value.length >= 1 &&
    value.length <= MAX_ID_LENGTH &&
    postgresTextProblem(value) === undefined
  );
}

const distinct = new DistinctStrings();

function areUniqueIds(value: unknown): boolean {
  if (!Array.isArray(value) || value.length < 1 || value.length > MAX_CANDIDATES) return false;
  for (const id of value) if (!isEntityId(id)) return false;
  return distinct.firstRepeat(value) === -1;
}

function isFlatRecord(value: unknown, accepts: (v: unknown) => boolean): boolean {
  if (!isPlainObject(value)) return false;
  let entries = 0;
  for (const key in value) {
    if (++entries > MAX_RECORD_ENTRIES || key.length > MAX_RECORD_KEY_LENGTH || !accepts(value[key])) return false;
  }
  return textProblemIn(value) === undefined;
}

function isTaskWeight(value: unknown): boolean {
  return typeof value === 'number' && Math.abs(value) <= MAX_TASK_WEIGHT;
}

function acceptsContextValue(value: unknown): boolean {
  return isShortText(value) || typeof value === 'boolean' || isBoundedNumber(value) || isStringList(value);
}
