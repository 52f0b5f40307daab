import { ConflictError, UnavailableError } from '@app/common';
import { SpecValidationError, WasmMemoryError } from '@app/mmoe';

import { asInputError, isPermanent, TrainingInputError, TrainingStoppedError } from './training.errors';

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

describe('asInputError', () => {
  it("makes the job's own input's faults permanent: a spec refused, a network too large for wasm's memory", () => {
    for (const error of [
      new SpecValidationError([{ path: 'training.batchSize', message: 'too large for wasm' }]),
      new WasmMemoryError('training ran out of wasm memory: lower training.batchSize'),
    ]) {
      const input = asInputError(error, { soleJob: true });
      expect(input).toBeInstanceOf(TrainingInputError);
      expect((input as Error).message).toBe(error.message);
      expect(isPermanent(input)).toBe(true);
    }
    const other = new Error('connect ECONNREFUSED');
    expect(asInputError(other, { soleJob: true })).toBe(other);
  });

  it('retries running out of wasm memory beside other jobs, which share it', () => {
    const full = new WasmMemoryError('a tensor of 0.37 GiB does not fit in the wasm memory');
    expect(isPermanent(asInputError(full, { soleJob: false }))).toBe(false);
  });
});
