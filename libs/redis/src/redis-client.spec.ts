import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';

import { batchByNode } from './redis-client';

describe('batchByNode', () => {
  const keys = ['{a}1', '{a}2', '{b}1', '{c}1', '{b}2'];

  it('keeps every key in one batch and one slot on a single Redis: one MGET', () => {
    expect(batchByNode({ isCluster: false } as Redis, keys)).toEqual([{ node: 'redis', slots: [[0, 1, 2, 3, 4]] }]);
  });

  it('groups keys by the node the slot map names, and within a node by slot', () => {
    // Slots of {a} and {c} on node x (with its replica), {b} on node y.
    const slots: string[][] = [];
    for (const tag of ['{a}', '{c}']) slots[calculateSlot(tag)] = ['x:1', 'x:2'];
    slots[calculateSlot('{b}')] = ['y:1'];
    const batches = batchByNode({ isCluster: true, slots } as unknown as Cluster, keys);
    expect(batches).toEqual([
      { node: 'x:1;x:2', slots: [[0, 1], [3]] },
      { node: 'y:1', slots: [[2, 4]] },
    ]);
  });
});
