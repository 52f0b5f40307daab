import { createHash } from 'node:crypto';

import type { Calibration } from '../calibration/calibration';
import { PreprocessingState } from '../data/preprocessor';
import { ModelSpec } from '../model-spec/model-spec.schema';

/**
 * The model artifact: one self-contained binary (spec, preprocessing state, weights), checked by sha256.
 *
 *   bytes 0-7    magic "MMOEART\0"
 *   bytes 8-11   format version (uint32 LE)
 *   bytes 12-43  sha256 of everything after byte 47
 *   bytes 44-47  header length in bytes (uint32 LE)
 *   header       UTF-8 JSON: ArtifactHeader
 *   weights      float32 LE, concatenated in header.weights order
 */
export const ARTIFACT_FORMAT_VERSION = 1;
const MAGIC = Buffer.from('MMOEART\0', 'latin1');
const PREFIX = 48;

export interface WeightEntry {
  name: string;
  shape: number[];
}

export interface ArtifactHeader {
  createdAt: string;
  spec: ModelSpec;
  preprocessing: PreprocessingState;
  weights: WeightEntry[];
  /** Per task, the calibration of its raw score; absent in artifacts written before calibration existed (= none). */
  calibration?: Calibration;
  /** Free-form facts to keep with the model (validation metrics, training summary). */
  metadata: Record<string, unknown>;
}

export interface DecodedArtifact {
  formatVersion: number;
  sha256: string;
  header: ArtifactHeader;
  weights: Map<string, Float32Array>;
}

export class ArtifactError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArtifactError';
  }
}

export function encodeArtifact(
  header: Omit<ArtifactHeader, 'weights'>,
  weights: Map<string, { shape: number[]; values: Float32Array }>,
): Buffer {
  const entries: WeightEntry[] = [...weights].map(([name, w]) => ({ name, shape: w.shape }));
  const json = Buffer.from(JSON.stringify({ ...header, weights: entries }), 'utf8');
  const blob = Buffer.alloc([...weights.values()].reduce((s, w) => s + w.values.length * 4, 0));
  let offset = 0;
  for (const { values } of weights.values()) {
    for (let i = 0; i < values.length; i++, offset += 4) blob.writeFloatLE(values[i], offset);
  }
  const body = Buffer.concat([json, blob]);
  const prefix = Buffer.alloc(PREFIX);
  MAGIC.copy(prefix, 0);
  prefix.writeUInt32LE(ARTIFACT_FORMAT_VERSION, 8);
  createHash('sha256').update(body).digest().copy(prefix, 12);
  prefix.writeUInt32LE(json.length, 44);
  return Buffer.concat([prefix, body]);
}

/** Checks magic, version and checksum, then splits the weights; it does not check them against the spec. */
export function decodeArtifact(bytes: Uint8Array): DecodedArtifact {
  const { formatVersion, header, body, headerLength } = checkedHeader(bytes);
  const weights = new Map<string, Float32Array>();
  let offset = headerLength;
  for (const { name, shape } of header.weights ?? []) {
    const size = shape.reduce((a, b) => a * b, 1);
    if (offset + size * 4 > body.length)
      throw new ArtifactError(`artifact is truncated: weight "${name}" runs past the end`);
    const values = new Float32Array(size);
    for (let i = 0; i < size; i++, offset += 4) values[i] = body.readFloatLE(offset);
    weights.set(name, values);
  }
  if (offset !== body.length) throw new ArtifactError(`artifact has ${body.length - offset} unexpected trailing bytes`);
  return { formatVersion, sha256: sha256Hex(bytes), header, weights };
}

/**
 * The header alone (spec, preprocessing, weight list), with the same checks as decodeArtifact: what a server that
 * scores through ONNX Runtime needs, without decoding the weights.
 */
export function readArtifactHeader(bytes: Uint8Array): ArtifactHeader {
  return checkedHeader(bytes).header;
}

function checkedHeader(bytes: Uint8Array): {
  formatVersion: number;
  header: ArtifactHeader;
  body: Buffer;
  headerLength: number;
} {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < PREFIX || !buf.subarray(0, 8).equals(MAGIC))
    throw new ArtifactError('not an MMoE model artifact (bad magic bytes)');
  const formatVersion = buf.readUInt32LE(8);
  if (formatVersion !== ARTIFACT_FORMAT_VERSION) {
    throw new ArtifactError(
      `artifact format version ${formatVersion} is not supported (this build reads version ${ARTIFACT_FORMAT_VERSION})`,
    );
  }
  const expected = buf.subarray(12, 44).toString('hex');
  const body = buf.subarray(PREFIX);
  const actual = createHash('sha256').update(body).digest('hex');
  if (actual !== expected) throw new ArtifactError(`artifact is corrupted: sha256 is ${actual}, expected ${expected}`);
  const headerLength = buf.readUInt32LE(44);
  if (headerLength > body.length) throw new ArtifactError('artifact is corrupted: header length exceeds the file');
  try {
    const header = JSON.parse(body.subarray(0, headerLength).toString('utf8')) as ArtifactHeader;
    return { formatVersion, header, body, headerLength };
  } catch (e) {
    throw new ArtifactError(`artifact header is not valid JSON: ${(e as Error).message}`);
  }
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
