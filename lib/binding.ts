// Types of every export of the native addon (build/Release/posix_servers.node, native/addon.cc).
// lib/addon.ts loads the addon with `bindings` and types it with `Binding`.
import type { LoadResult } from './bench/loadgen';
import type { NATIVE_MODELS, ResolvedOptions, ServiceName } from './server/options';

// What the addon's start() takes is written once, in lib/server/options.ts (the lists of models,
// handlers and locks, and every option with its meaning): the types below are read from there.
export type NativeModel = (typeof NATIVE_MODELS)[number];
/** A service by name, or 'exec' with NativeStartOptions.exec set. */
export type NativeHandler = ServiceName | 'exec';

/** The exec handler's program, resolved and checked in TypeScript (native/core/exec_child.h). */
export interface NativeExec {
  /** Absolute path of an executable file. */
  path: string;
  /** argv[0] first. Strings without NUL. */
  argv: string[];
  /** 'NAME=value' each. */
  env: string[];
  stderr: 'socket' | 'inherit' | 'null';
}

/** The door's rules (native/core/door.h). */
export interface NativeDoor {
  /** 0: no limit. */
  maxPerSource: number;
  /** 0: no limit. */
  maxConnectionsPerSecond: number;
  /** 'address/prefix', at most constants.MAX_DOOR_RULES each. */
  allow: string[];
  deny: string[];
}

/**
 * The options of a native server: every option as resolveOptions() left it (lib/server/options.ts
 * says what each means), but the door's four gathered in `door` and the exec program in `exec`.
 * The addon reads what it knows (native/addon.cc, read_options) and ignores Node's own (signal,
 * schedulingPolicy).
 */
export interface NativeStartOptions extends Omit<
  ResolvedOptions,
  'model' | 'handler' | 'exec' | 'maxPerSource' | 'maxConnectionsPerSecond' | 'allow' | 'deny'
> {
  model: NativeModel;
  handler: NativeHandler;
  /** With handler 'exec' (fork, prefork): the program. */
  exec?: NativeExec;
  /** The door's rules; none when absent. */
  door?: NativeDoor;
  /**
   * Events kept for this thread at most while it takes none (native/core/event_drain.h; default
   * 262,144). Tests only: POSIX_SERVERS_TEST_EVENT_BACKLOG.
   */
  eventBacklog?: number;
}

