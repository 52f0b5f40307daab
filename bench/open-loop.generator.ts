/**
 * bench:serve's open-loop load generator, run in a child process of its own. In the bench process it shared an event
 * loop and a heap with everything the bench had done before (a trained TensorFlow.js model, the raw-engine runs): a
 * send that process delayed counted as the API's latency, since latency runs from each request's scheduled start.
 * Here it holds nothing but its schedule and its sockets, and it measures its own lateness (send − schedule) so that
 * what is left of it is reported rather than hidden.
 *
 * The client is a bare HTTP/1.1 one over `net` (one prebuilt buffer written per request, keep-alive connections, only
 * the status line and Content-Length read back): node:http's client cost ~1 ms of CPU per 500-candidate request,
 * CPU that the load generator takes from the API on the same cores (≈ a core at the overload row's rate).
 */
import { fork } from 'node:child_process';
import { connect, type Socket } from 'node:net';

/** What the parent asks for: an open loop over `startsMs`, or `alone` calls one after the other. */
export type GeneratorJob = { url: string; body: string } & (
  { kind: 'open'; startsMs: number[] } | { kind: 'alone'; calls: number }
);

/**
 * Per request, in order: its HTTP status (0 on a connection error), ms from its scheduled start (its send, alone) to
 * the end of its answer, and ms its send was behind schedule (NaN alone).
 */
export interface GeneratorTrace {
  status: Int32Array;
  latencyMs: Float64Array;
  latenessMs: Float64Array;
  /** Wall seconds of the run, and the cores' worth of CPU the generator used meanwhile. */
  seconds: number;
  cores: number;
  /** Connections it had to open (each request in flight needs its own). */
  connections: number;
}

const CHILD_FLAG = '--open-loop-generator';

