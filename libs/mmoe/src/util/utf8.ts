import { isUtf8 } from 'node:buffer';

/**
 * Where the first byte sequence that is not UTF-8 starts, or -1: the one locator of the CSV reader, the spec loader
 * and the API's body parser (each asks it only of bytes isUtf8 refused, so its walk is off the common path).
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

/** A text file's encoding, by its byte order mark: UTF-16 of either byte order, else UTF-8. */
export function byteOrderMark(bytes: Uint8Array): 'utf8' | 'utf16le' | 'utf16be' {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return 'utf16le';
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return 'utf16be';
  return 'utf8';
}

/** Byte offset of the first surrogate without its pair in little-endian code units, or -1. */
export function loneSurrogateAt(units: Buffer): number {
  for (let i = 0; i + 1 < units.length; i += 2) {
    const unit = units.readUInt16LE(i);
    if (unit < 0xd800 || unit >= 0xe000) continue;
    const next = i + 3 < units.length ? units.readUInt16LE(i + 2) : -1;
    if (unit >= 0xdc00 || next < 0xdc00 || next >= 0xe000) return i;
    i += 2;
  }
  return -1;
}

/**
 * A whole small text file (a spec) as a string: UTF-8, or UTF-16 of either byte order after its byte order mark, the
 * mark dropped (a UTF-8 one too). Bytes that are not text in that encoding throw, naming the first one, rather than
 * be read as U+FFFD.
 */
export function decodeTextFile(bytes: Buffer): string {
  const encoding = byteOrderMark(bytes);
  if (encoding === 'utf8') {
    if (!isUtf8(bytes)) throw new Error(`not valid UTF-8 (byte ${invalidUtf8At(bytes) + 1} of the file)`);
    return bytes.toString('utf8').replace(/^\uFEFF/, '');
  }
  // An odd byte at the end is half a code unit.
  if (bytes.length % 2 === 1) throw new Error(`not valid UTF-16 (byte ${bytes.length} of the file)`);
  const units = encoding === 'utf16be' ? Buffer.from(bytes).swap16() : bytes;
  const at = loneSurrogateAt(units);
  if (at >= 0) throw new Error(`not valid UTF-16 (byte ${at + 1} of the file)`);
  return units.toString('utf16le', 2);
}
