/**
 * Bytes written into one buffer off V8's heap that grows (doubling) and is reused from write to write: encoders that
 * run per response or per batch (the API's JSON, the prediction log's COPY text) write here rather than building
 * strings, whose ropes and flattening were most of their garbage. Every write but utf8's assumes room was made by
 * reserve() (per item, not per piece); utf8's caller reserves 3 bytes per UTF-16 unit.
 */
export class ByteBuffer {
  private bytes = Buffer.allocUnsafeSlow(64 * 1024);
  private length = 0;

  /** Starts over: what was written is dropped (the buffer kept). */
  clear(): void {
    this.length = 0;
  }

  /** Room for `n` more bytes. */
  reserve(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    this.checkRoom(); // before growing, which would copy what fitted and leave the rest unwritten
    const grown = Buffer.allocUnsafeSlow(Math.max(2 * this.bytes.length, this.length + n));
    this.bytes.copy(grown, 0, 0, this.length);
    this.bytes = grown;
  }

  /** One byte. */
  byte(b: number): void {
    this.bytes[this.length++] = b;
  }

  /** A string known to be ASCII (punctuation, numbers), byte by byte. */
  ascii(s: string): void {
    const { bytes } = this;
    let at = this.length;
    for (let i = 0; i < s.length; i++) bytes[at++] = s.charCodeAt(i);
    this.length = at;
  }

  /** Bytes encoded once. */
  raw(b: Uint8Array): void {
    this.bytes.set(b, this.length);
    this.length += b.length;
  }

  /** Any string, as UTF-8. */
  utf8(s: string): void {
    this.length += this.bytes.write(s, this.length, 'utf8');
  }

  /** What was written since clear(): a view, valid until the next write or clear(). */
  contents(): Buffer {
    this.checkRoom();
    return this.bytes.subarray(0, this.length);
  }

  /** A copy of what was written since clear(), for its caller to own. */
  copy(): Buffer {
    this.checkRoom();
    const out = Buffer.allocUnsafe(this.length);
    this.bytes.copy(out, 0, 0, this.length);
    return out;
  }

  /**
   * byte() and ascii() do not check their bounds (a check per byte on the hot path): a writer that reserved too little
   * has lost bytes past the end, and what it wrote must fail rather than go out with them missing.
   */
  private checkRoom(): void {
    if (this.length > this.bytes.length)
      throw new Error(`wrote ${this.length} bytes into ${this.bytes.length}: room was not reserved for them`);
  }
}
