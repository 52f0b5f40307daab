import { TASK_TYPES } from '../tasks/task-types';
import type { TaskAggregate } from './task-aggregate';

/*
 * Stored form (a bytea): a 6-byte header — format 1, kind (the task type's aggregateCode: 1 binary, 2 regression), clusters (uint16), layout (0 dense,
 * 1 sparse), a spare byte — then the fields as little-endian float64, all of them (dense) or, when most are zero (a
 * minute of light traffic fills few score bins), their count (uint32) and (index uint32, value float64) pairs.
 */
const FORMAT = 1;
const HEADER_BYTES = 6;

export function encodeAggregate(aggregate: TaskAggregate): Buffer {
  const { data } = aggregate;
  let nonZero = 0;
  for (let i = 0; i < data.length; i++) if (data[i] !== 0) nonZero++;
  const sparse = 4 + nonZero * 12 < data.length * 8;
  const out = Buffer.alloc(HEADER_BYTES + (sparse ? 4 + nonZero * 12 : data.length * 8));
  out.writeUInt8(FORMAT, 0);
  out.writeUInt8(TASK_TYPES[aggregate.kind].aggregateCode, 1);
  out.writeUInt16LE(aggregate.clusters, 2);
  out.writeUInt8(sparse ? 1 : 0, 4);
  let at = HEADER_BYTES;
  if (sparse) {
    at = out.writeUInt32LE(nonZero, at);
    for (let i = 0; i < data.length; i++) {
      if (data[i] === 0) continue;
      at = out.writeUInt32LE(i, at);
      at = out.writeDoubleLE(data[i], at);
    }
  } else {
    for (let i = 0; i < data.length; i++) at = out.writeDoubleLE(data[i], at);
  }
  return out;
}

export function decodeAggregate(bytes: Buffer): TaskAggregate {
  if (bytes.length < HEADER_BYTES || bytes.readUInt8(0) !== FORMAT)
    throw new RangeError('not an encoded task aggregate');
  const code = bytes.readUInt8(1);
  const type = Object.values(TASK_TYPES).find((t) => t.aggregateCode === code);
  if (!type) throw new RangeError(`a task aggregate of unknown kind ${code}`);
  const aggregate: TaskAggregate = type.aggregate(bytes.readUInt16LE(2));
  const { data } = aggregate;
  let at = HEADER_BYTES;
  if (bytes.readUInt8(4) === 1) {
    const entries = bytes.readUInt32LE(at);
    at += 4;
    for (let e = 0; e < entries; e++, at += 12) {
      const index = bytes.readUInt32LE(at);
      if (index >= data.length)
        throw new RangeError(`a sparse task aggregate field ${index} beyond its ${data.length}`);
      data[index] = bytes.readDoubleLE(at + 4);
    }
  } else {
    if (bytes.length !== HEADER_BYTES + data.length * 8)
      throw new RangeError('a dense task aggregate of the wrong size');
    for (let i = 0; i < data.length; i++, at += 8) data[i] = bytes.readDoubleLE(at);
  }
  return aggregate;
}