/** Runs `job` in a fresh child process (this file, under the same loader) and resolves with its trace. */
export function runGenerator(job: GeneratorJob): Promise<GeneratorTrace> {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, [CHILD_FLAG], { serialization: 'advanced', stdio: 'inherit' });
    child.once('message', (trace: GeneratorTrace) => {
      resolve(trace);
      child.disconnect();
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the load generator exited (code ${code}) before its trace`)));
    child.send(job);
  });
}

/** One keep-alive connection: one request at a time, its answer read as far as the status and Content-Length. */
class Connection {
  private readonly socket: Socket;
  private head: Buffer | undefined;
  private bodyLeft = -1;
  private status = 0;
  private onAnswer: ((status: number) => void) | undefined;
  closed = false;
  /** performance.now() when its last answer ended. */
  idleSince = 0;

  constructor(host: string, port: number, onClose: (c: Connection) => void) {
    this.socket = connect({ host, port, noDelay: true });
    this.socket.on('data', (chunk) => this.read(chunk));
    const close = () => {
      if (this.closed) return;
      this.closed = true;
      this.finish(0);
      onClose(this);
    };
    this.socket.on('error', close);
    this.socket.on('close', close);
  }

  send(request: Buffer, onAnswer: (status: number) => void): void {
    this.onAnswer = onAnswer;
    this.socket.write(request);
  }

  close(): void {
    this.socket.destroy();
  }

  private read(chunk: Buffer): void {
    if (this.bodyLeft < 0) {
      this.head = this.head ? Buffer.concat([this.head, chunk]) : chunk;
      const end = this.head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.head.toString('latin1', 0, end);
      const length = /\r\ncontent-length: *(\d+)/i.exec(head);
      if (!length) {
        // Every answer of the API has a length; anything else is a failure, and the connection is not reusable.
        this.finish(0);
        this.close();
        return;
      }
      this.status = Number(head.slice(9, 12));
      this.bodyLeft = Number(length[1]) - (this.head.length - end - 4);
      this.head = undefined;
    } else this.bodyLeft -= chunk.length;
    if (this.bodyLeft <= 0) {
      this.bodyLeft = -1;
      this.finish(this.status);
    }
  }

  private finish(status: number): void {
    const onAnswer = this.onAnswer;
    this.onAnswer = undefined;
    onAnswer?.(status);
  }
}

/**
 * Under the API's keep-alive timeout (HTTP_KEEP_ALIVE_TIMEOUT_MS, 5 s by default): a connection idle longer is closed
 * rather than reused, since the server may be closing it as the request is written.
 */
const MAX_IDLE_MS = 2000;

/** Idle connections, the most recently used last (taken first). */
class ConnectionPool {
  private readonly idle: Connection[] = [];
  private readonly request: Buffer;
  private readonly host: string;
  private readonly port: number;
  opened = 0;

  constructor(url: string, body: string) {
    const target = new URL(url);
    [this.host, this.port] = [target.hostname, Number(target.port)];
    const payload = Buffer.from(body);
    this.request = Buffer.concat([
      Buffer.from(
        `POST ${target.pathname} HTTP/1.1\r\nhost: ${target.host}\r\ncontent-type: application/json\r\n` +
          `content-length: ${payload.length}\r\n\r\n`,
      ),
      payload,
    ]);
  }

  send(onAnswer: (status: number) => void): void {
    let connection = this.idle.pop();
    while (connection && (connection.closed || performance.now() - connection.idleSince > MAX_IDLE_MS)) {
      connection.close();
      connection = this.idle.pop();
    }
    if (!connection) {
      this.opened++;
      connection = new Connection(this.host, this.port, (c) => {
        const i = this.idle.indexOf(c);
        if (i >= 0) this.idle.splice(i, 1);
      });
    }
    const c = connection;
    c.send(this.request, (status) => {
      c.idleSince = performance.now();
      if (!c.closed) this.idle.push(c);
      onAnswer(status);
    });
  }

  close(): void {
    for (const c of this.idle.splice(0)) c.close();
  }
}

/** Request i is sent at its scheduled time whatever happened to the others; a timer wakes the loop for the next one. */
function openLoop(pool: ConnectionPool, startsMs: number[], trace: GeneratorTrace): Promise<void> {
  const total = startsMs.length;
  let answered = 0;
  return new Promise((resolve) => {
    const start = performance.now();
    let next = 0;
    const send = (i: number) => {
      const scheduled = start + startsMs[i];
      trace.latenessMs[i] = performance.now() - scheduled;
      pool.send((status) => {
        trace.status[i] = status;
        trace.latencyMs[i] = performance.now() - scheduled;
        if (++answered === total) resolve();
      });
    };
    const tick = () => {
      while (next < total && start + startsMs[next] <= performance.now()) send(next++);
      if (next < total) setTimeout(tick, start + startsMs[next] - performance.now());
    };
    tick();
  });
}

async function alone(pool: ConnectionPool, calls: number, trace: GeneratorTrace): Promise<void> {
  trace.latenessMs.fill(NaN); // nothing is scheduled: each call goes when the previous answer arrives
  for (let i = 0; i < calls; i++) {
    const sent = performance.now();
    trace.status[i] = await new Promise<number>((resolve) => pool.send(resolve));
    trace.latencyMs[i] = performance.now() - sent;
  }
}

async function child(job: GeneratorJob): Promise<GeneratorTrace> {
  const total = job.kind === 'open' ? job.startsMs.length : job.calls;
  const trace: GeneratorTrace = {
    status: new Int32Array(total),
    latencyMs: new Float64Array(total),
    latenessMs: new Float64Array(total),
    seconds: 0,
    cores: 0,
    connections: 0,
  };
  const pool = new ConnectionPool(job.url, job.body);
  const cpu = process.cpuUsage();
  const started = performance.now();
  await (job.kind === 'open' ? openLoop(pool, job.startsMs, trace) : alone(pool, job.calls, trace));
  trace.seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  trace.cores = (used.user + used.system) / 1e6 / trace.seconds;
  trace.connections = pool.opened;
  pool.close();
  return trace;
}

if (process.argv.includes(CHILD_FLAG)) {
  process.once('message', (job: GeneratorJob) => {
    void child(job).then((trace) => process.send!(trace));
  });
}