export interface NativeAddress {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

/** Counters read from the shared page (native/core/shared_page.h). */
export interface NativeStats {
  accepted: number;
  active: number;
  rejected: number;
  closed: number;
  reaped: number;
  eintrRetries: number;
  bytesIn: number;
  bytesOut: number;
  /**
   * Events lost: the ring was full because Node's main thread had taken none for seconds (it is
   * wedged: the drain thread keeps 262,144 events for it, then stops taking them out of the ring),
   * or a process of the server died in the middle of writing one. Never because Node was merely
   * slow. A connection whose 'connection' was lost gets no 'disconnect' either; one whose
   * 'disconnect' was lost stays among those heard of and not ended.
   */
  eventsDropped: number;
  /**
   * Times a process or thread of the server woke Node's drain thread to take events (the ring's
   * doorbell, rung only when that thread had parked): about once per burst of activity, never
   * once per connection.
   */
  eventWakeups: number;
  /** Connections refused because no descriptor was left (EMFILE/ENFILE), with the reserve descriptor. */
  refusedNoFd: number;
  /** accept() failures that belonged to one client (ECONNABORTED, EPROTO, …), skipped. */
  acceptErrors: number;
  /**
   * fork, prefork, reuseport: CPU time (user + system, µs) of the processes the master has reaped —
   * fork's children, prefork's members that became a program — with what they reaped themselves,
   * from wait4()'s rusage: what /proc no longer shows once a process is gone (its parent's cutime
   * and cstime keep it only in 10 ms ticks). 0 for the other models (cluster's workers are reaped
   * by Node, which keeps no rusage).
   */
  reapedCpuUs: number;
  /**
   * Pool models (prefork, reuseport, prethread): connections accepted by (prefork 'pass',
   * prethread 'main': handed to) each pool member, by its index; they add up to `accepted`
   * (prethread 'main': `accepted` less those refused by the server thread). [] for models
   * without a pool.
   */
  perWorker: number[];
}

/** A connection that died with a process of the server (native/core/server.h, LostConnection). */
interface LostConnection {
  id: number;
  /** The child process (pool models: the worker) that served it. */
  pid: number;
  bytesIn: number;
  bytesOut: number;
  /** Pool models: the worker's index; -1 otherwise. */
  worker: number;
}

/** A running server. Every method throws once finish() has been called (except finish). */
export interface NativeServer {
  /** Process models (fork, prefork, reuseport): the master's pid; otherwise process.pid. */
  readonly pid: number;
  /**
   * The relay pipe's read end (native/core/event_drain.h); the caller owns it afterwards. Call
   * once. The pipe carries no events: a byte says that events are waiting (this thread had taken
   * them all before), and EOF that every process and thread of the server is gone and every event
   * it wrote is waiting.
   */
  takeEventFd(): number;
  /**
   * Takes the next whole records (64 bytes each, in order) that the drain thread took out of the
   * event ring; null when there are none — the relay pipe's next byte then says when there are.
   */
  takeEvents(): Buffer | null;
  /**
   * Whether a listener would hear 'connection' and 'disconnect' now (true until told otherwise):
   * while not, the server writes neither record of a connection it accepts.
   */
  hearConnections(heard: boolean): void;
  address(): NativeAddress;
  stats(): NativeStats;
  /** Stop accepting; the listening socket is closed. Idempotent. */
  stop(): void;
  /** End the connections still being served (and stop). */
  abortConnections(): void;
  /** Process models: SIGKILL the master (last resort; its processes follow it). Other models: nothing. */
  kill(): void;
  /**
   * After the relay pipe's EOF (and, for process models, the master-exit callback), before
   * finish(): the connections that died with a process of the server (the master's live children
   * or pool workers when it died), which no event reported as ended. Makes the counters true.
   * Empty after a normal close.
   */
  reconcile(): LostConnection[];
  /** After the relay pipe's EOF (and, for process models, the master-exit callback): join threads, release memory. */
  finish(): void;
  /**
   * Fork model: whether the pending report of the master's exit (a thread-safe function) keeps
   * Node's event loop alive (server.ref()/unref()). Other models hold nothing in the loop.
   */
  ref(keepsLoopAlive: boolean): void;
}

/**
 * The event record's layout and numberings (native/core/event_record.h, the one source of truth),
 * exported so that lib/server/events.ts decodes by name.
 */
interface WireFormat {
  recordSize: number;
  /** Field name → its byte offset and width in the record. */
  fields: Record<string, { offset: number; width: number }>;
  /** JS name → number, for each enumeration carried in a record. */
  eventTypes: Record<string, number>;
  traceCalls: Record<string, number>;
  disconnectReasons: Record<string, number>;
  rejectReasons: Record<string, number>;
}

export interface Binding {
  /**
   * Starts a server. onMasterExit is called once, for the process models only (fork, prefork,
   * reuseport), when the master has been reaped: exitCode when it exited, signal number when it
   * was killed.
   */
  start(options: NativeStartOptions, onMasterExit: (exitCode: number | null, signal: number | null) => void): NativeServer;
  /**
   * socket → bind → listen, and nothing else: the cluster model's primary holds this socket for
   * its workers (schedulingPolicy 'none') without accepting on it. The caller owns `fd`. Throws an
   * Error carrying errno (positive) and syscall.
   */
  listenSocket(options: { host: string; port: number; backlog: number }): { fd: number; address: NativeAddress };
  /**
   * The TCP listeners of this network namespace on `port` (every port with 0), as the kernel's
   * sock_diag reports them (native/core/sock_diag.h; what `ss -lnt` shows): each one's address, the
   * connections in its accept queue (`queued`) and the queue's limit, listen()'s backlog after the
   * kernel's somaxconn cap (`backlog`), and its socket's inode.
   */
  tcpListeners(port: number): Array<{ address: NativeAddress; queued: number; backlog: number; inode: number }>;
  constants: {
    MAX_CLIENTS_LIMIT: number;
    FORK_MAX_CLIENTS_LIMIT: number;
    /** Rules per allow/deny list. */
    MAX_DOOR_RULES: number;
    /** Pool models: the most members a pool may have. */
    MAX_WORKERS: number;
    /** Whether the uring model was compiled in (the build's <linux/io_uring.h> is Linux 6.1's or later). */
    URING_BUILT: boolean;
    /** Records the event ring holds (native/core/event_ring.h). */
    EVENT_RING_CAPACITY: number;
    wire: WireFormat;
    /**
     * comm of the in-process models' threads (the server thread, the thread model's workers,
     * prethread's pool threads), of the load generator's thread, and of the thread of every
     * native server that takes its events out of the ring (events).
     */
    threadNames: { server: string; worker: string; pool: string; loadgen: string; events: string };
  };
}

// ---- Load generator (native/loadgen/loadgen.h, native/loadgen/addon.cc) ----

export type NativeLoadMode = 'pingpong' | 'churn' | 'eof' | 'rpc';
export type NativeLoadExpect = 'echo' | 'upper' | 'any';

/** Every field required: lib/loadgen.ts fills in the defaults and validates first. */
export interface NativeLoadOptions {
  mode: NativeLoadMode;
  /** Numeric IPv4 or IPv6 address. */
  host: string;
  /** 1..65535. */
  port: number;
  /** 1..10000. */
  connections: number;
  /** Bytes per message, 1..1048576. */
  size: number;
  /** 1..600000. */
  durationMs: number;
  expect: NativeLoadExpect;
}

/**
 * What one run measured, raw: the public LoadResult (lib/bench/loadgen.ts, where each field is
 * described) without what runLoad() adds — the options echoed and the rates it derives.
 */
type NativeLoadResult = Omit<LoadResult, 'mode' | 'connections' | 'size' | 'msgsPerSec' | 'mbPerSec' | 'connsPerSec'>;

export interface Binding {
  /**
   * Runs a load on a thread of its own (never the JS thread); resolves once that thread has been
   * joined. Rejects with an Error carrying errno (positive) and syscall if it could not start (epoll_create1, pthread_create).
   */
  runLoad(options: NativeLoadOptions): Promise<NativeLoadResult>;
}

// ---- The benchmark's measurements (native/bench/measure.h, native/bench/addon.cc) ----

export interface Binding {
  /**
   * The CPU time (ns) of process `pid` so far, every thread of it, the exited ones included (its
   * CPU-time clock); -1 when there is no such process.
   */
  processCpuNs(pid: number): number;
}
