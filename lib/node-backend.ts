// model 'node': Node's own net.Server, in this process, behind the same Backend as the native
// models. libuv does socket/bind/listen/accept on Node's event loop (strace shows accept4 from
// the main thread); one process, one thread serves every client.
//
// What does not apply is 0: eintrRetries (libuv retries EINTR itself, uncounted), reaped (no
// children), eventsDropped (events are emitted directly), refusedNoFd and acceptErrors (libuv
// handles EMFILE with its own reserve descriptor and skips per-client accept errors silently).
import { createServer, Server, Socket } from 'node:net';
import type { AddressInfo, Backend, EventSink, ServerStats } from './backend';
import { systemError } from './errors';
import type { Peer } from './events';
import { JsConnection } from './js-connection';
import type { ResolvedOptions } from './options';

export function zeroStats(): ServerStats {
  return {
    accepted: 0,
    active: 0,
    rejected: 0,
    closed: 0,
    reaped: 0,
    eintrRetries: 0,
    bytesIn: 0,
    bytesOut: 0,
    eventsDropped: 0,
    refusedNoFd: 0,
    acceptErrors: 0,
  };
}

/** The client of an accepted socket; a socket reset before we looked has no address left. */
export function peerOf(socket: Socket, host: string): Peer {
  const family = socket.remoteFamily === 'IPv6' || (socket.remoteFamily === undefined && host.includes(':')) ? 'IPv6' : 'IPv4';
  return { address: socket.remoteAddress ?? '', family, port: socket.remotePort ?? 0 };
}

/** Where a listening net.Server is bound, in the shape of AddressInfo. */
export function boundAddress(server: Server, opts: ResolvedOptions): AddressInfo {
  const a = server.address();
  if (a !== null && typeof a === 'object') return { address: a.address, family: a.family === 'IPv6' ? 'IPv6' : 'IPv4', port: a.port };
  return { address: opts.host, family: opts.host.includes(':') ? 'IPv6' : 'IPv4', port: opts.port };
}

/**
 * Listens as the native servers do: numeric host, port, backlog. An error (EADDRINUSE, …) is
 * Node's own, reported by libuv from listen() (it binds lazily), and goes to `onError`.
 */
export function listenNet(server: Server, opts: ResolvedOptions, onListening: () => void, onError: (e: Error) => void): void {
  server.once('listening', onListening);
  // Rebuilt by systemError() so that every model's OS errors come from one place, alike to the
  // byte (message, code, errno, syscall, address, port).
  server.on('error', (e: NodeJS.ErrnoException) => {
    if (typeof e.errno === 'number' && typeof e.syscall === 'string') {
      onError(systemError(-e.errno, e.syscall, opts.host, opts.port));
    } else {
      onError(e);
    }
  });
  server.listen({ host: opts.host, port: opts.port, backlog: opts.backlog, exclusive: true });
}

class NodeBackend implements Backend {
  readonly pid = process.pid;
  readonly finished: Promise<void>;
  #opts: ResolvedOptions;
  #sink: EventSink;
  #server: Server;
  #stats = zeroStats();
  #live = new Map<number, JsConnection>();
  #listening = false;
  #stopped = false;
  #serverClosed = false;
  #done!: () => void;

  constructor(opts: ResolvedOptions, sink: EventSink) {
    this.#opts = opts;
    this.#sink = sink;
    this.finished = new Promise((resolve) => (this.#done = resolve));
    this.#server = createServer({ allowHalfOpen: true }, (socket) => this.#onConnection(socket));
    listenNet(
      this.#server,
      opts,
      () => {
        this.#listening = true;
        sink({ type: 'listening' });
      },
      (error) => {
        sink({ type: 'error', error });
        // A listen that failed leaves nothing open: the server is finished.
        if (!this.#listening) {
          this.#stopped = true;
          this.#serverClosed = true;
          this.#maybeFinished();
        }
      },
    );
  }

  #onConnection(socket: Socket): void {
    const s = this.#stats;
    const id = ++s.accepted;
    const peer = peerOf(socket, this.#opts.host);
    // The lecture's INFO[100]: the next client is accepted, closed at once and reported.
    if (this.#live.size >= this.#opts.maxClients) {
      s.rejected++;
      socket.destroy();
      this.#sink({ type: 'reject', event: { id, peer, reason: 'max-clients' } });
      return;
    }
    s.active++;
    this.#sink({ type: 'connection', event: { id, peer } });
    const conn = new JsConnection(
      socket,
      this.#opts,
      (end) => {
        this.#live.delete(id);
        s.active--;
        s.closed++;
        this.#sink({ type: 'disconnect', event: { id, ...end } });
        this.#maybeFinished();
      },
      (bytesIn, bytesOut) => {
        s.bytesIn += bytesIn;
        s.bytesOut += bytesOut;
      },
    );
    this.#live.set(id, conn);
  }

  #maybeFinished(): void {
    if (this.#stopped && this.#serverClosed && this.#live.size === 0) this.#done();
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
    // net.Server.close() closes the listening descriptor now (uv_close): the port is free when
    // this returns; the callback only waits for connections, which we track ourselves.
    this.#server.close(() => undefined);
    this.#serverClosed = true;
    this.#maybeFinished();
  }

  abortConnections(): void {
    for (const conn of this.#live.values()) conn.abort();
  }

  kill(): void {
    this.abortConnections();
  }

  release(): void {}
}

export function startNodeBackend(opts: ResolvedOptions, sink: EventSink): Backend {
  return new NodeBackend(opts, sink);
}
