/**
 * A data-parallel training thread: its own tfjs-wasm and copy of the network, training on its shard of every batch
 * of the shared dataset in lockstep with the other replicas (GradientExchange). Blocking waits are fine here: this
 * thread does nothing else.
 */
import { parentPort } from 'node:worker_threads';

import { initBackend } from '../../backend/backend';
import { describeWasmFailure, WasmMemoryError } from '../../backend/wasm.guard';
import { MultiTaskNetwork } from '../../model/network';
import { GradientExchange } from './gradient-exchange';
import { Replica } from './replica';
import type { ReplicaCommand, ReplicaReply } from './replica.protocol';

const port = parentPort!;
let replica: Replica | undefined;
let order: Uint32Array;

function reply(message: ReplicaReply): void {
  port.postMessage(message);
}

function runEpoch(steps: number): void {
  const r = replica!;
  const { batchSize } = r.network.spec.training;
  const rows = r.dataset.size;
  for (let step = 0; step < steps; step++) {
    const start = step * batchSize;
    r.computeShard(start, Math.min(start + batchSize, rows), order);
    r.exchange.arriveSync();
    r.finishStep();
  }
}

port.on('message', async (command: ReplicaCommand) => {
  try {
    if (command.kind === 'init') {
      await initBackend('wasm');
      const net = new MultiTaskNetwork(command.spec, command.preprocessing);
      net.restore(command.weights);
      const exchange = new GradientExchange(command.exchange, command.replicas, command.replica, command.size);
      replica = new Replica(net, command.data, exchange, command.optimizerState);
      order = new Uint32Array(command.order);
      reply({ kind: 'ready' });
    } else {
      runEpoch(command.steps);
    }
  } catch (e) {
    replica?.exchange.abort();
    // This thread's wasm instance goes with it (the runner terminates it): the main thread's is unharmed.
    const which = command.kind === 'init' ? command.replica : replica?.exchange.replica;
    reply({
      kind: 'failed',
      message: `training thread ${which}: ${describeWasmFailure(e)}`,
      outOfMemory: e instanceof WasmMemoryError,
    });
  }
});
