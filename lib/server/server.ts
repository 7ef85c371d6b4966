// The TypeScript face of every server model, shaped like net.Server: address(), events, close(),
// ref()/unref(), [Symbol.asyncDispose], the `signal` option. What runs the server is a Backend
// (backend.ts): the native models, or Node's own servers.
import { EventEmitter } from 'node:events';
import type { AddressInfo, Backend, ServerEvent, ServerStats as BackendStats } from './backend';
import type { ConnectionEvent, DisconnectEvent, ReapEvent, RejectEvent, TraceEvent } from './events';
import { startClusterBackend } from './cluster-backend';
import { startNativeBackend } from './native-backend';
import { startNodeBackend } from './node-backend';
import { abortError } from '../util/errors';
import { listenAddress, numericAddress } from '../util/host';
import { zombiesOf } from '../util/proc';
import {
  CloseOptions,
  Model,
  PROCESS_MODELS,
  ResolvedOptions,
  resolveCloseOptions,
  resolveOptions,
  ServerOptions,
} from './options';

/** The counters of backend.ts, and the zombies /proc shows. */
export interface ServerStats extends BackendStats {
  zombies: number;
}

export interface ServerEvents {
  listening: [];
  connection: [ConnectionEvent];
  disconnect: [DisconnectEvent];
  reject: [RejectEvent];
  reap: [ReapEvent];
  /** With the `trace` option: every real syscall, as it happened. */
  trace: [TraceEvent];
  error: [Error];
  close: [];
}

// After close() has waited this long past its timeout, the server is killed (fork: SIGKILL to
// the master; its children follow by PR_SET_PDEATHSIG; cluster: SIGKILL to the workers), and
// what it was still serving is reported as 'aborted'. A safety net: a healthy server never needs
// it (the fork master itself SIGKILLs a child that outlives its SIGTERM by a second).
const KILL_GRACE_MS = 2000;

export class PosixServer extends EventEmitter<ServerEvents> {
  /** The model this server runs. */
  readonly model: Model;
  /** Process models (fork, prefork, reuseport): the master process; otherwise this process (cluster: the primary). */
  readonly pid: number;

  /**
   * With the `trace` option: the calls made before startServer() resolved (socket, bind, listen,
   * and the master's or server thread's first steps), which no listener could have seen. Later
   * calls arrive as 'trace' events.
   */
  readonly startupTrace: TraceEvent[] = [];

  #backend: Backend;
  #listening = false;
  #finalStats: ServerStats | null = null;
  #closing: Promise<void> | null = null;
  /** ref()/unref(): whether this server keeps Node's event loop alive. */
  #refed = true;
  /** close()'s timers, which follow ref()/unref() too. */
  #closeTimers = new Set<NodeJS.Timeout>();
  /** Events that arrived after 'listening' in the same turn (see #dispatch); null once released. */
  #held: ServerEvent[] | null = null;
  /** The held events are out: from now on, events nobody listens to need not be made (#hearConnections). */
  #startedUp = false;

