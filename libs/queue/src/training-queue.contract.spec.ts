import { readTrainingOutcome, type SkippedTrainingRun, type TrainingJobResult } from './training-queue.contract';

describe('readTrainingOutcome', () => {
  const result: TrainingJobResult = {
    versionId: 7,
    candidate: { click: { auc: 0.71 } },
    decision: 'canary',
    reason: 'beats production',
    examples: { train: 900, holdout: 100 },
    trainingSeconds: 12.5,
  };
  const skip: SkippedTrainingRun = {
    skipped: { reason: 'no new events', parentVersionId: 3, window: { from: '2026-12-01', to: '2026-12-02' } },
  };

  it('reads a trained version as its result and a skipped run as its skip', () => {
    expect(readTrainingOutcome(result)).toEqual({ result, skipped: null });
    expect(readTrainingOutcome(skip)).toEqual({ result: null, skipped: skip.skipped });
  });

  it.each([
    ['an unfinished or failed job (null)', null],
    ['JSON Bull could not parse (undefined)', undefined],
    ["Bull's 0 for an empty return", 0],
    ['a string', 'done'],
    ['an array', [result]],
    ['an object of neither shape', { ok: true }],
    ['a version id that is no number', { ...result, versionId: '7' }],
    ['a skip that is no object', { skipped: 'no new events' }],
  ])('reads no outcome, and does not throw, for %s', (_name, returnvalue) => {
    expect(readTrainingOutcome(returnvalue)).toEqual({ result: null, skipped: null });
  });
});
