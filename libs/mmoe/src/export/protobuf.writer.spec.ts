import { ProtoWriter } from './protobuf.writer';

// Expected bytes are the examples of the protocol-buffers encoding guide.
const bytes = (w: ProtoWriter) => Array.from(w.finish());

describe('ProtoWriter', () => {
  it('writes varints, negative ones as ten-byte two’s complement', () => {
    expect(bytes(new ProtoWriter().int(1, 150))).toEqual([0x08, 0x96, 0x01]);
    expect(bytes(new ProtoWriter().int(2, -1))).toEqual([0x10, ...Array(9).fill(0xff), 0x01]);
    expect(bytes(new ProtoWriter().int(1, 2 ** 40))).toEqual([0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
    expect(() => new ProtoWriter().int(1, 1.5)).toThrow(/not an integer/);
  });

  it('writes floats little-endian, strings, packed integers and nested messages', () => {
    expect(bytes(new ProtoWriter().float(2, 1.5))).toEqual([0x15, 0x00, 0x00, 0xc0, 0x3f]);
    expect(bytes(new ProtoWriter().string(2, 'testing'))).toEqual([0x12, 0x07, ...Buffer.from('testing')]);
    expect(bytes(new ProtoWriter().packedInts(4, [3, 270, 86942]))).toEqual([
      0x22, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05,
    ]);
    expect(bytes(new ProtoWriter().message(3, new ProtoWriter().int(1, 150)))).toEqual([0x1a, 0x03, 0x08, 0x96, 0x01]);
  });

  it('keeps field order and lengths with large payloads nested at several levels', () => {
    const payload = Uint8Array.from({ length: 300 }, (_, i) => i % 251);
    const inner = new ProtoWriter().int(1, 7).bytes(2, payload).int(3, 9);
    const out = new ProtoWriter().message(5, new ProtoWriter().message(1, inner)).finish();
    const innerLength = 2 + 3 + 300 + 2;
    expect(inner.length).toBe(innerLength);
    expect(Array.from(out.subarray(0, 6))).toEqual([0x2a, 0xb6, 0x02, 0x0a, 0xb3, 0x02]); // lengths 310, then 307
    expect(Array.from(out.subarray(6, 11))).toEqual([0x08, 0x07, 0x12, 0xac, 0x02]);
    expect(out.subarray(11, 311)).toEqual(payload);
    expect(Array.from(out.subarray(311))).toEqual([0x18, 0x09]);
  });
});
