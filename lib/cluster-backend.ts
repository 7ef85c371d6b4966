// model 'cluster': node:cluster, the JS counterpart of the fork server. This process is the
// primary: it listens, accepts (libuv, pauseOnConnect: nothing is read here), applies maxClients
// exactly across all workers, and hands each connection to the next worker in turn over the IPC
// channel, as cluster's default round-robin scheduler (SCHED_RR) does. Workers are forked once,
// at start, not per connection: that is the difference the benchmark shows against 'fork'.
//
// Not applicable, so 0: eintrRetries, eventsDropped, refusedNoFd, acceptErrors (see
// node-backend.ts). `reaped` counts workers that exited; bytesIn/bytesOut arrive from the workers
// at most 100 ms late (exact once the connection's 'disconnect' has been emitted).
import cluster, { Worker } from 'node:cluster';
import { existsSync } from 'node:fs';
import { createServer, Server, Socket } from 'node:net';
import { join } from 'node:path';
import type { AddressInfo, Backend, EventSink, ServerStats } from './backend';
import { FromWorker, JsServePolicy, ToWorker, WORKER_POLICY_ENV } from './cluster-protocol';
import { boundAddress, listenNet, peerOf, zeroStats } from './node-backend';
import type { ResolvedOptions } from './options';

/** The compiled worker script: beside this file in dist/, or in dist/ when run from lib/ (ts-jest). */
export function workerScript(): string {
  const beside = join(__dirname, 'cluster-worker.js');
  if (existsSync(beside)) return beside;
  const built = join(__dirname, '..', 'dist', 'cluster-worker.js');
  if (existsSync(built)) return built;
  throw new Error(`cluster worker script not found at ${beside} or ${built}: run "npm run build"`);
}

interface WorkerState {
  worker: Worker;
  pid: number;
  ready: boolean;
  exited: boolean;
  /** The IPC channel is closed (its descriptor is gone). */
  disconnected: boolean;
  /** Connections sent to it that have not ended. */
  conns: Set<number>;
}

class ClusterBackend implements Backend {
  readonly pid = process.pid;
  readonly finished: Promise<void>;
  #opts: ResolvedOptions;
  #sink: EventSink;
  #script: string;
  #server: Server;
  #stats = zeroStats();
  #workers: WorkerState[] = [];
  /** Live connection id → the worker serving it. */
  #live = new Map<number, WorkerState>();
  #next = 0;
  #listening = false;
  #announced = false;
  #stopped = false;
  #done!: () => void;

