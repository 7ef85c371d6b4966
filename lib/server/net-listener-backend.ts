// What Node's own models ('node', 'cluster') have in common: the listening socket in this
// process, the counters, admission (the door's rules, then maxClients: door.ts), and close()'s
// first step. How a connection is
// served and when the server is finished belong to each model.
//
// The listener is a net.Server that accepts here ('node', cluster 'rr'), or a socket this process
// only holds for its workers, which accept on it themselves (cluster 'none'): Node cannot listen
// without accepting, so that socket is made by the addon (socket → bind → listen) and held as a
// net.Socket that never reads.
//
// What does not apply to them is 0: eintrRetries (libuv retries EINTR itself, uncounted),
// eventsDropped and eventWakeups (events are emitted directly), refusedNoFd and acceptErrors (libuv handles EMFILE
// with its own reserve descriptor and skips per-client accept errors silently), reapedCpuUs (libuv
// reaps cluster's workers and keeps no rusage).
import { closeSync } from 'node:fs';
import { createServer, Server, Socket } from 'node:net';
import { native } from '../addon';
import type { AddressInfo, Backend, EventSink, ServerStats } from './backend';
import { fromNative, systemError } from '../util/errors';
import { JsDoor } from './door';
import type { DisconnectEvent, Peer, RejectReason } from './events';
import { peerOf } from './js-connection';
import type { ResolvedOptions } from './options';

/**
 * accept: a net.Server accepts in this process; accept-paused: the same, without reading a byte
 * (the cluster primary hands sockets on); hold: listen, never accept (cluster 'none').
 */
type ListenerMode = 'accept' | 'accept-paused' | 'hold';

export abstract class NetListenerBackend implements Backend {
  readonly pid = process.pid;
  readonly finished: Promise<void>;
  protected readonly opts: ResolvedOptions;
  protected readonly sink: EventSink;
  protected readonly counters: ServerStats = {
    accepted: 0,
    active: 0,
    rejected: 0,
    closed: 0,
    reaped: 0,
    eintrRetries: 0,
    bytesIn: 0,
    bytesOut: 0,
    eventsDropped: 0,
    eventWakeups: 0,
    refusedNoFd: 0,
    acceptErrors: 0,
    reapedCpuUs: 0,
    perWorker: [],
  };
  /** stop() was called, or listen failed: no connection will be accepted any more. */
  protected stopped = false;
  /** server.ref()/unref(). */
  protected refed = true;
  /** 'hold': the listening socket, which this process never reads or accepts on. */
  protected readonly held: Socket | null = null;
  #server: Server | null = null;
  #heldAddress: AddressInfo | null = null;
  #listening = false;
  #done!: () => void;
  /** The door's rules (door.ts), applied at admission, as every native model applies them after accept. */
  #door: JsDoor;
  /** Live connection id → what the door holds for it (its address, with maxPerSource). */
  #doorKeys = new Map<number, string>();

  constructor(opts: ResolvedOptions, sink: EventSink, mode: ListenerMode) {
    this.opts = opts;
    this.sink = sink;
    this.finished = new Promise((resolve) => (this.#done = resolve));
    this.#door = new JsDoor(opts);
    if (mode === 'hold') {
      // Throws a SystemError (bind EADDRINUSE…) from the constructor, so startServer() rejects
      // with nothing left behind.
      let made: { fd: number; address: AddressInfo };
      try {
        made = native.listenSocket({ host: opts.host, port: opts.port, backlog: opts.backlog });
      } catch (e) {
        throw fromNative(e, opts.host, opts.port);
      }
      try {
        this.held = new Socket({ fd: made.fd, readable: false, writable: false });
      } catch (e) {
        closeSync(made.fd);
        throw e;
      }
      this.#heldAddress = made.address;
      this.#listening = true;
      process.nextTick(() => this.onListening());
      return;
    }
    // allowHalfOpen: a client's FIN does not end our side; JsConnection ends it after the echo.
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: mode === 'accept-paused' }, (socket) =>
      this.#accepted(socket),
    );
    this.#server = server;
    server.once('listening', () => {
      this.#listening = true;
      this.onListening();
    });
    server.on('error', (e: NodeJS.ErrnoException) => {
      // libuv binds lazily and reports bind's error from listen(), as Node users see it. Rebuilt
      // by systemError() so that every model's OS errors come from one place, alike to the byte.
      const error =
        typeof e.errno === 'number' && typeof e.syscall === 'string' ? systemError(-e.errno, e.syscall, opts.host, opts.port) : e;
      sink({ type: 'error', error });
      if (!this.#listening) {
        // A listen that failed leaves nothing open: the server is finished.
        this.stopped = true;
        this.checkFinished();
      }
    });
    server.listen({ host: opts.host, port: opts.port, backlog: opts.backlog, exclusive: true });
  }

