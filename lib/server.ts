// The TypeScript face of a native server, shaped like net.Server: address(), events, close().
//
// How an event reaches a listener (ARCHITECTURE.md has the picture): the server writes a 64-byte
// record to the event pipe → libuv sees the pipe readable → the net.Socket below emits 'data' →
// EventDecoder → this.emit('connection' | 'disconnect' | 'reject' | 'reap' | 'error').
import { EventEmitter } from 'node:events';
import { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import type { NativeServer, NativeStats } from '../binding';
import { fromNative, systemError } from './errors';
import {
  ConnectionEvent,
  DisconnectEvent,
  EventDecoder,
  NativeEvent,
  ReapEvent,
  RejectEvent,
} from './events';
import { native } from './native';
import { CloseOptions, Model, resolveCloseOptions, resolveOptions, ServerOptions } from './options';

export type ServerStats = NativeStats;

export interface AddressInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

export interface ServerEvents {
  listening: [];
  connection: [ConnectionEvent];
  disconnect: [DisconnectEvent];
  reject: [RejectEvent];
  reap: [ReapEvent];
  error: [Error];
  close: [];
}

// After close() has waited this long past its timeout, the fork master is SIGKILLed (its
// children follow by PR_SET_PDEATHSIG). A safety net: a healthy master never needs it.
const KILL_GRACE_MS = 5000;

const signalName = (n: number): string =>
  Object.entries(osConstants.signals).find(([, v]) => v === n)?.[0] ?? `signal ${n}`;

interface MasterExit {
  code: number | null;
  signal: number | null;
}

export class PosixServer extends EventEmitter<ServerEvents> {
  /** The model this server runs. */
  readonly model: Model;
  /** Fork model: the master process; otherwise this process. */
  readonly pid: number;

  #native: NativeServer;
  #address: AddressInfo;
  #events: Socket;
  #finalStats: ServerStats | null = null;
  #closing: Promise<void> | null = null;
  #eof: Promise<void>;
  #masterExit: Promise<void>;

  /** @internal use startServer() */
  constructor(model: Model, nativeServer: NativeServer, masterExit: Promise<MasterExit> | null) {
    super();
    this.model = model;
    this.#native = nativeServer;
    this.pid = nativeServer.pid;
    this.#address = nativeServer.address();

    const decoder = new EventDecoder();
    this.#events = new Socket({ fd: nativeServer.takeEventFd(), readable: true, writable: false });
    this.#events.on('data', (chunk: Buffer) => {
      for (const ev of decoder.push(chunk)) this.#dispatch(ev);
    });
    this.#eof = new Promise((resolve) => {
      this.#events.once('close', () => resolve());
    });
    this.#events.on('error', (err) => this.emit('error', err));

    // Fork model only: the master's exit, reported by the native waiting thread.
    this.#masterExit =
      masterExit === null
        ? Promise.resolve()
        : masterExit.then(({ code, signal }) => {
            if (this.#closing !== null) return;
            const how = signal !== null ? `was killed by ${signalName(signal)}` : `exited with code ${code}`;
            this.emit('error', new Error(`fork server master ${this.pid} ${how}`));
            // The master is gone, so are its children (PR_SET_PDEATHSIG): finish as close() would.
            void this.close();
          });
  }

  /** Where the server listens, as net.Server's address(); null once closed. */
  address(): AddressInfo | null {
    return this.#finalStats === null ? { ...this.#address } : null;
  }

  /** Exact counters, from the page shared by Node, the master and its children. */
  stats(): ServerStats {
    return this.#finalStats ?? this.#native.stats();
  }

  /** True until close() has finished. */
  get listening(): boolean {
    return this.#closing === null;
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
      this.#native.stop();
      let killTimer: NodeJS.Timeout | undefined;
      const abortTimer = setTimeout(() => {
        this.#native.abortConnections();
        killTimer = setTimeout(() => this.#native.kill(), KILL_GRACE_MS);
      }, timeoutMs);
      this.#closing = Promise.all([this.#eof, this.#masterExit]).then(() => {
        clearTimeout(abortTimer);
        clearTimeout(killTimer);
        this.#finalStats = this.#native.stats();
        this.#native.finish();
        this.emit('close');
      });
    }
    if (callback) this.#closing.then(() => callback(), callback);
    return this.#closing;
  }

  #dispatch(ev: NativeEvent): void {
    switch (ev.type) {
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
      case 'error':
        this.emit('error', systemError(ev.errno, 'accept', this.#address.address, this.#address.port));
        break;
      case 'listening':
        this.emit('listening');
        break;
    }
  }
}

/**
 * Starts a genuine POSIX server. Bad options throw a TypeError or RangeError at once; an OS
 * failure (EADDRINUSE, EACCES, …) rejects with an Error carrying code and syscall, leaving no
 * process, thread or descriptor behind.
 */
export function startServer(options: ServerOptions): Promise<PosixServer> {
  const opts = resolveOptions(options);
  let resolveExit!: (v: MasterExit) => void;
  const masterExit = new Promise<MasterExit>((r) => (resolveExit = r));
  let nativeServer: NativeServer;
  try {
    nativeServer = native.start(opts, (code, signal) => resolveExit({ code, signal }));
  } catch (e) {
    return Promise.reject(fromNative(e, opts.host, opts.port));
  }
  const server = new PosixServer(opts.model, nativeServer, opts.model === 'fork' ? masterExit : null);
  // Resolve once the server reports it is in its accept loop (fork: the master has reset its
  // signals, closed Node's descriptors and installed its handlers), as net.Server's 'listening'.
  return new Promise((resolve, reject) => {
    let failure: Error | undefined;
    const onError = (e: Error) => (failure = e);
    const onClose = () => {
      server.off('listening', onListening);
      server.off('error', onError);
      reject(failure ?? new Error(`${opts.model} server closed before listening`));
    };
    const onListening = () => {
      server.off('close', onClose);
      server.off('error', onError);
      resolve(server);
    };
    server.once('listening', onListening);
    server.once('close', onClose);
    server.on('error', onError);
  });
}
