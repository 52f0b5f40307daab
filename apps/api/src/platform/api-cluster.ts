import cluster, { type Worker } from 'node:cluster';

/** Restarts within this window beyond which the primary gives up: a process that keeps dying would only loop. */
const RESTART_WINDOW_MS = 60_000;
const MAX_RESTARTS_IN_WINDOW = 5;

/**
 * The primary of API_PROCESSES processes sharing one port (node's cluster module hands each connection to the next
 * process in turn). Each process is a whole API: it loads the served models itself and follows `models:changed`,
 * so a promote reaches every one of them. A process that dies once it was serving is replaced; one that dies before
 * it listened (bad configuration, a store it cannot reach, the port taken) stops them all with exit code 1, as would
 * a single API process, and so do too many restarts in a minute. SIGTERM/SIGINT stop them all gracefully.
 */
export function superviseApiProcesses(processes: number): void {
  let stopping = false;
  const listening = new Set<Worker>();
  const workers = new Set<Worker>();
  const restarts: number[] = [];
  const fork = () => workers.add(cluster.fork());
  const log = (message: string) => process.stderr.write(`api primary ${process.pid}: ${message}\n`);
  const stopAll = (why: string) => {
    log(`${why}; stopping`);
    stopping = true;
    process.exitCode = 1;
    for (const other of workers) other.kill('SIGTERM');
  };

  cluster.on('listening', (worker) => listening.add(worker));
  cluster.on('exit', (worker, code, signal) => {
    const served = listening.delete(worker);
    workers.delete(worker);
    const how = signal ?? `with code ${code}`;
    if (!stopping) {
      const now = Date.now();
      while (restarts.length > 0 && restarts[0] < now - RESTART_WINDOW_MS) restarts.shift();
      if (!served) stopAll(`process ${worker.process.pid} exited ${how} before it listened`);
      else if (restarts.length >= MAX_RESTARTS_IN_WINDOW)
        stopAll(
          `process ${worker.process.pid} exited ${how}, the ${MAX_RESTARTS_IN_WINDOW + 1}th exit within a minute`,
        );
      else {
        log(`process ${worker.process.pid} exited ${how}; starting another`);
        restarts.push(now);
        fork();
        return;
      }
    }
    // The exit code set above, or 0 after a graceful stop.
    if (workers.size === 0) process.exit();
  });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      stopping = true;
      for (const worker of workers) worker.kill('SIGTERM');
    });
  }
  for (let i = 0; i < processes; i++) fork();
  log(`${processes} API processes`);
}
