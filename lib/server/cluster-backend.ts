// model 'cluster': node:cluster, the JS counterpart of the fork server. This process is the
// primary. Workers are forked once, at start, not per connection: that is the difference the
// benchmark shows against 'fork'. Two policies, node:cluster's own:
//
// - rr (SCHED_RR, cluster's default): the primary listens, accepts (libuv, pauseOnConnect:
//   nothing is read here), applies maxClients exactly across all workers, and hands each
//   connection to the next worker in turn over the IPC channel. The port listens before the
//   workers are up (a failed listen forks nobody): what is accepted meanwhile waits, unread,
//   and is handed on once every worker is ready.
// - none (SCHED_NONE): the primary holds the listening socket but never accepts on it; it sends
//   it once to each worker, and every worker accepts on it itself (the kernel decides which).
//   Admission stays exact: a worker holds each connection it accepted unread and reports it; the
//   primary, which alone knows how many are live across the pool, gives it its id (accept order
//   as the primary learns it) or refuses it past maxClients — one IPC round trip per connection,
//   before its first byte is read. A refused connection is closed by its worker and reported here
//   as 'reject' ('max-clients'), as in every other model.
//
// stats().perWorker[i]: connections handed to worker i (rr), or accepted by it (none, refused
// ones included). A worker that dies is replaced at the same index and keeps its count.
//
// Not applicable, so 0: eintrRetries, eventsDropped, eventWakeups, refusedNoFd, acceptErrors (see
// net-listener-backend.ts). `reaped` counts workers that exited; bytesIn/bytesOut arrive from
// the workers at most 100 ms late (exact once the connection's 'disconnect' has been emitted).
import type { SendHandle } from 'node:child_process';
import cluster, { Worker } from 'node:cluster';
import type { Socket } from 'node:net';
import type { Backend, EventSink } from './backend';
import { FromWorker, JsServePolicy, ToWorker, WORKER_POLICY_ENV } from './cluster-protocol';
import type { DisconnectReason, Peer, RejectReason } from './events';
import { jsServePolicy, monotonicMs } from './js-connection';
import { systemError } from '../util/errors';
import { NetListenerBackend } from './net-listener-backend';
import { compiledScript } from '../paths';
import type { ResolvedOptions } from './options';

interface WorkerState {
  worker: Worker;
  pid: number;
  /** Its place in the pool, 0..workers-1 (a replacement takes the same). */
  index: number;
  /** rr: it takes connections; none: it accepts on the shared socket. */
  ready: boolean;
  /**
   * none: its copy of the listening socket — 'sent' with the 'listen' message, 'open' once it
   * accepts on it, 'closed' after 'stopped' (or its exit). A worker may accept until it is closed.
   */
  listener: 'none' | 'sent' | 'open' | 'closed';
  exited: boolean;
  /**
   * Its IPC channel is closed (the descriptor is gone): 'disconnect', or — for a worker that died
   * while a socket sent to it awaited its acknowledgement, for which node:cluster never emits
   * 'disconnect' — the ChildProcess's 'close' (exited, and the channel read to its end).
   */
  channelClosed: boolean;
  /** Exited with its channel closed: its connections and its exit have been reported. */
  gone: boolean;
  /** Connections sent to it that have not ended → the bytes it reported for each so far. */
  conns: Map<number, { bytesIn: number; bytesOut: number }>;
  /** Its exit, reported with its connections once its channel is closed too. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /**
   * rr: sockets handed to it whose message is not written yet (node:cluster queues a handle until
   * the worker acknowledged the one before). This process still holds each one's descriptor.
   */
  sending: Set<Socket>;
}

class ClusterBackend extends NetListenerBackend {
  #script: string;
  #workers: WorkerState[] = [];
  /** Live connection id → the worker serving it. */
  #live = new Map<number, WorkerState>();
  /**
   * rr: connections accepted while the workers are still starting (the port listens first). They
   * wait, unread, as node:cluster's round-robin handle queues them, and are handed on once every
   * worker is ready — not refused as 'no-process' because the pool has not come up yet.
   */
  #early: { socket: Socket; id: number; peer: Peer; at: number }[] = [];
  #next = 0;
  #announced = false;
  readonly #shared: boolean;
  #killed = false;

  constructor(opts: ResolvedOptions, sink: EventSink) {
    if (!cluster.isPrimary) {
      // cluster.fork() exists only in a primary; a worker cannot have workers of its own.
      throw new Error('The cluster model must be started in a primary process, not in a cluster worker');
    }
    const script = compiledScript('server/cluster-worker');
    super(opts, sink, opts.schedulingPolicy === 'none' ? 'hold' : 'accept-paused');
    this.#script = script;
    this.#shared = opts.schedulingPolicy === 'none';
    this.counters.perWorker = new Array<number>(opts.workers).fill(0);
  }

  // Workers are forked only once the port is ours: a failed listen leaves no process. The
  // server is announced when every worker is ready (#onMessage).
  protected onListening(): void {
    for (let i = 0; i < this.opts.workers; i++) this.#fork(i);
  }

