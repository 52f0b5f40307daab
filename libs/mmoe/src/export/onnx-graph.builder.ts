import { ProtoWriter } from './protobuf.writer';

/** TensorProto.DataType values used here. */
export const ONNX_FLOAT = 1;
export const ONNX_INT8 = 3;
export const ONNX_INT32 = 6;
export const ONNX_INT64 = 7;
/** The symbolic batch dimension of every input and output of an exported graph. */
export const ONNX_BATCH_DIM = 'N';

type ElemType = typeof ONNX_FLOAT | typeof ONNX_INT8 | typeof ONNX_INT32 | typeof ONNX_INT64;

/** Node attributes: ints and lists of ints are all this exporter needs. */
type Attributes = Record<string, number | number[]>;
/** A dimension: a size, or a name for a size known only at run time (the batch). */
type Dim = number | string;

const ATTRIBUTE_INT = 2;
const ATTRIBUTE_INTS = 7;

/**
 * Builds one ONNX graph (default domain only) and serialises it as a ModelProto. Field numbers are those of
 * onnx/onnx.proto; only the fields this exporter needs are written.
 */
export interface GraphOptions {
  /**
   * Dynamic int8 quantisation of every Gemm and MatMul whose right-hand side is a 2-D float initializer, written as
   * onnxruntime's quantize_dynamic writes it (which its optimiser fuses into one DynamicQuantizeMatMul): activations
   * quantised per run (DynamicQuantizeLinear, uint8), weights stored int8 per output column, symmetric.
   */
  int8Weights?: boolean;
}

/**
 * Weights use 7 of the 8 bits (±63), as quantize_dynamic's reduce_range: on x86 CPUs without VNNI the u8 × s8 kernel
 * sums pairs of products in int16, and 255 × 127 × 2 would saturate it.
 */
const INT8_WEIGHT_MAX = 63;

export class OnnxGraphBuilder {
  private readonly nodes: ProtoWriter[] = [];
  private readonly initializers = new Map<string, ProtoWriter>();
  /** With int8Weights, the 2-D float initializers a MatMul may quantise (their float copy is then dropped). */
  private readonly matrices = new Map<string, { dims: number[]; values: ArrayLike<number> }>();
  private readonly used = new Set<string>();
  private readonly inputs: ProtoWriter[] = [];
  private readonly outputs: ProtoWriter[] = [];
  private readonly names = new Set<string>();
  private counter = 0;

  constructor(private readonly options: GraphOptions = {}) {}

