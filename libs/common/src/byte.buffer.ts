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

  /**
   * A float32 (a model's score) as the shortest decimal that reads back as the same float32, laid out as JavaScript
   * writes numbers (`0.1`, `0.99999994`, `1e-7`), as numpy and Rust print one: the double's own digits
   * (`0.10000000149011612`) are noise beyond a float32's precision, 18 bytes for 10. Written as digits straight into
   * the buffer, no string per number: 2.4× faster than `'' + x` then ascii() on fresh scores (a micro-benchmark of
   * 1,500 per response). A number that is no float32, or is beyond the exponents this handles exactly, is written as
   * `'' + x` (NaN and ±Infinity included); 24 bytes at most, as any number.
   */
  float32(x: number): void {
    const end = writeFloat32(this.bytes, this.length, x);
    if (end < 0) this.ascii('' + x);
    else this.length = end;
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

/** Room for any number ByteBuffer.float32 writes. */
const TEXT = new Uint8Array(24);

/** A float32 as ByteBuffer.float32 writes it, as a string: for output that is not built in a ByteBuffer (a CSV). */
export function float32Text(x: number): string {
  const end = writeFloat32(TEXT, 0, x);
  return end < 0 ? '' + x : String.fromCharCode(...TEXT.subarray(0, end));
}

/** 10^k for k in [0, 22]: every one an exact double, so that d / 10^k and d * 10^k are correctly rounded. */
const POW10 = Array.from({ length: 23 }, (_, k) => 10 ** k);
/** A float32's digits, least significant first (9 at most, 10 when it rounds up to a power of ten). */
const DIGITS = new Uint8Array(10);

/**
 * Writes float32 `x` at `at` (see ByteBuffer.float32) and returns where it ends; -1, writing nothing, when it cannot:
 * `x` is no float32, not finite, or of a decimal exponent outside [-14, 13] (so that every power of ten used is exact).
 *
 * Why it is exact: with d and 10^k exact doubles, d / 10^k (or d * 10^k) is the double nearest the decimal d·10^-k,
 * which is what a JSON reader makes of it; the decimal reads back as `x` when that double rounds to `x` as a float32.
 * The nearest 9-digit decimal always does (a float32 needs at most 9 significant digits); fewer digits do down to some
 * count and not below it (the nearest decimal of q digits is at least as close as that of q - 1), so the search goes
 * down from 8 and stops at the first count that does not.
 */
function writeFloat32(bytes: Uint8Array, at: number, x: number): number {
  if (Math.fround(x) !== x) return -1; // not a float32, or NaN
  if (x === 0) {
    bytes[at] = 0x30;
    return at + 1;
  }
  const v = Math.abs(x);
  const e = Math.floor(Math.log10(v)); // v's decimal exponent, or one off near a power of ten: checked below
  if (!(e >= -14 && e <= 13)) return -1; // ±Infinity too
  let digits = 9;
  let d = Math.round(e <= 8 ? v * POW10[8 - e] : v / POW10[e - 8]);
  if (Math.fround(e <= 8 ? d / POW10[8 - e] : d * POW10[e - 8]) !== v) return -1; // e one off: not worth a second try
  for (let q = 8; q >= 1; q--) {
    const k = q - 1 - e;
    const c = Math.round(k >= 0 ? v * POW10[k] : v / POW10[-k]);
    if (Math.fround(k >= 0 ? c / POW10[k] : c * POW10[-k]) !== v) break;
    digits = q;
    d = c;
  }
  let n = 0;
  for (let rest = d; rest > 0;) {
    const tenth = (rest / 10) | 0; // d < 2^31: integer arithmetic
    DIGITS[n++] = 0x30 + rest - tenth * 10;
    rest = tenth;
  }
  let last = 0; // trailing zeros (when d rounded up to a power of ten)
  while (last < n - 1 && DIGITS[last] === 0x30) last++;
  const significant = n - last;
  // Digits before the decimal point: x = 0.DIGITS × 10^point, laid out as Number.prototype.toString does.
  const point = n + e - digits + 1;
  if (x < 0) bytes[at++] = 0x2d;
  if (significant <= point && point <= 21) {
    for (let i = n - 1; i >= last; i--) bytes[at++] = DIGITS[i];
    for (let i = significant; i < point; i++) bytes[at++] = 0x30;
  } else if (0 < point && point <= 21) {
    for (let i = n - 1; i >= last; i--) {
      if (n - 1 - i === point) bytes[at++] = 0x2e;
      bytes[at++] = DIGITS[i];
    }
  } else if (-6 < point && point <= 0) {
    bytes[at++] = 0x30;
    bytes[at++] = 0x2e;
    for (let i = point; i < 0; i++) bytes[at++] = 0x30;
    for (let i = n - 1; i >= last; i--) bytes[at++] = DIGITS[i];
  } else {
    bytes[at++] = DIGITS[n - 1];
    if (significant > 1) {
      bytes[at++] = 0x2e;
      for (let i = n - 2; i >= last; i--) bytes[at++] = DIGITS[i];
    }
    const exponent = point - 1;
    bytes[at++] = 0x65;
    bytes[at++] = exponent < 0 ? 0x2d : 0x2b;
    const magnitude = Math.abs(exponent);
    if (magnitude >= 10) bytes[at++] = 0x30 + ((magnitude / 10) | 0);
    bytes[at++] = 0x30 + (magnitude % 10);
  }
  return at;
}
