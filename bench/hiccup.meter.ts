import { once } from 'node:events';
import { Worker } from 'node:worker_threads';

import { quantile } from './bench.util';

/** How much later than asked a 1 ms sleep woke up, over a span of time. */
export interface Hiccups {
  p999Ms: number;
  maxMs: number;
}

/**
 * The sleeping thread: it sleeps 1 ms at a time (Atomics.wait, no event loop between) and records by how much each
 * wake-up was late; polled between two sleeps, a message asks for what it has recorded since the last one.
 */
const SLEEPER = `
const { parentPort, receiveMessageOnPort } = require('node:worker_threads');
const cell = new Int32Array(new SharedArrayBuffer(4));
let late = [];
for (;;) {
  const asked = receiveMessageOnPort(parentPort);
  if (asked && asked.message === 'stop') break;
  if (asked) {
    parentPort.postMessage(late);
    late = [];
  }
  const started = performance.now();
  Atomics.wait(cell, 0, 0, 1);
  late.push(performance.now() - started - 1);
}`;

/**
 * How late the machine wakes a thread while a benchmark row runs, after jHiccup: a thread of the bench process, which
 * does nothing else meanwhile (the API and the load generator are other processes), sleeps 1 ms at a time and records
 * how late it wakes. Under load that is the wait for a core as well as the machine's own pauses (a virtual CPU the
 * hypervisor does not run); measured at rest, it is what the machine adds to every wake-up of the service's threads.
 */
export class HiccupMeter {
  private readonly worker = new Worker(SLEEPER, { eval: true });

  /** `run`'s value, and the stalls seen while it ran. */
  async during<T>(run: () => Promise<T>): Promise<{ value: T; hiccups: Hiccups }> {
    await this.recorded(); // what came before the run is not the run's
    const value = await run();
    const late = await this.recorded();
    if (late.length === 0) return { value, hiccups: { p999Ms: NaN, maxMs: NaN } };
    return {
      value,
      hiccups: { p999Ms: quantile(late, 0.999), maxMs: late.reduce((m, v) => (v > m ? v : m), -Infinity) },
    };
  }

  async close(): Promise<void> {
    this.worker.postMessage('stop');
    await once(this.worker, 'exit');
  }

  private async recorded(): Promise<number[]> {
    this.worker.postMessage('read');
    const [late] = (await once(this.worker, 'message')) as [number[]];
    return late;
  }
}
