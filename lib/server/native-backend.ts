// The native models behind the Backend interface.
//
// How an event reaches a listener (ARCHITECTURE.md has the picture): the server publishes a
// 64-byte record into the ring in the shared page (native/core/event_ring.h) → a timer here drains
// it every POLL_MS while events flow (drainEvents) → EventDecoder → the sink (PosixServer) →
// emit('connection' | 'disconnect' | …). Nothing on the server's side wakes Node per event: when
// the ring has stayed empty for a while, the reader parks and the next writer rings the doorbell
// (one byte into the event pipe, which libuv watches through the net.Socket below).
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

/** How often the ring is drained while events flow, in ms (events reach listeners this late at most). */
const POLL_MS = 10;
/** Empty drains in a row after which the reader parks and waits for the doorbell. */
const IDLE_POLLS_BEFORE_PARK = 5;

class NativeBackend implements Backend {
  readonly pid: number;
  readonly finished: Promise<void>;
  #native: NativeServer;
  #address: AddressInfo;
  #stopped = false;
  /** The next drain of the ring, while polling; null while parked (or finished). */
  #timer: NodeJS.Timeout | null = null;
  #eof = false;
  #released = false;
  /** server.ref()/unref(): whether the doorbell, the poll timer and the exit report keep Node's loop alive. */
  #refed = true;
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
    // Takes every record out of the ring and hands the events on; true if there were any.
    const deliver = (writersGone: boolean): boolean => {
      let any = false;
      for (let batch = nativeServer.drainEvents(writersGone); batch !== null; batch = nativeServer.drainEvents(writersGone)) {
        any = true;
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
      return any;
    };
    let idlePolls = 0;
    const poll = () => {
      this.#timer = null;
      idlePolls = deliver(false) ? 0 : idlePolls + 1;
      // Parked: the ring is empty and the next event rings the doorbell.
      if (idlePolls >= IDLE_POLLS_BEFORE_PARK && nativeServer.parkReader()) return;
      this.#schedule(poll);
    };

    const pipe = new Socket({ fd: nativeServer.takeEventFd(), readable: true, writable: false });
    this.#pipe = pipe;
    // The doorbell: events arrived while we were parked. Take them, and poll again.
    pipe.on('data', () => {
      idlePolls = 0;
      deliver(false);
      if (this.#timer === null) this.#schedule(poll);
    });
    pipe.on('error', (error) => sink({ type: 'error', error }));
    // EOF: the last writer (master and its children or workers, or the server thread) is gone, so every event is
    // in the ring: take the rest before the server counts as finished.
    const eof = new Promise<void>((resolve) =>
      pipe.once('close', () => {
        if (this.#timer !== null) clearTimeout(this.#timer);
        this.#timer = null;
        this.#eof = true;
        deliver(true);
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

  #schedule(poll: () => void): void {
    if (this.#eof) return;
    this.#timer = setTimeout(poll, POLL_MS);
    if (!this.#refed) this.#timer.unref();
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

  // What keeps Node's loop alive for a native server: the doorbell's socket, the timer that drains
  // the ring while events flow, and for fork the thread-safe function that will report the
  // master's exit.
  setRef(ref: boolean): void {
    this.#refed = ref;
    if (ref) this.#pipe.ref();
    else this.#pipe.unref();
    if (ref) this.#timer?.ref();
    else this.#timer?.unref();
    if (!this.#released) this.#native.ref(ref);
  }
}

/** What the addon's start() takes, from the resolved options. */
function nativeStartOptions(opts: ResolvedOptions & { model: NativeModel }): NativeStartOptions {
  const { exec, maxPerSource, maxConnectionsPerSecond, allow, deny, ...rest } = opts;
  const door: NativeDoor = { maxPerSource, maxConnectionsPerSecond, allow, deny };
  return {
    ...rest,
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
