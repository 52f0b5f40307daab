import { InvalidFieldsError } from '@app/common';

import { deadlineBudgetMs, refusalOf, type AdmissionState } from './admission.rules';

describe('deadlineBudgetMs', () => {
  it('takes the default without the header, and a whole number of ms up to the maximum from it', () => {
    expect(deadlineBudgetMs(undefined, 200, 5000)).toBe(200);
    expect(deadlineBudgetMs('1', 200, 5000)).toBe(1);
    expect(deadlineBudgetMs('5000', 200, 5000)).toBe(5000);
    expect(deadlineBudgetMs('0000000100', 200, 5000)).toBe(100); // the value is bounded, not its digits
  });

  it.each(['0', '5001', '-5', '1.5', '1e3', ' 50', '50ms', '', '50, 60', '9999999999', '1'.repeat(400)])(
    'refuses %p with a 400 naming the header',
    (header) => {
      const error = (() => {
        try {
          deadlineBudgetMs(header, 200, 5000);
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(InvalidFieldsError);
      expect((error as InvalidFieldsError).errors).toEqual([
        {
          field: 'x-request-deadline-ms',
          message: 'x-request-deadline-ms must be a whole number of milliseconds from 1 to 5000',
        },
      ]);
    },
  );
});

describe('refusalOf', () => {
  const idle: AdmissionState = {
    remainingMs: 200,
    rows: 500,
    rowsInFlight: 0,
    maxRowsInFlight: 50_000,
    inference: { waitMs: 0, passMs: 3 },
  };
  const behind = (waitMs: number, passMs = 3) => ({ inference: { waitMs, passMs } });

  it('admits what the estimate finishes within half its time, what has nothing ahead, and what cannot be estimated', () => {
    expect(refusalOf(idle)).toBeUndefined();
    expect(refusalOf({ ...idle, ...behind(97) })).toBeUndefined();
    expect(refusalOf({ ...idle, inference: undefined, remainingMs: 1 })).toBeUndefined();
    // A pass estimated longer than the deadline, but nothing ahead: running it now is the best there is.
    expect(refusalOf({ ...idle, ...behind(0, 500) })).toBeUndefined();
  });

  it('refuses as overloaded what the work ahead could make late, with the seconds it needs to clear', () => {
    expect(refusalOf({ ...idle, ...behind(97.5) })).toEqual({ reason: 'overloaded', retryAfterSeconds: 1 });
    expect(refusalOf({ ...idle, remainingMs: 5, ...behind(0.5, 2.5) })).toEqual({
      reason: 'overloaded',
      retryAfterSeconds: 1,
    });
    expect(refusalOf({ ...idle, remainingMs: 5000, ...behind(6500) })).toEqual({
      reason: 'overloaded',
      retryAfterSeconds: 7,
    });
  });

  it('refuses what would take the rows in flight past their bound, but never a request alone', () => {
    expect(refusalOf({ ...idle, rowsInFlight: 49_500 })).toBeUndefined();
    expect(refusalOf({ ...idle, rowsInFlight: 49_501 })).toEqual({ reason: 'overloaded', retryAfterSeconds: 1 });
    expect(refusalOf({ ...idle, rows: 60_000 })).toBeUndefined();
  });

  it('refuses for its deadline a request whose time ran out before admission', () => {
    expect(refusalOf({ ...idle, remainingMs: 0 })).toEqual({ reason: 'deadline', retryAfterSeconds: 1 });
    expect(refusalOf({ ...idle, remainingMs: -3, inference: undefined })).toEqual({
      reason: 'deadline',
      retryAfterSeconds: 1,
    });
  });

  it('at a constant load, admits what fits before the deadline in a simulated queue and refuses the rest', () => {
    // 10 ms of work per request on one thread; every request arrives at once with 200 ms to go: the queue's
    // estimate grows by 10 ms per admitted request, so exactly those that finish within half their deadline get in.
    let queuedMs = 0;
    const admitted: number[] = [];
    for (let i = 0; i < 30; i++) {
      if (!refusalOf({ ...idle, remainingMs: 200, ...behind(queuedMs, 10) })) {
        admitted.push(i);
        queuedMs += 10;
      }
    }
    expect(admitted).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});
