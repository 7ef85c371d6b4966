// What Node's own models ('node', 'cluster') have in common: a net.Server in this process that
// listens and accepts, the counters, admission (the door's rules, then maxClients), and close()'s
// first step. How a
// connection is served and when the server is finished belong to each model.
//
// What does not apply to them is 0: eintrRetries (libuv retries EINTR itself, uncounted),
// eventsDropped and eventWakeups (events are emitted directly), refusedNoFd and acceptErrors (libuv handles EMFILE
// with its own reserve descriptor and skips per-client accept errors silently).
import { createServer, Server, Socket } from 'node:net';
import type { AddressInfo, Backend, EventSink, ServerStats } from './backend';
import { systemError } from '../util/errors';
import { JsDoor } from './door';
import type { DisconnectEvent, Peer, RejectReason } from './events';
import type { ResolvedOptions } from './options';

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
    perWorker: [],
  };
  /** stop() was called, or listen failed: no connection will be accepted any more. */
  protected stopped = false;
  /** server.ref()/unref(). */
  protected refed = true;
  #server: Server;
  #listening = false;
  /** The door's rules (door.ts), applied right after accept, as every native model does. */
  #door: JsDoor;
  /** Live connection id → what the door holds for it (its address, with maxPerSource). */
  #doorKeys = new Map<number, string>();
  #done!: () => void;

  /** `pauseOnConnect`: the cluster primary hands sockets on without reading a byte. */
  constructor(opts: ResolvedOptions, sink: EventSink, pauseOnConnect: boolean) {
    this.opts = opts;
    this.sink = sink;
    this.finished = new Promise((resolve) => (this.#done = resolve));
    this.#door = new JsDoor(opts);
    // allowHalfOpen: a client's FIN does not end our side; JsConnection ends it after the echo.
    this.#server = createServer({ allowHalfOpen: true, pauseOnConnect }, (socket) => this.#admit(socket));
    this.#server.once('listening', () => {
      this.#listening = true;
      this.onListening();
    });
    this.#server.on('error', (e: NodeJS.ErrnoException) => {
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
    this.#server.listen({ host: opts.host, port: opts.port, backlog: opts.backlog, exclusive: true });
  }

  /** The server listens: announce it (sink 'listening'), or first start what serving needs. */
  protected abstract onListening(): void;
  /** Why a new connection must be refused now, or null to serve it. */
  protected abstract refusal(): RejectReason | null;
  /** Serve an admitted connection; `counters.active` already counts it. */
  protected abstract serve(socket: Socket, id: number, peer: Peer): void;
  /** After stop(): move the shutdown on; true once nothing of the server is left. */
  protected abstract drained(): boolean;

  // The lecture's INFO[100]: past maxClients the client is accepted, closed at once, reported.
  #admit(socket: Socket): void {
    const c = this.counters;
    const id = ++c.accepted;
    const family =
      socket.remoteFamily === 'IPv6' || (socket.remoteFamily === undefined && this.opts.host.includes(':')) ? 'IPv6' : 'IPv4';
    // A client that reset before we looked has no address left.
    const peer: Peer = { address: socket.remoteAddress ?? '', family, port: socket.remotePort ?? 0 };
    const refuse = (reason: RejectReason) => {
      c.rejected++;
      socket.destroy();
      this.sink({ type: 'reject', event: { id, peer, reason } });
    };
    // The door first (before any worker is bothered), then maxClients.
    const door = this.#door.admit(peer.address);
    if (!door.admitted) return refuse(door.reason);
    const reason = this.refusal();
    if (reason !== null) {
      this.#door.release(door.key);
      return refuse(reason);
    }
    if (door.key !== null) this.#doorKeys.set(id, door.key);
    c.active++;
    this.serve(socket, id, peer);
  }

  /** A served connection is over: count it and report it. */
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
    const a = this.#server.address();
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
    if (this.#listening) this.#server.close(() => undefined);
    this.checkFinished();
  }

  abstract abortConnections(): void;
  abstract kill(): void;

  release(): void {}

  // The listening handle, as net.Server.ref()/unref(); subclasses add what else they hold.
  setRef(ref: boolean): void {
    this.refed = ref;
    if (ref) this.#server.ref();
    else this.#server.unref();
  }
}