  constructor(opts: ResolvedOptions, sink: EventSink) {
    if (!cluster.isPrimary) {
      // cluster.fork() exists only in a primary; a worker cannot have workers of its own.
      throw new Error('The cluster model must be started in a primary process, not in a cluster worker');
    }
    this.#opts = opts;
    this.#sink = sink;
    this.#script = workerScript();
    this.finished = new Promise((resolve) => (this.#done = resolve));
    this.#server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) => this.#onConnection(socket));
    listenNet(
      this.#server,
      opts,
      () => {
        this.#listening = true;
        // Workers are forked only once the port is ours: a failed listen leaves no process.
        for (let i = 0; i < opts.workers; i++) this.#fork();
      },
      (error) => {
        sink({ type: 'error', error });
        if (!this.#listening) {
          this.#stopped = true;
          this.#maybeFinished();
        }
      },
    );
  }

  #fork(): void {
    const policy: JsServePolicy = { handler: this.#opts.handler, idleTimeoutMs: this.#opts.idleTimeoutMs };
    // cluster.settings is global to the process: set ours for this fork only, then put back
    // whatever the application had, so that its own cluster.fork() calls are not redirected.
    const saved = cluster.settings;
    let worker: Worker;
    try {
      cluster.setupPrimary({ exec: this.#script, args: [], execArgv: [], silent: false });
      worker = cluster.fork({ [WORKER_POLICY_ENV]: JSON.stringify(policy) });
    } finally {
      (cluster as { settings: typeof saved }).settings = saved;
    }
    const w: WorkerState = {
      worker,
      pid: worker.process.pid ?? 0,
      ready: false,
      exited: false,
      disconnected: false,
      conns: new Set(),
    };
    this.#workers.push(w);
    worker.on('message', (msg: FromWorker) => this.#onMessage(w, msg));
    worker.on('disconnect', () => {
      w.disconnected = true;
      this.#maybeFinished();
    });
    worker.on('exit', (code: number | null, signal: NodeJS.Signals | null) => this.#onExit(w, code, signal));
    // A failed send or kill also ends in 'exit', which reports it; without a listener an
    // 'error' event would throw.
    worker.on('error', () => undefined);
  }

  #onMessage(w: WorkerState, msg: FromWorker): void {
    const s = this.#stats;
    switch (msg.t) {
      case 'ready':
        w.ready = true;
        if (!this.#announced && this.#workers.every((x) => x.ready)) {
          this.#announced = true;
          this.#sink({ type: 'listening' });
        }
        break;
      case 'bytes':
        s.bytesIn += msg.bytesIn;
        s.bytesOut += msg.bytesOut;
        break;
      case 'closed':
        if (!this.#live.has(msg.id)) break;
        this.#ended(w, msg.id);
        this.#sink({
          type: 'disconnect',
          event: { id: msg.id, bytesIn: msg.bytesIn, bytesOut: msg.bytesOut, reason: msg.reason, pid: w.pid },
        });
        this.#maybeFinished();
        break;
    }
  }

  #ended(w: WorkerState, id: number): void {
    this.#live.delete(id);
    w.conns.delete(id);
    this.#stats.active--;
    this.#stats.closed++;
  }

  #onExit(w: WorkerState, code: number | null, signal: NodeJS.Signals | null): void {
    w.exited = true;
    this.#stats.reaped++;
    // Its connections died with it (the kernel closed their sockets).
    for (const id of [...w.conns]) {
      this.#ended(w, id);
      this.#sink({ type: 'disconnect', event: { id, bytesIn: 0, bytesOut: 0, reason: 'crash', pid: w.pid } });
    }
    this.#sink({ type: 'reap', event: { pid: w.pid, id: 0, exitCode: signal === null ? code : null, signal } });
    if (!this.#stopped) {
      if (w.ready) {
        this.#fork(); // keep the pool at its size, as a cluster primary is expected to
      } else {
        // Dying before it could serve would die again: give up instead of forking in a loop.
        const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
        this.#sink({ type: 'error', error: new Error(`cluster worker ${w.pid} ${how} before it was ready`) });
        this.stop();
      }
    }
    this.#maybeFinished();
  }

  #onConnection(socket: Socket): void {
    const s = this.#stats;
    const id = ++s.accepted;
    const peer = peerOf(socket, this.#opts.host);
    const ready = this.#workers.filter((x) => x.ready && !x.exited);
    if (this.#live.size >= this.#opts.maxClients || ready.length === 0) {
      s.rejected++;
      socket.destroy();
      const reason = ready.length === 0 ? 'no-process' : 'max-clients';
      this.#sink({ type: 'reject', event: { id, peer, reason } });
      return;
    }
    const w = ready[this.#next++ % ready.length];
    s.active++;
    this.#live.set(id, w);
    w.conns.add(id);
    this.#sink({ type: 'connection', event: { id, peer, pid: w.pid } });
    const msg: ToWorker = { t: 'conn', id };
    // The primary's copy of the socket is closed once sent (keepOpen defaults to false).
    w.worker.send(msg, socket, (err) => {
      if (err) socket.destroy(); // the worker is going; its 'exit' reports the connection
    });
  }

  #maybeFinished(): void {
    // A worker that has exited and whose IPC descriptor is closed is gone for good.
    this.#workers = this.#workers.filter((w) => !(w.exited && w.disconnected));
    if (!this.#stopped || this.#live.size > 0) return;
    // Every connection has ended: let the workers go (cluster's graceful disconnect), and finish
    // once each has exited and its IPC descriptor is closed.
    for (const w of this.#workers) {
      if (!w.exited && w.worker.isConnected() && !w.worker.exitedAfterDisconnect) w.worker.disconnect();
    }
    if (this.#workers.length === 0) this.#done();
  }

  address(): AddressInfo {
    return boundAddress(this.#server, this.#opts);
  }

  stats(): ServerStats {
    return { ...this.#stats };
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#listening) this.#server.close(() => undefined);
    this.#maybeFinished();
  }

  abortConnections(): void {
    const abort: ToWorker = { t: 'abort' };
    for (const w of this.#workers) if (!w.exited && w.worker.isConnected()) w.worker.send(abort);
  }

  kill(): void {
    for (const w of this.#workers) if (!w.exited) w.worker.process.kill('SIGKILL');
  }

  release(): void {}
}

export function startClusterBackend(opts: ResolvedOptions, sink: EventSink): Backend {
  return new ClusterBackend(opts, sink);
}
