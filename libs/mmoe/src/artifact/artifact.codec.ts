import type { Calibration } from '../calibration/calibration';
import { PreprocessingState } from '../data/preprocessor';
import { ModelSpec } from '../model-spec/model-spec.schema';
import { sha256Hex } from '../util/hash';

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

export interface ArtifactLimits {
  /** Most float32 weights an artifact may hold (the registry's uploads pass MODEL_MAX_PARAMETERS). */
  maxParameters: number;
}

/** 100 M parameters (400 MB of float32): far beyond the models of the examples, short of exhausting a server. */
export const DEFAULT_ARTIFACT_LIMITS: ArtifactLimits = { maxParameters: 100_000_000 };

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
  for (const [name, { values }] of weights) {
    for (let i = 0; i < values.length; i++, offset += 4) {
      // A diverged training is not written down: no reader would load it (decodeArtifact refuses it).
      if (!Number.isFinite(values[i])) throw new ArtifactError(`weight ${name} holds ${values[i]} at index ${i}`);
      blob.writeFloatLE(values[i], offset);
    }
  }
  const body = Buffer.concat([json, blob]);
  const prefix = Buffer.alloc(PREFIX);
  MAGIC.copy(prefix, 0);
  prefix.writeUInt32LE(ARTIFACT_FORMAT_VERSION, 8);
  prefix.write(sha256Hex(body), 12, 'hex');
  prefix.writeUInt32LE(json.length, 44);
  return Buffer.concat([prefix, body]);
}

/**
 * Checks magic, version, checksum and the weight list (against the bytes present and the limits, before allocating
 * them), then splits the weights, every one finite; it does not check them against the spec.
 */
export function decodeArtifact(bytes: Uint8Array, limits: ArtifactLimits = DEFAULT_ARTIFACT_LIMITS): DecodedArtifact {
  const { formatVersion, header, body, headerLength } = checkedHeader(bytes, limits);
  const weights = new Map<string, Float32Array>();
  let offset = headerLength;
  for (const { name, shape } of header.weights) {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    for (let i = 0; i < size; i++, offset += 4) {
      const value = body.readFloatLE(offset);
      // A network holding NaN or infinity (a diverged training, a damaged upload) scores every item NaN.
      if (!Number.isFinite(value)) throw new ArtifactError(`weight ${name} holds ${value} at index ${i}`);
      values[i] = value;
    }
    weights.set(name, values);
  }
  return { formatVersion, sha256: sha256Hex(bytes), header, weights };
}

/**
 * The header alone (spec, preprocessing, weight list), with the same checks as decodeArtifact: what a server that
 * scores through ONNX Runtime needs, without decoding the weights.
 */
export function readArtifactHeader(
  bytes: Uint8Array,
  limits: ArtifactLimits = DEFAULT_ARTIFACT_LIMITS,
): ArtifactHeader {
  return checkedHeader(bytes, limits).header;
}

function checkedHeader(
  bytes: Uint8Array,
  limits: ArtifactLimits,
): {
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
  const actual = sha256Hex(body);
  if (actual !== expected) throw new ArtifactError(`artifact is corrupted: sha256 is ${actual}, expected ${expected}`);
  const headerLength = buf.readUInt32LE(44);
  if (headerLength > body.length) throw new ArtifactError('artifact is corrupted: header length exceeds the file');
  let header: ArtifactHeader;
  try {
    header = JSON.parse(body.subarray(0, headerLength).toString('utf8')) as ArtifactHeader;
  } catch (e) {
    throw new ArtifactError(`artifact header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null) throw new ArtifactError('artifact header must be a JSON object');
  const bytesAfterHeader = body.length - headerLength;
  if (bytesAfterHeader % 4 !== 0)
    throw new ArtifactError(
      `artifact is truncated: ${bytesAfterHeader} bytes of weights is not a whole number of floats`,
    );
  checkWeightEntries(header.weights, bytesAfterHeader / 4, limits);
  // Artifacts written before sequence features existed have none.
  if (typeof header.preprocessing === 'object' && header.preprocessing !== null) header.preprocessing.sequence ??= [];
  return { formatVersion, header, body, headerLength };
}

/** header.weights as names and shapes whose floats are exactly the `floatsPresent` after the header. */
function checkWeightEntries(weights: unknown, floatsPresent: number, limits: ArtifactLimits): WeightEntry[] {
  if (!Array.isArray(weights)) throw new ArtifactError('artifact header field "weights" must be an array');
  let total = 0;
  const names = new Set<string>();
  weights.forEach((entry: unknown, i) => {
    const field = `weights[${i}]`;
    const { name, shape } = (typeof entry === 'object' && entry !== null ? entry : {}) as Partial<WeightEntry>;
    if (typeof name !== 'string' || name === '')
      throw new ArtifactError(`artifact header field "${field}.name" must be a non-empty string`);
    if (names.has(name)) throw new ArtifactError(`artifact header field "${field}.name" repeats weight "${name}"`);
    names.add(name);
    if (!Array.isArray(shape) || shape.length === 0 || !shape.every((d) => isCount(d, 1)))
      throw new ArtifactError(`artifact header field "${field}.shape" must be a list of positive integers`);
    const size = shape.reduce((a, b) => a * b, 1);
    total += size;
    if (total > limits.maxParameters) {
      throw new ArtifactError(
        `artifact header field "${field}.shape" [${shape}] takes the weights past the limit of ${limits.maxParameters} parameters`,
      );
    }
    if (total > floatsPresent) {
      throw new ArtifactError(
        `artifact is truncated: header field "${field}.shape" [${shape}] needs ${size} floats, the file holds ${floatsPresent} in all`,
      );
    }
  });
  if (total !== floatsPresent)
    throw new ArtifactError(`artifact has ${(floatsPresent - total) * 4} unexpected trailing bytes`);
  return weights as WeightEntry[];
}

const isCount = (n: unknown, min: number): n is number => Number.isSafeInteger(n) && (n as number) >= min;