  #fork(index: number): void {
    const policy: JsServePolicy = jsServePolicy(this.opts);
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
      index,
      ready: false,
      listener: 'none',
      exited: false,
      channelClosed: false,
      gone: false,
      conns: new Map(),
      sending: new Set(),
      exitCode: null,
      signal: null,
    };
    this.#workers.push(w);
    if (!this.refed) unrefWorker(worker);
    worker.on('message', (msg: FromWorker) => this.#onMessage(w, msg));
    const channelClosed = () => {
      w.channelClosed = true;
      this.#maybeGone(w);
    };
    worker.on('disconnect', channelClosed);
    worker.process.once('close', channelClosed);
    worker.on('exit', (code: number | null, signal: NodeJS.Signals | null) => this.#onExit(w, code, signal));
    // A failed send or kill also ends in 'exit', which reports it; without a listener an
    // 'error' event would throw.
    worker.on('error', () => undefined);
  }

  #onMessage(w: WorkerState, msg: FromWorker): void {
    switch (msg.t) {
      case 'ready':
        if (!this.#shared) this.#isReady(w);
        else if (!this.stopped && this.held !== null) {
          // The held socket's raw TCP handle, as node:cluster's SCHED_NONE passes its own (Node types
          // a send handle as a net.Socket or net.Server; a raw handle is sent as 'net.Native', and
          // unlike a net.Socket it does not start reading in the worker). The worker gets its own
          // descriptor of the same socket (SCM_RIGHTS); this process keeps its (for replacements).
          const handle = (this.held as unknown as { _handle: SendHandle })._handle;
          w.worker.send({ t: 'listen', host: this.opts.host } satisfies ToWorker, handle);
          w.listener = 'sent';
        }
        break;
      case 'listening':
        w.listener = 'open';
        if (this.stopped) this.#stopWorker(w);
        else this.#isReady(w);
        break;
      case 'accepted': {
        this.counters.perWorker[w.index]++;
        const id = this.admit(msg.peer);
        if (id === null) {
          w.worker.send({ t: 'refuse', key: msg.key } satisfies ToWorker);
          break;
        }
        this.#live.set(id, w);
        w.conns.set(id, { bytesIn: 0, bytesOut: 0 });
        this.sink({ type: 'connection', event: { id, peer: msg.peer, pid: w.pid, worker: w.index } });
        w.worker.send({ t: 'admit', key: msg.key, id } satisfies ToWorker);
        break;
      }
      case 'stopped':
        w.listener = 'closed';
        this.checkFinished();
        break;
      case 'error':
        this.sink({ type: 'error', error: systemError(msg.errno, msg.syscall, this.opts.host, this.opts.port) });
        break;
      case 'bytes':
        for (const [id, bytesIn, bytesOut] of msg.conns) {
          this.counters.bytesIn += bytesIn;
          this.counters.bytesOut += bytesOut;
          const conn = w.conns.get(id);
          if (conn) {
            conn.bytesIn += bytesIn;
            conn.bytesOut += bytesOut;
          }
        }
        break;
      case 'closed':
        if (!this.#live.has(msg.id)) break;
        this.#ended(w, msg.id, msg.bytesIn, msg.bytesOut, msg.reason);
        this.checkFinished();
        break;
    }
  }

  #isReady(w: WorkerState): void {
    w.ready = true;
    if (!this.#announced && this.#workers.every((x) => x.ready)) {
      this.#announced = true;
      this.sink({ type: 'listening' });
      for (const e of this.#early.splice(0)) this.#hand(e.socket, e.id, e.peer, e.at);
    }
  }

  #stopWorker(w: WorkerState): void {
    if (w.listener === 'open' && !w.exited && w.worker.isConnected()) w.worker.send({ t: 'stop' } satisfies ToWorker);
  }

  #ended(w: WorkerState, id: number, bytesIn: number, bytesOut: number, reason: DisconnectReason): void {
    this.#live.delete(id);
    w.conns.delete(id);
    this.ended({ id, bytesIn, bytesOut, reason, pid: w.pid, worker: w.index });
  }

  #onExit(w: WorkerState, code: number | null, signal: NodeJS.Signals | null): void {
    w.exited = true;
    w.listener = 'closed';
    w.exitCode = signal === null ? code : null;
    w.signal = signal;
    if (!this.stopped) {
      if (w.ready) {
        this.#fork(w.index); // keep the pool at its size, as a cluster primary is expected to
      } else {
        // Dying before it could serve would die again: give up instead of forking in a loop.
        const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
        this.sink({ type: 'error', error: new Error(`cluster worker ${w.pid} ${how} before it was ready`) });
        this.stop();
      }
    }
    this.#maybeGone(w);
  }

  // A worker that has exited and whose channel is closed is finished: every message it sent has
  // been read, so the connections it still held died with it (the kernel closed their sockets),
  // each reported once with the bytes the worker had reported for it — those are the bytes the
  // counters hold. A worker killed by close() (kill(), after abortConnections() did not end it)
  // ended them: 'aborted'. Then its exit is reported.
  #maybeGone(w: WorkerState): void {
    if (!w.exited || !w.channelClosed || w.gone) return;
    w.gone = true;
    // Sockets still queued for it: this process's descriptor is the only one left.
    for (const socket of w.sending) socket.destroy();
    w.sending.clear();
    const reason = this.#killed ? 'aborted' : 'crash';
    for (const [id, b] of [...w.conns]) this.#ended(w, id, b.bytesIn, b.bytesOut, reason);
    this.counters.reaped++;
    this.sink({ type: 'reap', event: { pid: w.pid, id: 0, exitCode: w.exitCode, signal: w.signal } });
    this.#workers = this.#workers.filter((x) => x !== w);
    this.checkFinished();
  }

  #ready(): WorkerState[] {
    return this.#workers.filter((x) => x.ready && !x.exited && x.worker.isConnected());
  }

  protected refusal(): RejectReason | null {
    if (this.#live.size + this.#early.length >= this.opts.maxClients) return 'max-clients';
    if (!this.#announced) return null; // it waits in #early for the pool to come up
    return this.#ready().length === 0 ? 'no-process' : null;
  }

  protected serve(socket: Socket, id: number, peer: Peer): void {
    // The connection's lifetime counts from now, its accept, however long it waits to be handed on.
    const at = monotonicMs();
    if (!this.#announced) this.#early.push({ socket, id, peer, at });
    else this.#hand(socket, id, peer, at);
  }

  #hand(socket: Socket, id: number, peer: Peer, at: number): void {
    const ready = this.#ready();
    const w = ready[this.#next++ % ready.length];
    this.#live.set(id, w);
    w.conns.set(id, { bytesIn: 0, bytesOut: 0 });
    this.counters.perWorker[w.index]++;
    this.sink({ type: 'connection', event: { id, peer, pid: w.pid, worker: w.index } });
    const msg: ToWorker = { t: 'conn', id, at };
    // This process closes its copy of the descriptor itself, once the message carrying it is
    // written (SCM_RIGHTS: the descriptor is then in flight to the worker, or in it). node:cluster
    // would close it only when the worker acknowledges it (keepOpen: false), which a worker
    // killed meanwhile never does: the client would stay connected to this process forever.
    w.sending.add(socket);
    w.worker.send(msg, socket, { keepOpen: true }, () => {
      // An error too: the worker is going, and its end reports the connection.
      w.sending.delete(socket);
      socket.destroy();
    });
  }

  override stop(): void {
    if (this.stopped) return;
    // Stopped before the pool came up (a worker failed to start): the waiting connections end
    // unserved, and are counted so.
    for (const e of this.#early.splice(0)) {
      e.socket.destroy();
      this.ended({ id: e.id, bytesIn: 0, bytesOut: 0, reason: 'aborted' });
    }
    // none: every worker closes its copy of the listening socket (the port is free once the last
    // one has: a message away); connections they report before their 'stopped' are admitted.
    for (const w of this.#workers) this.#stopWorker(w);
    super.stop();
  }

  // Every connection has ended (and, with 'none', no worker accepts any more): let the workers go
  // (cluster's graceful disconnect); done once each has exited and its IPC descriptor is closed.
  protected drained(): boolean {
    if (this.#live.size > 0) return false;
    if (this.#workers.some((w) => (w.listener === 'sent' || w.listener === 'open') && !w.exited)) return false;
    for (const w of this.#workers) {
      if (!w.exited && w.worker.isConnected() && !w.worker.exitedAfterDisconnect) w.worker.disconnect();
    }
    return this.#workers.length === 0;
  }

  abortConnections(): void {
    const abort: ToWorker = { t: 'abort' };
    for (const w of this.#workers) {
      if (w.exited) continue;
      // A stopped worker (SIGSTOP) would read the message only once continued.
      w.worker.process.kill('SIGCONT');
      if (w.worker.isConnected()) w.worker.send(abort);
    }
  }

  kill(): void {
    this.#killed = true;
    for (const w of this.#workers) if (!w.exited) w.worker.process.kill('SIGKILL');
  }

  // Besides the listener: each worker's process handle and IPC channel. An unref'd primary that
  // exits closes the channels, and node:cluster ends each worker then.
  override setRef(ref: boolean): void {
    super.setRef(ref);
    for (const w of this.#workers) {
      if (ref) {
        w.worker.process.ref();
        w.worker.process.channel?.ref();
      } else {
        unrefWorker(w.worker);
      }
    }
  }
}

function unrefWorker(worker: Worker): void {
  worker.process.unref();
  worker.process.channel?.unref();
}

export function startClusterBackend(opts: ResolvedOptions, sink: EventSink): Backend {
  return new ClusterBackend(opts, sink);
}
