import { charsetProblem, depthExceededAt, invalidUtf8At } from './json-body.parser';

describe('json body parser rules', () => {
  it('finds where the first sequence that is not UTF-8 starts', () => {
    const at = (...parts: (string | number[])[]) =>
      invalidUtf8At(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Uint8Array.from(p)))));
    expect(at('{"id":"é😀"}')).toBe(-1);
    expect(at('{"id":"a', [0xff], '"}')).toBe(8); // never a lead byte
    expect(at('{"id":"a', [0xf0, 0x9f, 0x98], '"}')).toBe(8); // a 4-byte character cut to 3
    expect(at('ab', [0xc0, 0xaf])).toBe(2); // overlong '/'
    expect(at('ab', [0xed, 0xa0, 0x80])).toBe(2); // a surrogate, encoded
    expect(at('é', [0x80])).toBe(2); // a continuation byte alone
    expect(at('ab', [0xe2, 0x82])).toBe(2); // cut at the end
  });

  it('reads UTF-8 only, and bounds the nesting', () => {
    expect(charsetProblem('application/json; charset=UTF-8')).toBeUndefined();
    expect(charsetProblem('application/json; charset="latin1"')).toMatch(/charset "latin1" is not supported/);
    expect(depthExceededAt('[[["[[[["]]]]', 3)).toBe(-1);
    expect(depthExceededAt('{"a":[{"b":[1]}]}', 3)).toBe(11);
  });
});
