// The native models behind the Backend interface.
//
// How an event reaches a listener (ARCHITECTURE.md has the picture): the server publishes a
// 64-byte record into the ring in the shared page (native/core/event_ring.h) → the addon's drain
// thread takes it out of the ring within 10 ms, whatever this thread is doing, and keeps it
// (native/core/event_drain.h) → a byte on the relay pipe, which libuv watches through the
// net.Socket below, when this thread had taken everything before → takeEvents() → EventDecoder →
// the sink (PosixServer) → emit('connection' | 'disconnect' | …). Nothing on the server's side
// wakes anyone per event, and this thread wakes at most once per drain while events flow.
//
// When the server is over (every writer gone, and for fork the master reaped), reconcile() names
// the connections that died with a process of the server without an event saying so (the fork
// master was killed, and its children with it): each is reported here, once, before 'error' and
// before `finished` lets close() settle.
import { Socket } from 'node:net';
import type { NativeDoor, NativeModel, NativeServer, NativeStartOptions } from '../binding';
import { anyDoorRule } from './door';
import type { AddressInfo, Backend, EventSink, ServerStats } from './backend';
import { fromNative, systemError } from '../util/errors';
import { uringError } from './uring';
import { type DisconnectEvent, EventDecoder } from './events';
import { native } from '../addon';
import { signalName } from '../util/os-names';
import { POOL_MODELS, PROCESS_MODELS, type ResolvedOptions } from './options';

/**
 * A test switch: how many events the drain thread keeps for this thread at most (default
 * 262,144), so that a test can make a wedged Node lose events without waiting for the real bound.
 */
const EVENT_BACKLOG_ENV = 'POSIX_SERVERS_TEST_EVENT_BACKLOG';

class NativeBackend implements Backend {
  readonly pid: number;
  readonly finished: Promise<void>;
  #native: NativeServer;
  #address: AddressInfo;
  #stopped = false;
  #released = false;
  #pipe: Socket;
  /** kill() was called: what dies now, close() ended ('aborted'), not a crash. */
  #killed = false;
  /** Connections reported by a 'connection' event and not yet by a 'disconnect'. */
  #live = new Set<number>();

