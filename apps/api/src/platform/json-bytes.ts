/** Printable ASCII but `"` and `\`: a string of only these is its own JSON between quotes. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * JSON written as UTF-8 bytes into one buffer that every response reuses (the answer is a copy of its bytes, off V8's
 * heap): building a response's JSON as a string allocated 5× its size in the young generation (ropes, then flattened
 * to measure and write it), the largest share of a score request's garbage (see score-response.serializer.ts).
 */
export class JsonBytes {
  private bytes = Buffer.allocUnsafe(64 * 1024);
  private length = 0;

  start(): void {
    this.length = 0;
  }

  /** Room for `n` more bytes: the writes below but `string` assume it (reserved per item, not per piece). */
  reserve(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    const grown = Buffer.allocUnsafe(Math.max(2 * this.bytes.length, this.length + n));
    this.bytes.copy(grown, 0, 0, this.length);
    this.bytes = grown;
  }

  /** A string known to be ASCII (punctuation, numbers), byte by byte. */
  ascii(s: string): void {
    const { bytes } = this;
    let at = this.length;
    for (let i = 0; i < s.length; i++) bytes[at++] = s.charCodeAt(i);
    this.length = at;
  }

  /** One ASCII byte. */
  byte(b: number): void {
    this.bytes[this.length++] = b;
  }

  /** Bytes encoded once (a DTO's keys). */
  raw(b: Uint8Array): void {
    this.bytes.set(b, this.length);
    this.length += b.length;
  }

  /** A number as JSON.stringify writes it (a non-finite one is null); 24 bytes at most. */
  number(x: number): void {
    this.ascii(Number.isFinite(x) ? '' + x : 'null');
  }

  /**
   * A string as a JSON string, room made for it here (its length is not known ahead): between quotes as it is when
   * nothing in it needs escaping, else as UTF-8.
   */
  string(s: string): void {
    if (PLAIN.test(s)) {
      this.reserve(s.length + 2);
      this.bytes[this.length++] = 0x22;
      this.ascii(s);
      this.bytes[this.length++] = 0x22;
    } else {
      const json = JSON.stringify(s);
      this.reserve(3 * json.length);
      this.length += this.bytes.write(json, this.length, 'utf8');
    }
  }

  /** A copy of what was written, for the response to own. */
  done(): Buffer {
    const out = Buffer.allocUnsafe(this.length);
    this.bytes.copy(out, 0, 0, this.length);
    return out;
  }
}
