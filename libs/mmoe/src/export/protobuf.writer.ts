/**
 * A minimal protocol-buffers encoder: the wire types an ONNX model needs (varint, fixed32, length-delimited).
 * Nested messages are kept as chunks and copied once, by finish(), so megabytes of weights are not re-copied at every
 * level of nesting.
 */
export class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  private pending: number[] = [];
  private size = 0;

  /** Encoded size in bytes so far. */
  get length(): number {
    return this.size + this.pending.length;
  }

  /** A varint field (int32, int64, enum); negative values take ten bytes, as int64 two's complement. */
  int(field: number, value: number): this {
    this.tag(field, 0);
    this.varint(value);
    return this;
  }

  float(field: number, value: number): this {
    this.tag(field, 5);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    this.pending.push(...bytes);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, 2);
    this.varint(value.length);
    this.append(value);
    return this;
  }

  /** A repeated integer field in packed form (the only form proto3 parsers must accept for a packed field). */
  packedInts(field: number, values: readonly number[]): this {
    const body = new ProtoWriter();
    values.forEach((v) => body.varint(v));
    return this.message(field, body);
  }

  message(field: number, body: ProtoWriter): this {
    this.tag(field, 2);
    this.varint(body.length);
    body.flush();
    body.chunks.forEach((c) => this.append(c));
    return this;
  }

  finish(): Uint8Array {
    this.flush();
    const out = new Uint8Array(this.size);
    let offset = 0;
    for (const c of this.chunks) {
      out.set(c, offset);
      offset += c.length;
    }
    return out;
  }

  private tag(field: number, wireType: number): void {
    this.varint(field * 8 + wireType);
  }

  private varint(value: number): void {
    if (!Number.isSafeInteger(value)) throw new Error(`not an integer: ${value}`);
    let v = BigInt.asUintN(64, BigInt(value));
    while (v > 0x7fn) {
      this.pending.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.pending.push(Number(v));
  }

  private append(bytes: Uint8Array): void {
    // Small values join the pending bytes; large ones (weights) are kept by reference rather than copied.
    if (bytes.length < 64) {
      for (const b of bytes) this.pending.push(b);
      return;
    }
    this.flush();
    this.chunks.push(bytes);
    this.size += bytes.length;
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    this.chunks.push(Uint8Array.from(this.pending));
    this.size += this.pending.length;
    this.pending = [];
  }
}