  /** The server listens: announce it (sink 'listening'), or first start what serving needs. */
  protected abstract onListening(): void;
  /** Why a new connection must be refused now, or null to serve it. */
  protected abstract refusal(): RejectReason | null;
  /** Serve a connection accepted and admitted here; `counters.active` already counts it. */
  protected abstract serve(socket: Socket, id: number, peer: Peer): void;
  /** After stop(): move the shutdown on; true once nothing of the server is left. */
  protected abstract drained(): boolean;

  #accepted(socket: Socket): void {
    const peer = peerOf(socket, this.opts.host);
    const id = this.admit(peer);
    if (id === null) socket.destroy();
    else this.serve(socket, id, peer);
  }

  /**
   * A connection accepted (here, or by a cluster worker) is counted and gets its id. The door's
   * rules come first (denied, per-source, rate), then the lecture's INFO[100]: past maxClients
   * it is refused. Refused: counted, reported, and null is returned — the caller closes it at once.
   */
  protected admit(peer: Peer): number | null {
    const c = this.counters;
    const id = ++c.accepted;
    const refuse = (reason: RejectReason) => {
      c.rejected++;
      this.sink({ type: 'reject', event: { id, peer, reason } });
      return null;
    };
    const door = this.#door.admit(peer.address);
    if (!door.admitted) return refuse(door.reason);
    const reason = this.refusal();
    if (reason !== null) {
      this.#door.release(door.key);
      return refuse(reason);
    }
    if (door.key !== null) this.#doorKeys.set(id, door.key);
    c.active++;
    return id;
  }

  /** A served connection is over: count it and report it (and its address leaves the door's count). */
  protected ended(event: DisconnectEvent): void {
    const key = this.#doorKeys.get(event.id);
    if (key !== undefined) {
      this.#doorKeys.delete(event.id);
      this.#door.release(key);
    }
    this.counters.active--;
    this.counters.closed++;
    this.sink({ type: 'disconnect', event });
  }

  protected checkFinished(): void {
    if (this.stopped && this.drained()) this.#done();
  }

  address(): AddressInfo {
    if (this.#heldAddress !== null) return { ...this.#heldAddress };
    const a = this.#server?.address();
    if (a !== null && typeof a === 'object')
      return { address: a.address, family: a.family === 'IPv6' ? 'IPv6' : 'IPv4', port: a.port };
    return { address: this.opts.host, family: this.opts.host.includes(':') ? 'IPv6' : 'IPv4', port: this.opts.port };
  }

  stats(): ServerStats {
    return { ...this.counters, perWorker: [...this.counters.perWorker] };
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    // net.Server.close() closes the listening descriptor now (uv_close): the port is free when
    // this returns; its callback would wait for connections, which the models track themselves.
    // A held socket is closed the same way (the workers' copies are the subclass's business).
    if (this.#server !== null && this.#listening) this.#server.close(() => undefined);
    this.held?.destroy();
    this.checkFinished();
  }

  abstract abortConnections(): void;
  abstract kill(): void;

  release(): void {}

  // The listening handle, as net.Server.ref()/unref(); subclasses add what else they hold.
  setRef(ref: boolean): void {
    this.refed = ref;
    if (ref) {
      this.#server?.ref();
      this.held?.ref();
    } else {
      this.#server?.unref();
      this.held?.unref();
    }
  }
}
