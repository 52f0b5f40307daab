import { ConflictError, UnavailableError } from '@app/common';

import { isPermanent, TrainingInputError, TrainingStoppedError } from './training.errors';

describe('isPermanent', () => {
  it('fails at once what another attempt would only repeat', () => {
    expect(isPermanent(new TrainingInputError('too few rows'))).toBe(true);
    expect(isPermanent(new ConflictError('version 3 is archived'))).toBe(true);
    expect(isPermanent(new TrainingStoppedError('cancelled'))).toBe(true);
  });

  it('retries what may succeed later: an unavailable service, a store that cannot be reached', () => {
    expect(isPermanent(new UnavailableError('no production model is loaded'))).toBe(false);
    expect(isPermanent(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe(false);
  });
});
