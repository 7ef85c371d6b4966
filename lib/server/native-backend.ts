// The native models behind the Backend interface.
//
// How an event reaches a listener (ARCHITECTURE.md has the picture): the server writes a 64-byte
// record to the event pipe → libuv sees the pipe readable → the net.Socket below emits 'data' →
// EventDecoder → the sink (PosixServer) → emit('connection' | 'disconnect' | …).
import { Socket } from 'node:net';
import type { NativeModel, NativeServer } from '../binding';
import type { AddressInfo, Backend, EventSink, ServerStats } from './backend';
import { fromNative, systemError } from '../util/errors';
import { EventDecoder } from './events';
import { native } from '../addon';
import { signalName } from '../util/os-names';
import { POOL_MODELS, PROCESS_MODELS, type ResolvedOptions } from './options';

class NativeBackend implements Backend {
  readonly pid: number;
  readonly finished: Promise<void>;
  #native: NativeServer;
  #address: AddressInfo;
  #stopped = false;

  constructor(
    model: NativeModel,
    nativeServer: NativeServer,
    masterExit: Promise<[number | null, number | null]> | null,
    sink: EventSink,
  ) {
    this.#native = nativeServer;
    this.pid = nativeServer.pid;
    this.#address = nativeServer.address();

    // The pool models put their worker's index where the thread model puts its slot.
    const decoder = new EventDecoder((POOL_MODELS as readonly string[]).includes(model) ? 'worker' : 'slot');
    const pipe = new Socket({ fd: nativeServer.takeEventFd(), readable: true, writable: false });
    pipe.on('data', (chunk: Buffer) => {
      for (const ev of decoder.push(chunk)) {
        if (ev.type === 'error') {
          sink({ type: 'error', error: systemError(ev.errno, ev.syscall, this.#address.address, this.#address.port) });
        } else if (ev.type === 'listening') {
          sink({ type: 'listening' });
        } else {
          sink({ type: ev.type, event: ev.event } as Parameters<EventSink>[0]);
        }
      }
    });
    pipe.on('error', (error) => sink({ type: 'error', error }));
    // EOF: the last writer (master and its children or workers, or the server thread) is gone.
    const eof = new Promise<void>((resolve) => pipe.once('close', () => resolve()));

    // Process models only: the waiting thread reports the master's exit status.
    const exited =
      masterExit === null
        ? Promise.resolve()
        : masterExit.then(([code, signal]) => {
            if (this.#stopped) return;
            const how =
              signal !== null ? `was killed by ${signalName(signal) ?? `signal ${signal}`}` : `exited with code ${code}`;
            sink({ type: 'error', error: new Error(`${model} server master ${this.pid} ${how}`) });
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
    this.#native.finish();
  }
}

/** Starts a native server (fork, thread, iterative, prefork, reuseport); throws a SystemError when a syscall fails. */
export function startNativeBackend(opts: ResolvedOptions & { model: NativeModel }, sink: EventSink): Backend {
  let onExit!: (v: [number | null, number | null]) => void;
  const masterExit = new Promise<[number | null, number | null]>((r) => (onExit = r));
  let nativeServer: NativeServer;
  try {
    nativeServer = native.start(opts, (code, signal) => onExit([code, signal]));
  } catch (e) {
    throw fromNative(e, opts.host, opts.port);
  }
  const hasMaster = (PROCESS_MODELS as readonly string[]).includes(opts.model);
  return new NativeBackend(opts.model, nativeServer, hasMaster ? masterExit : null, sink);
}