  constructor(
    model: NativeModel,
    nativeServer: NativeServer,
    masterExit: Promise<[number | null, number | null]> | null,
    sink: EventSink,
    program: string | null,
  ) {
    this.#native = nativeServer;
    this.pid = nativeServer.pid;
    this.#address = nativeServer.address();

    // The pool models put their worker's index where the thread model puts its slot.
    const decoder = new EventDecoder((POOL_MODELS as readonly string[]).includes(model) ? 'worker' : 'slot');
    // Takes every event waiting and hands them on. The last call, which finds none, tells the
    // drain thread to ring the relay for the next ones.
    const deliver = (): void => {
      for (let batch = nativeServer.takeEvents(); batch !== null; batch = nativeServer.takeEvents()) {
        for (const ev of decoder.push(batch)) {
          if (ev.type === 'error') {
            sink({ type: 'error', error: systemError(ev.errno, ev.syscall, this.#address.address, this.#address.port) });
          } else if (ev.type === 'listening') {
            sink({ type: 'listening' });
          } else {
            if (ev.type === 'connection') this.#live.add(ev.event.id);
            else if (ev.type === 'disconnect') this.#live.delete(ev.event.id);
            else if (ev.type === 'trace' && ev.event.call === 'execve' && program !== null) ev.event.program = program;
            // The decoded event as it is ({ type, event }): no second object per event.
            sink(ev as Parameters<EventSink>[0]);
          }
        }
      }
    };

    const pipe = new Socket({ fd: nativeServer.takeEventFd(), readable: true, writable: false });
    this.#pipe = pipe;
    // The relay: events are waiting. Take them all.
    pipe.on('data', deliver);
    pipe.on('error', (error) => sink({ type: 'error', error }));
    // EOF: the last writer (master and its children or workers, or the server thread) is gone, and
    // the drain thread has taken every event out of the ring: take the rest before the server
    // counts as finished.
    const eof = new Promise<void>((resolve) =>
      pipe.once('close', () => {
        deliver();
        resolve();
      }),
    );

    // Process models only: the waiting thread reports the master's exit status (once the children
    // or workers of a master that died have been reaped too).
    const exited = masterExit ?? Promise.resolve(null);
    this.finished = Promise.all([eof, exited]).then(([, status]) => {
      // Every event is in: the connections still live died with the process serving them.
      const reason = this.#killed ? 'aborted' : 'crash';
      for (const lost of this.#native.reconcile()) {
        if (!this.#live.delete(lost.id)) continue; // reported already (or never announced)
        const { id, pid, bytesIn, bytesOut, worker } = lost;
        const event: DisconnectEvent = { id, bytesIn, bytesOut, reason, pid };
        if (worker >= 0) event.worker = worker;
        sink({ type: 'disconnect', event });
      }
      if (status === null || this.#stopped) return;
      const [code, signal] = status;
      const how = signal !== null ? `was killed by ${signalName(signal) ?? `signal ${signal}`}` : `exited with code ${code}`;
      sink({ type: 'error', error: new Error(`${model} server master ${this.pid} ${how}`) });
    });
  }

  address(): AddressInfo {
    return { ...this.#address };
  }

  hearConnections(heard: boolean): void {
    if (!this.#released) this.#native.hearConnections(heard);
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
    this.#killed = true;
    this.#native.kill();
  }

  release(): void {
    this.#released = true;
    this.#native.finish();
  }

  // What keeps Node's loop alive for a native server: the relay's socket, and for fork the
  // thread-safe function that will report the master's exit. (The drain thread is not Node's
  // loop's: it keeps nothing alive.)
  setRef(ref: boolean): void {
    if (ref) this.#pipe.ref();
    else this.#pipe.unref();
    if (!this.#released) this.#native.ref(ref);
  }
}

/** What the addon's start() takes, from the resolved options. */
function nativeStartOptions(opts: ResolvedOptions & { model: NativeModel }): NativeStartOptions {
  const { exec, maxPerSource, maxConnectionsPerSecond, allow, deny, ...rest } = opts;
  const door: NativeDoor = { maxPerSource, maxConnectionsPerSecond, allow, deny };
  const backlog = Number(process.env[EVENT_BACKLOG_ENV]);
  return {
    ...rest,
    ...(process.env[EVENT_BACKLOG_ENV] !== undefined && Number.isSafeInteger(backlog) && backlog >= 0
      ? { eventBacklog: backlog }
      : {}),
    ...(exec !== null ? { exec: { path: exec.path, argv: exec.argv, env: exec.env, stderr: exec.stderr } } : {}),
    ...(anyDoorRule(door) ? { door } : {}),
  };
}

/**
 * Starts a native server (fork, thread, iterative, prefork, reuseport, prethread, epoll, uring); throws a
 * SystemError when a syscall fails (uring: with what the refusal means, lib/server/uring.ts).
 */
export function startNativeBackend(opts: ResolvedOptions & { model: NativeModel }, sink: EventSink): Backend {
  let onExit!: (v: [number | null, number | null]) => void;
  const masterExit = new Promise<[number | null, number | null]>((r) => (onExit = r));
  let nativeServer: NativeServer;
  try {
    nativeServer = native.start(nativeStartOptions(opts), (code, signal) => onExit([code, signal]));
  } catch (e) {
    const n = (typeof e === 'object' && e !== null ? e : {}) as { errno?: unknown; syscall?: unknown };
    if (opts.model === 'uring' && typeof n.errno === 'number' && String(n.syscall).startsWith('io_uring_')) {
      throw uringError(n.errno, String(n.syscall));
    }
    throw fromNative(e, opts.host, opts.port);
  }
  const hasMaster = (PROCESS_MODELS as readonly string[]).includes(opts.model);
  return new NativeBackend(opts.model, nativeServer, hasMaster ? masterExit : null, sink, opts.exec?.path ?? null);
}