  input(name: string, elemType: ElemType, dims: Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), elemType, dims));
    return name;
  }

  output(name: string, elemType: ElemType, dims: Dim[]): void {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  /** A constant tensor; values are written little-endian whatever the host's byte order. */
  initializer(name: string, elemType: ElemType, dims: number[], values: ArrayLike<number>): string {
    const size = elemType === ONNX_INT64 ? 8 : elemType === ONNX_INT8 ? 1 : 4;
    const raw = new Uint8Array(values.length * size);
    const view = new DataView(raw.buffer);
    for (let i = 0; i < values.length; i++) {
      if (elemType === ONNX_FLOAT) view.setFloat32(i * 4, values[i], true);
      else if (elemType === ONNX_INT8) view.setInt8(i, values[i]);
      else if (elemType === ONNX_INT32) view.setInt32(i * 4, values[i], true);
      else view.setBigInt64(i * 8, BigInt(values[i]), true);
    }
    const tensor = new ProtoWriter().packedInts(1, dims).int(2, elemType).string(8, this.claim(name)).bytes(9, raw);
    this.initializers.set(name, tensor);
    if (this.options.int8Weights && elemType === ONNX_FLOAT && dims.length === 2)
      this.matrices.set(name, { dims, values });
    return name;
  }

  /** A node with one output; its name is `output` or a fresh one. */
  op(opType: string, inputs: string[], attributes: Attributes = {}, output?: string): string {
    return this.ops(opType, inputs, [output ?? this.fresh(opType)], attributes)[0];
  }

  /** A node with several outputs: `outputs` names them, or gives their count. */
  ops(opType: string, inputs: string[], outputs: number | string[], attributes: Attributes = {}): string[] {
    const weights = this.matrices.get(inputs[1]);
    if (weights && (opType === 'MatMul' || opType === 'Gemm') && !attributes.transB) {
      const [output] = typeof outputs === 'number' ? [undefined] : outputs;
      return [this.quantizedMatMul(inputs, weights, output)];
    }
    inputs.forEach((i) => this.used.add(i));
    const names = (
      typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(opType)) : outputs
    ).map((o) => this.claim(o));
    const node = new ProtoWriter();
    inputs.forEach((i) => node.string(1, i));
    names.forEach((o) => node.string(2, o));
    node.string(4, opType);
    for (const [name, value] of Object.entries(attributes)) {
      const attribute = new ProtoWriter().string(1, name);
      if (typeof value === 'number') attribute.int(3, value).int(20, ATTRIBUTE_INT);
      else attribute.packedInts(8, value).int(20, ATTRIBUTE_INTS);
      node.message(5, attribute);
    }
    this.nodes.push(node);
    return names;
  }

  /** The ModelProto bytes. */
  build(options: { opset: number; irVersion: number; producer: string; graphName: string }): Uint8Array {
    const graph = new ProtoWriter();
    this.nodes.forEach((n) => graph.message(1, n));
    graph.string(2, options.graphName);
    for (const [name, t] of this.initializers) if (this.used.has(name)) graph.message(5, t);
    this.inputs.forEach((v) => graph.message(11, v));
    this.outputs.forEach((v) => graph.message(12, v));
    return new ProtoWriter()
      .int(1, options.irVersion)
      .string(2, options.producer)
      .message(7, graph)
      .message(8, new ProtoWriter().int(2, options.opset)) // the default (empty) domain: ai.onnx
      .finish();
  }

  /**
   * x·W (+ C, Gemm's bias or broadcast term) with x quantised per run and W per column:
   * (x_q − x_zp)·W_q × (x_scale × W_scale) + C.
   */
  private quantizedMatMul(
    [x, w, c]: string[],
    matrix: { dims: number[]; values: ArrayLike<number> },
    output: string | undefined,
  ): string {
    const { q, zeroPoints, weightScales } = this.quantizedWeights(w, matrix);
    const [xq, xScale, xZero] = this.ops('DynamicQuantizeLinear', [x], 3);
    const product = this.op('Cast', [this.op('MatMulInteger', [xq, q, xZero, zeroPoints])], { to: ONNX_FLOAT });
    const scale = this.op('Mul', [xScale, weightScales]);
    if (c === undefined) return this.op('Mul', [product, scale], {}, output);
    return this.op('Add', [this.op('Mul', [product, scale]), c], {}, output);
  }

  /** W's int8 values, zero points and per-column scales, made once per weight (a weight may multiply several inputs). */
  private quantizedWeights(
    w: string,
    { dims: [rows, columns], values }: { dims: number[]; values: ArrayLike<number> },
  ): { q: string; zeroPoints: string; weightScales: string } {
    const names = { q: `${w}/int8`, zeroPoints: `${w}/int8/zero_point`, weightScales: `${w}/int8/scale` };
    if (this.initializers.has(names.q)) return names;
    const scales = new Float32Array(columns);
    for (let i = 0; i < values.length; i++)
      scales[i % columns] = Math.max(scales[i % columns], Math.abs(values[i]) / INT8_WEIGHT_MAX);
    const quantized = new Int8Array(values.length);
    for (let i = 0; i < values.length; i++) {
      const scale = scales[i % columns];
      quantized[i] = scale === 0 ? 0 : Math.round(values[i] / scale);
    }
    this.initializer(names.q, ONNX_INT8, [rows, columns], quantized);
    this.initializer(names.zeroPoints, ONNX_INT8, [columns], new Int8Array(columns));
    this.initializer(names.weightScales, ONNX_FLOAT, [columns], scales);
    return names;
  }

  private fresh(opType: string): string {
    return `${opType}_${this.counter++}`;
  }

  /** ONNX requires every value to be produced once (SSA); a clash here is an exporter bug. */
  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`ONNX value "${name}" is defined twice`);
    this.names.add(name);
    return name;
  }
}

function valueInfo(name: string, elemType: ElemType, dims: Dim[]): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of dims)
    shape.message(1, typeof d === 'number' ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d));
  const tensorType = new ProtoWriter().int(1, elemType).message(2, shape);
  return new ProtoWriter().string(1, name).message(2, new ProtoWriter().message(1, tensorType));
}
