// The native models behind the Backend interface.
//
// How an event reaches a listener (ARCHITECTURE.md has the picture): the server writes a 64-byte
// record to the event pipe → libuv sees the pipe readable → the net.Socket below emits 'data' →
// EventDecoder → the sink (PosixServer) → emit('connection' | 'disconnect' | …).
import { Socket } from 'node:net';
import type { NativeServer } from '../binding';
import type { AddressInfo, Backend, EventSink, ServerStats } from './backend';
import { fromNative, systemError } from '../util/errors';
import { EventDecoder } from './events';
import { native } from '../addon';
import { signalName } from '../util/os-names';
import type { ResolvedOptions } from './options';

class NativeBackend implements Backend {
  readonly pid: number;
  readonly finished: Promise<void>;
  #native: NativeServer;
  #address: AddressInfo;
  #stopped = false;
  #released = false;
  #pipe: Socket;

  constructor(nativeServer: NativeServer, masterExit: Promise<[number | null, number | null]> | null, sink: EventSink) {
    this.#native = nativeServer;
    this.pid = nativeServer.pid;
    this.#address = nativeServer.address();

    const decoder = new EventDecoder();
    const pipe = new Socket({ fd: nativeServer.takeEventFd(), readable: true, writable: false });
    this.#pipe = pipe;
    pipe.on('data', (chunk: Buffer) => {
      for (const ev of decoder.push(chunk)) {
        if (ev.type === 'error') {
          sink({ type: 'error', error: systemError(ev.errno, 'accept', this.#address.address, this.#address.port) });
        } else if (ev.type === 'listening') {
          sink({ type: 'listening' });
        } else {
          sink({ type: ev.type, event: ev.event } as Parameters<EventSink>[0]);
        }
      }
    });
    pipe.on('error', (error) => sink({ type: 'error', error }));
    // EOF: the last writer (master and children, or the server thread) is gone.
    const eof = new Promise<void>((resolve) => pipe.once('close', () => resolve()));

    // Fork only: the waiting thread reports the master's exit status.
    const exited =
      masterExit === null
        ? Promise.resolve()
        : masterExit.then(([code, signal]) => {
            if (this.#stopped) return;
            const how =
              signal !== null ? `was killed by ${signalName(signal) ?? `signal ${signal}`}` : `exited with code ${code}`;
            sink({ type: 'error', error: new Error(`fork server master ${this.pid} ${how}`) });
          });
    this.finished = Promise.all([eof, exited]).then(() => undefined);
  }

  address(): AddressInfo {
    return { ...this.#address };
  }

  stats(): ServerStats {
    return this.#native.stats();
  }

  stop(): void {
    this.#stopped = true;
    this.#native.stop();
  }

  abortConnections(): void {
    this.#native.abortConnections();
  }

  kill(): void {
    this.#native.kill();
  }

  release(): void {
    this.#released = true;
    this.#native.finish();
  }

  // What keeps Node's loop alive for a native server: the event pipe's socket, and for fork the
  // thread-safe function that will report the master's exit.
  setRef(ref: boolean): void {
    if (ref) this.#pipe.ref();
    else this.#pipe.unref();
    if (!this.#released) this.#native.ref(ref);
  }
}

/** Starts a fork, thread or iterative server; throws a SystemError when a syscall fails. */
export function startNativeBackend(opts: ResolvedOptions & { model: 'fork' | 'thread' | 'iterative' }, sink: EventSink): Backend {
  let onExit!: (v: [number | null, number | null]) => void;
  const masterExit = new Promise<[number | null, number | null]>((r) => (onExit = r));
  let nativeServer: NativeServer;
  try {
    nativeServer = native.start(opts, (code, signal) => onExit([code, signal]));
  } catch (e) {
    throw fromNative(e, opts.host, opts.port);
  }
  return new NativeBackend(nativeServer, opts.model === 'fork' ? masterExit : null, sink);
}
