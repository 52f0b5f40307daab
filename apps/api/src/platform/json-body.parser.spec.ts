import { charsetProblem, depthExceededAt, encodingProblem } from './json-body.parser';

describe('json body parser rules', () => {
  it('reads UTF-8 only, and bounds the nesting', () => {
    expect(charsetProblem('application/json; charset=UTF-8')).toBeUndefined();
    expect(charsetProblem('application/json; charset="latin1"')).toMatch(/charset "latin1" is not supported/);
    expect(encodingProblem(undefined)).toBeUndefined();
    expect(encodingProblem('identity')).toBeUndefined();
    expect(encodingProblem('gzip')).toMatch(/content-encoding "gzip" is not supported/);
    expect(depthExceededAt('[[["[[[["]]]]', 3)).toBe(-1);
    expect(depthExceededAt('{"a":[{"b":[1]}]}', 3)).toBe(11);
  });
});
