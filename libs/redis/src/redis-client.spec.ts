import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';

import { batchByNode, followingRedirection } from './redis-client';

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

describe('followingRedirection', () => {
  /** A run that is redirected `times` times, then answers; counts its calls. */
  const redirected = (times: number, error = 'MOVED 13568 127.0.0.1:7001') => {
    const run = jest.fn(async () => {
      if (run.mock.calls.length <= times) throw new Error(error);
      return 'done';
    });
    return run;
  };

  it('runs again while the cluster redirects, as a refresh may still read a map from before the failover', async () => {
    const run = redirected(3);
    await expect(followingRedirection(run)).resolves.toBe('done');
    expect(run).toHaveBeenCalledTimes(4);
  });

  it('gives up after four retries, with the redirection', async () => {
    const run = redirected(Infinity, 'ASK 1 127.0.0.1:7002');
    await expect(followingRedirection(run)).rejects.toThrow('ASK 1 127.0.0.1:7002');
    expect(run).toHaveBeenCalledTimes(5);
  });

  it('throws any other error at once', async () => {
    const run = redirected(1, 'CLUSTERDOWN The cluster is down');
    await expect(followingRedirection(run)).rejects.toThrow('CLUSTERDOWN');
    expect(run).toHaveBeenCalledTimes(1);
  });
});
