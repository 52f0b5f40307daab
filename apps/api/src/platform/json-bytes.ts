import { ByteBuffer } from '@app/common';

/** Printable ASCII but `"` and `\`: a string of only these is its own JSON between quotes. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * JSON written as UTF-8 bytes into one buffer that every response reuses (the answer is a copy of its bytes, off V8's
 * heap): building a response's JSON as a string allocated 5× its size in the young generation (ropes, then flattened
 * to measure and write it), the largest share of a score request's garbage (see score-response.serializer.ts).
 */
export class JsonBytes extends ByteBuffer {
  /** A number as JSON.stringify writes it (a non-finite one is null); 24 bytes at most. */
  number(x: number): void {
    this.ascii(Number.isFinite(x) ? '' + x : 'null');
  }

  /** A float32 (a score) as ByteBuffer.float32 writes it; a non-finite one is null, as JSON.stringify writes it. */
  override float32(x: number): void {
    if (Number.isFinite(x)) super.float32(x);
    else this.ascii('null');
  }

  /**
   * The most `s` takes as a JSON string: quotes, and 6 bytes per UTF-16 unit (a `\u001f` escape; 3 at most as UTF-8).
   */
  static maxStringBytes(s: string): number {
    return 6 * s.length + 2;
  }

  /**
   * A string as a JSON string, room made for it here (its length is not known ahead): between quotes as it is when
   * nothing in it needs escaping, else as UTF-8. Within an item of a rows encoder, the item has made the room.
   */
  string(s: string): void {
    if (PLAIN.test(s)) {
      this.reserve(s.length + 2);
      this.byte(0x22);
      this.ascii(s);
      this.byte(0x22);
    } else {
      const json = JSON.stringify(s);
      this.reserve(3 * json.length);
      this.utf8(json);
    }
  }
}
