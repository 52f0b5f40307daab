import { isUtf8 } from 'node:buffer';

/**
 * Where the first byte sequence that is not UTF-8 starts, or -1: the one locator of the CSV reader and the API's
 * body parser (both ask it only of bytes isUtf8 refused, so its walk is off the common path).
 */
export function invalidUtf8At(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i];
    const length = b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0;
    // isUtf8 of the one sequence refuses what the lead byte alone cannot: overlong forms, surrogates, a cut sequence.
    if (length === 0 || !isUtf8(bytes.subarray(i, i + length))) return i;
    i += length;
  }
  return -1;
}
