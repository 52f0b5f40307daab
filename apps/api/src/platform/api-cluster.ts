import cluster, { type Worker } from 'node:cluster';

/** A process that dies sooner than this after its start is not restarted: it would only crash again in a loop. */
const MIN_UPTIME_MS = 10_000;

/**
 * The primary of API_PROCESSES processes sharing one port (node's cluster module hands each connection to the next
 * process in turn). Each process is a whole API: it loads the served models itself and follows `models:changed`,
 * so a promote reaches every one of them. A process that dies is replaced; SIGTERM/SIGINT stop them all gracefully.
 */
export function superviseApiProcesses(processes: number): void {
  let stopping = false;
  const started = new Map<Worker, number>();
  const fork = () => started.set(cluster.fork(), Date.now());
  const log = (message: string) => process.stderr.write(`api primary ${process.pid}: ${message}\n`);

  cluster.on('exit', (worker, code, signal) => {
    const uptime = Date.now() - (started.get(worker) ?? 0);
    started.delete(worker);
    if (stopping) {
      if (started.size === 0) process.exit(0);
      return;
    }
    if (uptime < MIN_UPTIME_MS) {
      log(
        `process ${worker.process.pid} exited ${signal ?? `with code ${code}`} ${uptime} ms after its start; stopping`,
      );
      stopping = true;
      process.exitCode = 1;
      for (const other of started.keys()) other.kill('SIGTERM');
      if (started.size === 0) process.exit(1);
      return;
    }
    log(`process ${worker.process.pid} exited ${signal ?? `with code ${code}`}; starting another`);
    fork();
  });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      stopping = true;
      for (const worker of started.keys()) worker.kill('SIGTERM');
    });
  }
  for (let i = 0; i < processes; i++) fork();
  log(`${processes} API processes`);
}