  /** @internal use startServer() */
  constructor(model: Model, start: (sink: (ev: ServerEvent) => void) => Backend, signal?: AbortSignal) {
    super();
    this.model = model;
    this.#backend = start((ev) => this.#dispatch(ev));
    this.pid = this.#backend.pid;
    this.#watchListeners();
    // A server that ends on its own (its master died) closes as close() would.
    void this.#backend.finished.then(() => {
      if (this.#closing === null) void this.close();
    });
    if (signal) this.#closeOnAbort(signal);
  }

  // Who listens to 'connection' and 'disconnect' decides whether a native server writes their
  // records (#hearConnections). Through EventEmitter's own events, which ServerEvents does not
  // list (they are not the server's).
  readonly #onNewListener = (name: string | symbol): void => {
    if (name === 'connection' || name === 'disconnect') this.#backend.hearConnections?.(true);
  };
  readonly #onRemoveListener = (): void => this.#hearConnections();

  #watchListeners(): void {
    const emitter = this as EventEmitter;
    if (!emitter.listeners('newListener').includes(this.#onNewListener)) emitter.on('newListener', this.#onNewListener);
    if (!emitter.listeners('removeListener').includes(this.#onRemoveListener)) {
      emitter.on('removeListener', this.#onRemoveListener);
    }
  }

  /** As EventEmitter's; the server's own watch on its listeners stays. */
  override removeAllListeners(eventName?: Parameters<EventEmitter<ServerEvents>['removeAllListeners']>[0]): this {
    // EventEmitter tells "all events" from an event named undefined by the number of arguments.
    if (arguments.length === 0) super.removeAllListeners();
    else super.removeAllListeners(eventName);
    this.#watchListeners();
    this.#hearConnections();
    return this;
  }

  // The `signal` option: aborting closes the server, as net.Server's does. Aborted while it is
  // still starting, it closes once listening (startServer() rejects with an AbortError then).
  #closeOnAbort(signal: AbortSignal): void {
    const onAbort = () => {
      if (this.#listening) void this.close();
      else this.once('listening', () => void this.close());
    };
    signal.addEventListener('abort', onAbort, { once: true });
    this.once('close', () => signal.removeEventListener('abort', onAbort));
  }

  /** Where the server listens, as net.Server's address(); null once closed. */
  address(): AddressInfo | null {
    return this.#finalStats === null ? this.#backend.address() : null;
  }

  /**
   * Exact counters (native models: from the page shared by Node, the master and its children),
   * and `zombies`: the master's children in state Z, read from /proc (process models; 0 for others).
   */
  stats(): ServerStats {
    if (this.#finalStats) return this.#finalStats;
    const zombies = (PROCESS_MODELS as readonly string[]).includes(this.model) ? zombiesOf(this.pid).length : 0;
    return { ...this.#backend.stats(), zombies };
  }

  /** True until close() has been called. */
  get listening(): boolean {
    return this.#closing === null;
  }

  /**
   * Lets Node exit while this server runs, as net.Server's unref(): the server alone no longer
   * keeps the event loop alive (nor does its close() once called). When Node exits, the server is
   * torn down with it: the fork master and its children, the threads, the cluster workers.
   * As for net.Server, a connection of Node's own models ('node') is a socket of its own that
   * still keeps Node alive while it is served.
   */
  unref(): this {
    this.#setRef(false);
    return this;
  }

  /** Undoes unref(): the server keeps Node's event loop alive again (the default). */
  ref(): this {
    this.#setRef(true);
    return this;
  }

  #setRef(refed: boolean): void {
    this.#refed = refed;
    if (this.#finalStats === null) this.#backend.setRef(refed);
    for (const timer of this.#closeTimers) {
      if (refed) timer.ref();
      else timer.unref();
    }
  }

  /** `await using server = await startServer(…)`: close() with its default timeout, at scope exit. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Stops accepting at once (the port is free when this returns), lets live connections finish
   * for `timeoutMs` (default 2000), then ends them. Settles when every process, thread and
   * descriptor of the server is gone. Calling it again returns the same promise.
   */
  close(options?: CloseOptions): Promise<void>;
  close(callback: (err?: Error) => void): Promise<void>;
  close(options: CloseOptions, callback: (err?: Error) => void): Promise<void>;
  close(a?: CloseOptions | ((err?: Error) => void), b?: (err?: Error) => void): Promise<void> {
    const callback = typeof a === 'function' ? a : b;
    const options = typeof a === 'function' ? undefined : a;
    if (this.#closing === null) {
      const timeoutMs = resolveCloseOptions(options);
      const backend = this.#backend;
      backend.stop();
      const timers = this.#closeTimers;
      const timer = (ms: number, fn: () => void) => {
        const t = setTimeout(() => {
          timers.delete(t);
          fn();
        }, ms);
        if (!this.#refed) t.unref();
        timers.add(t);
      };
      timer(timeoutMs, () => {
        backend.abortConnections();
        timer(KILL_GRACE_MS, () => backend.kill());
      });
      this.#closing = backend.finished.then(() => {
        this.#releaseHeld(); // every event before 'close'
        for (const t of timers) clearTimeout(t);
        timers.clear();
        this.#finalStats = { ...backend.stats(), zombies: 0 };
        backend.release();
        this.emit('close');
      });
    }
    if (callback) this.#closing.then(() => callback(), callback);
    return this.#closing;
  }

  // Events come in batches (a drain of the ring, a message from a cluster worker). The events
  // that follow 'listening' in its batch would be emitted before the code awaiting startServer()
  // has resumed to add its listeners, and so be lost to it (a pool thread's first trace call, a
  // connection to a fixed port): they are held until the next turn of the event loop, in order.
  #dispatch(ev: ServerEvent): void {
    if (this.#held !== null) this.#held.push(ev);
    else this.#emitEvent(ev);
  }

  #releaseHeld(): void {
    const held = this.#held;
    this.#held = null;
    for (const ev of held ?? []) this.#emitEvent(ev);
    this.#startedUp = true;
    this.#hearConnections();
  }

  // Until the held events are out, a listener may still come for them: the backend keeps
  // writing every event until then (its initial state).
  #hearConnections(): void {
    if (this.#startedUp && this.#finalStats === null) {
      this.#backend.hearConnections?.(this.listenerCount('connection') + this.listenerCount('disconnect') > 0);
    }
  }

  #emitEvent(ev: ServerEvent): void {
    switch (ev.type) {
      case 'listening':
        this.#listening = true;
        this.#held = [];
        setImmediate(() => this.#releaseHeld());
        this.emit('listening');
        break;
      case 'connection':
        this.emit('connection', ev.event);
        break;
      case 'disconnect':
        this.emit('disconnect', ev.event);
        break;
      case 'reject':
        this.emit('reject', ev.event);
        break;
      case 'reap':
        this.emit('reap', ev.event);
        break;
      case 'trace':
        if (this.#listening) this.emit('trace', ev.event);
        else this.startupTrace.push(ev.event);
        break;
      case 'error':
        this.emit('error', ev.error);
        break;
    }
  }
}

function startBackend(opts: ResolvedOptions, sink: (ev: ServerEvent) => void): Backend {
  switch (opts.model) {
    case 'node':
      return startNodeBackend(opts, sink);
    case 'cluster':
      return startClusterBackend(opts, sink);
    default:
      return startNativeBackend({ ...opts, model: opts.model }, sink);
  }
}

/**
 * Starts a server. Bad options throw a TypeError or RangeError at once, with Node's `code`
 * (ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE, ERR_OUT_OF_RANGE, ERR_SOCKET_BAD_PORT); an OS
 * failure (EADDRINUSE, EACCES, …) rejects with an Error carrying code and syscall, leaving no
 * process, thread or descriptor behind; so does an aborted `signal` (an AbortError, code
 * ABORT_ERR), and a host name that does not resolve (dns.lookup's ENOTFOUND, as net.Server#listen
 * reports it). Resolves once the server is in its accept loop ('listening').
 */
export function startServer(options: ServerOptions): Promise<PosixServer> {
  const opts = resolveOptions(options);
  const signal = opts.signal;
  if (signal?.aborted) return Promise.reject(abortError(signal));
  // A numeric address starts now; a name first through dns.lookup, as net.Server#listen does.
  if (numericAddress(opts.host)) return listen(opts);
  return listenAddress(opts.host).then(({ address }) => {
    if (signal?.aborted) throw abortError(signal);
    return listen({ ...opts, host: address });
  });
}

function listen(opts: ResolvedOptions): Promise<PosixServer> {
  const signal = opts.signal;
  let server: PosixServer;
  try {
    server = new PosixServer(opts.model, (sink) => startBackend(opts, sink), signal);
  } catch (e) {
    return Promise.reject(e);
  }
  // Process models: 'listening' comes once the master has reset its signals, closed Node's
  // descriptors and installed its handlers (pool models: and every worker is ready); cluster: once
  // every worker is ready. A failure before that (a JS model's listen error, a pool worker that
  // could not listen…) arrives as 'error' before 'close', and the first one becomes the rejection.
  return new Promise((resolve, reject) => {
    let failure: Error | undefined;
    const onError = (e: Error) => (failure ??= e);
    const onClose = () => {
      server.off('listening', onListening);
      server.off('error', onError);
      reject(failure ?? (signal?.aborted ? abortError(signal) : new Error(`${opts.model} server closed before listening`)));
    };
    const onListening = () => {
      // Aborted while starting: the server closes now (#closeOnAbort); onClose rejects.
      if (signal?.aborted) return;
      server.off('close', onClose);
      server.off('error', onError);
      resolve(server);
    };
    server.once('listening', onListening);
    server.once('close', onClose);
    server.on('error', onError);
  });
}
