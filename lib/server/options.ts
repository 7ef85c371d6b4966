// Validation of user options: bad input gets a TypeError or RangeError that names the option and
// the bad value, before any socket, process or thread exists.
import type { NativeAcceptLock, NativeHandler, NativeModel } from '../binding';
import { availableParallelism } from 'node:os';
import { native } from '../addon';
import {
  abortSignal,
  boolean,
  host as hostOption,
  integerIn,
  invalidType,
  invalidValue,
  object,
  oneOf,
  optionsObject,
  port,
  show,
} from '../util/validate';
import { MAX_CONNECTIONS_PER_SECOND, parseCidrList } from './door';
import { ExecHandler, isExecHandler, ResolvedExec, resolveExec } from './exec';

export type { ExecHandler, ExecStderr } from './exec';

/** The models of the addon: real POSIX servers in C++. */
export const NATIVE_MODELS = [
  'fork',
  'thread',
  'iterative',
  'prefork',
  'reuseport',
  'prethread',
  'epoll',
  'uring',
] as const satisfies readonly NativeModel[];
/**
 * The native models with a fixed pool (`workers`, stats().perWorker, `worker` on events): of
 * worker processes (prefork, reuseport) or of threads (prethread).
 */
export const POOL_MODELS = ['prefork', 'reuseport', 'prethread'] as const satisfies readonly NativeModel[];
/** The native models run by the master program (fork + execve): `pid` is the master's. */
export const PROCESS_MODELS = ['fork', 'prefork', 'reuseport'] as const satisfies readonly NativeModel[];
/** prefork: how the pool members take turns at accept() (UNP 30.6–30.9). */
export const ACCEPT_LOCKS = ['none', 'flock', 'mutex', 'pass'] as const satisfies readonly NativeAcceptLock[];
/** prethread: how the pool threads share the listener (UNP 30.11–30.12); the first is the default. */
export const PRETHREAD_ACCEPT_LOCKS = ['mutex', 'main'] as const satisfies readonly NativeAcceptLock[];
/**
 * uring: how each connection receives. 'multishot' (default): one receive stays armed and completes
 * once per arrival (Linux 6.1 and later; single-shot on older kernels); 'single': a receive armed
 * again each time the connection waits to read.
 */
export const URING_RECEIVES = ['multishot', 'single'] as const;
/** node:cluster's two policies: the primary accepts and passes handles (rr), or every worker accepts (none). */
export const SCHEDULING_POLICIES = ['rr', 'none'] as const;
export type SchedulingPolicy = (typeof SCHEDULING_POLICIES)[number];
/** Node's own servers, for comparison: net.Server in this process, and node:cluster. */
export const JS_MODELS = ['node', 'cluster'] as const;
export const MODELS = [...NATIVE_MODELS, ...JS_MODELS] as const;
/**
 * The handlers named by a string, for every model: the lecture's echo (RFC 862) and its upper-case
 * variant, inetd's internal services discard (RFC 863), chargen (864), daytime (867), time (868),
 * and rpc: UNP ch. 30's web_child (request lines naming a size, each answered with that many bytes,
 * until the client closes; rpcMaxBytes at most).
 */
export const HANDLERS = [
  'echo',
  'upper',
  'discard',
  'chargen',
  'daytime',
  'time',
  'rpc',
] as const satisfies readonly NativeHandler[];
/** The handlers that read the client (the others only send, then close). */
const READING_HANDLERS = ['echo', 'upper', 'discard', 'chargen', 'rpc'] as const;
/**
 * rpc: the largest reply a request may ask for when `rpcMaxBytes` is not given: UNP's MAXN
 * (native/core/service.h kRpcDefaultMaxBytes). A request beyond it is refused: the server closes
 * the connection without a reply.
 */
export const RPC_DEFAULT_MAX_BYTES = 16384;
/** rpc: the largest `rpcMaxBytes` a server may be given (native/core/service.h kRpcMaxBytesLimit). */
export const RPC_MAX_BYTES_LIMIT = 2 ** 30;
/** rpc: the longest request line, '\n' included (native/core/service.h kRpcLineMax); a longer one is refused. */
export const RPC_MAX_LINE = 64;
/**
 * The models that can run a program per connection (`handler: { exec }`): a process that serves
 * one client at a time can become the program (fork's child, a prefork member). A thread cannot
 * become another program, and a reuseport member serves many clients from one event loop.
 */
export const EXEC_MODELS = ['fork', 'prefork'] as const;
/**
 * What happens to the next client while maxClients connections are live: 'refuse' (default; it is
 * accepted, closed at once and reported as 'reject', as xinetd's `instances`), or 'wait' (the
 * server stops accepting until a connection ends: the client waits in the listen backlog, as
 * with `tcpserver -c` and socat's `max-children`).
 */
export const WHEN_FULL = ['refuse', 'wait'] as const;
export type WhenFull = (typeof WHEN_FULL)[number];
/**
 * The models that can stop accepting while full (whenFull 'wait'). Not iterative (it never
 * refuses: maxClients does not apply), not node or cluster (Node's net.Server accepts every
 * connection libuv reports; it cannot leave one in the backlog).
 */
export const WHEN_FULL_WAIT_MODELS = ['fork', 'thread', 'prefork', 'reuseport', 'prethread', 'epoll', 'uring'] as const;
export type Model = (typeof MODELS)[number];
export type ServiceName = (typeof HANDLERS)[number];
/** A service by name, or `{ exec: [file, ...args] }`: a program per connection (fork, prefork). */
export type Handler = ServiceName | ExecHandler;
export type AcceptLock = (typeof ACCEPT_LOCKS)[number] | (typeof PRETHREAD_ACCEPT_LOCKS)[number];

/** listen()'s backlog when none is given: Node's net.Server default. */
export const DEFAULT_BACKLOG = 511;
/** The cap on `workers` (cluster, prefork, reuseport, prethread); the addon's own (constants.MAX_WORKERS) is the same. */
export const MAX_WORKERS = 64;

export interface ServerOptions {
  /**
   * Native: 'fork' (process per connection), 'thread' (thread per connection), 'iterative' (one
   * at a time), 'prefork' (a pool of processes forked once, each serving one client at a time),
   * 'reuseport' (a pool of processes, each with its own SO_REUSEPORT listener and epoll loop),
   * 'prethread' (a pool of threads created once), 'epoll' (one thread, an event loop), 'uring' (one
   * thread, io_uring: requests submitted and completions reaped, Linux 5.19 and later). Node's own,
   * for comparison: 'node' (net.Server in this process), 'cluster' (node:cluster: a pool of worker
   * processes).
   */
  model: Model;
  /**
   * The address to bind: numeric IPv4 or IPv6 (maybe scoped: 'fe80::1%eth0'), or a host name
   * resolved as net.Server#listen resolves it (dns.lookup: 'localhost' is 127.0.0.1 or ::1, as
   * Node would bind it here); address() reports the numeric address. Default '127.0.0.1'.
   */
  host?: string;
  /** 0..65535. Default 0: the kernel picks a free port (see address()). */
  port?: number;
  /**
   * listen() backlog: completed connections the kernel queues until they are accepted, 1..65535
   * (the kernel caps it at net.core.somaxconn). Default 511, as Node's net.Server, so every model
   * (and the C references of the benchmark) queues alike.
   */
  backlog?: number;
  /**
   * Live connections served at once (fork: children; thread, prethread, epoll, uring: slots of the INFO
   * table, prethread's queued connections included; cluster, prefork, reuseport: across all
   * workers), 1..4096 (fork: 1..1024).
   * Default 100, as in the lecture. The next client is accepted, closed and reported as 'reject'.
   * The iterative model ignores it: it serves one client and leaves the others in the backlog.
   */
  maxClients?: number;
  /**
   * While maxClients connections are live: 'refuse' (default) accepts the next client, closes it
   * at once and reports it ('reject', reason 'max-clients'), as xinetd's `instances`; 'wait' stops
   * accepting until a connection ends, so the client waits in the listen backlog (its connect()
   * has succeeded, nobody reads it), as `tcpserver -c` and socat's `max-children`. 'wait' applies
   * to fork, thread, prefork, reuseport, prethread, epoll and uring; not to iterative (which never
   * refuses) nor to node and cluster (Node accepts every connection libuv reports).
   */
  whenFull?: WhenFull;
  /**
   * How each connection is served. 'echo' (default); 'upper' (echo with ASCII a–z turned into
   * A–Z); inetd's internal services: 'discard' (read and throw away, RFC 863), 'chargen' (RFC 864's
   * rotating 72-character lines for as long as the client reads), 'daytime' (one line with the
   * date and time, then close, RFC 867), 'time' (seconds since 1900 as 32 bits big-endian, then
   * close, RFC 868); and 'rpc', UNP ch. 30's web_child (a line naming a size, that many bytes back,
   * again, until the client closes). Or `{ exec: [file, ...args], env?, stderr? }` (fork model): the
   * connection is the program's stdin and stdout, as inetd, tcpserver and socat EXEC: run one.
   */
  handler?: Handler;
  /**
   * handler 'rpc': the largest reply a request may ask for, 1..2^30 bytes. Default 16384, UNP's
   * MAXN. A request for more (or for 0) is refused: the connection is closed without a reply to
   * it, disconnect reason 'error'.
   */
  rpcMaxBytes?: number;
  /** The door: live connections from one address, 0 (default) for no limit, else 1..4096. */
  maxPerSource?: number;
  /**
   * The door: new connections per second over all clients, a token bucket holding that many
   * tokens and refilled continuously; 0 (default) for no limit, else 1..1000000.
   */
  maxConnectionsPerSecond?: number;
  /** The door: only clients whose address is in one of these CIDR prefixes are served ('10.0.0.0/8', '::1'). */
  allow?: readonly string[];
  /** The door: clients whose address is in one of these CIDR prefixes are refused (deny wins over allow). */
  deny?: readonly string[];
  /**
   * Native models: record every real syscall as a 'trace' event (socket, bind, accept, fork,
   * waitpid…). Default false. Node's own models make their syscalls inside libuv, out of reach.
   */
  trace?: boolean;
  /**
   * Lab switch, fork model: 'sigchld' (default) reaps children in a SIGCHLD handler; 'none' never
   * reaps, so every finished child stays a zombie (see stats().zombies) until close().
   */
  reap?: 'sigchld' | 'none';
  /** Lab switch, fork model: install the SIGCHLD handler with SA_RESTART (accept is restarted: no EINTR). */
  restart?: boolean;
  /**
   * Lab switch, thread model: 'slot' (default) hands each worker its slot; 'shared-cfd' reproduces
   * the lecture's bug of passing &cfd (the worker reads it after the next accept overwrote it).
   */
  threadArg?: 'slot' | 'shared-cfd';
  /** Lab switch, thread model with 'shared-cfd': the worker waits this long (0..60000 ms) before reading it. */
  labHoldMs?: number;
  /**
   * Close a connection that has been silent (nothing to read, or a write blocked because the
   * client stopped reading) for this long, reported as disconnect reason 'idle'. 0 (default): never.
   * A slowloris that sends a byte now and then is never idle: see maxConnectionMs and
   * minBytesPerSecond.
   */
  idleTimeoutMs?: number;
  /**
   * Close a connection open this long, however busy, reported as disconnect reason 'lifetime'.
   * 0 (default): never.
   */
  maxConnectionMs?: number;
  /**
   * Close a connection whose client sends fewer than minBytesPerSecond × rateWindowMs / 1000 bytes
   * (rounded up) in a window of rateWindowMs — consecutive windows from the connection's start —
   * reported as disconnect reason 'slow'. Drops a slowloris (a byte a second) and a client that
   * stops reading (an echo server reads no more until its echo is written). 0 (default): no minimum.
   */
  minBytesPerSecond?: number;
  /** The window of minBytesPerSecond, 100..2^31-1 ms. Default 1000. Only with minBytesPerSecond. */
  rateWindowMs?: number;
  /**
   * Lab hook, fork, thread, prefork, reuseport and prethread models: a message that is exactly
   * "CRASH\n" makes the child or pool worker abort() (reaped with SIGABRT; a pool worker is
   * replaced) or the worker or pool thread end abruptly (pthread_exit; a pool thread is replaced);
   * reported as reason 'crash'. Not for epoll or uring: one thread serves every connection.
   */
  labCrash?: boolean;
  /**
   * uring: 'multishot' (default): each connection's receive stays armed and completes once per
   * arrival of bytes, where the kernel has it (Linux 6.1; single-shot before); 'single': a receive is
   * armed each time the connection waits to read, after its reply has gone.
   */
  uringReceive?: (typeof URING_RECEIVES)[number];
  /**
   * cluster, prefork, reuseport: worker processes, forked once at start; prethread: threads,
   * created once at start; 1..64. Default: os.availableParallelism(). A prefork worker or a
   * prethread thread serves one client at a time: a client beyond the pool waits in the listen
   * backlog (prethread 'main': in the hand-off queue).
   */
  workers?: number;
  /**
   * prefork: how the workers take turns at accept(). 'none' (default): all block in accept() on
   * the shared listener; 'flock': a file lock around accept() (fcntl, UNP 30.7); 'mutex': a
   * process-shared, robust mutex around accept() (UNP 30.8); 'pass': the master accepts and passes
   * each descriptor to an idle worker over a Unix socket with SCM_RIGHTS (UNP 30.9).
   * prethread: 'mutex' (default): each pool thread locks a mutex around its own accept() (UNP
   * 30.11); 'main': the server thread accepts and hands each connection to an idle pool thread
   * through a queue and a condition variable (UNP 30.12).
   */
  acceptLock?: AcceptLock;
  /**
   * cluster: 'rr' (default; this process, the primary, accepts and passes each connection to the
   * next worker) or 'none' (every worker accepts on the shared listening socket itself),
   * node:cluster's SCHED_RR and SCHED_NONE.
   */
  schedulingPolicy?: SchedulingPolicy;
  /**
   * Closes the server when aborted, as close() would (net.Server's `signal`). Already aborted:
   * startServer() rejects with an AbortError and starts nothing.
   */
  signal?: AbortSignal;
}

/** Every option filled in, but `signal`, which PosixServer keeps (backends never see it). */
export interface ResolvedOptions extends Required<Omit<ServerOptions, 'handler' | 'allow' | 'deny' | 'signal'>> {
  signal: AbortSignal | undefined;
  /** A service, or 'exec' with `exec` set. */
  handler: ServiceName | 'exec';
  exec: ResolvedExec | null;
  /** Normalized 'address/prefix' rules. */
  allow: string[];
  deny: string[];
}

export interface CloseOptions {
  /** How long live connections may go on after close() before they are ended. Default 2000. */
  timeoutMs?: number;
}

const KNOWN = new Set([
  'model',
  'host',
  'port',
  'backlog',
  'maxClients',
  'whenFull',
  'handler',
  'rpcMaxBytes',
  'trace',
  'reap',
  'restart',
  'threadArg',
  'labHoldMs',
  'idleTimeoutMs',
  'maxConnectionMs',
  'minBytesPerSecond',
  'rateWindowMs',
  'labCrash',
  'workers',
  'maxPerSource',
  'maxConnectionsPerSecond',
  'allow',
  'deny',
  'acceptLock',
  'schedulingPolicy',
  'uringReceive',
  'signal',
]);

/** 'fork model', 'fork and thread models', 'cluster, prefork and reuseport models'. */
function modelList(models: readonly string[]): string {
  const names = models.length < 2 ? models.join('') : `${models.slice(0, -1).join(', ')} and ${models[models.length - 1]}`;
  return `${names} model${models.length < 2 ? '' : 's'}`;
}

// An option given to a model it does not apply to is a mistake worth reporting.
function onlyFor(o: Record<string, unknown>, model: string, names: string[], allowed: readonly string[]): void {
  if (allowed.includes(model)) return;
  for (const name of names) {
    if (o[name] !== undefined) {
      throw invalidValue(`The "${name}" option applies only to the ${modelList(allowed)}. Received it for model '${model}'`);
    }
  }
}

export function resolveOptions(options: unknown): ResolvedOptions {
  const o = optionsObject(options, KNOWN);
  const host = hostOption('host', o.host ?? '127.0.0.1');
  const model = oneOf('model', o.model, MODELS);
  onlyFor(o, model, ['reap', 'restart'], ['fork']);
  onlyFor(o, model, ['threadArg', 'labHoldMs'], ['thread']);
  onlyFor(o, model, ['workers'], ['cluster', ...POOL_MODELS]);
  onlyFor(o, model, ['acceptLock'], ['prefork', 'prethread']);
  onlyFor(o, model, ['schedulingPolicy'], ['cluster']);
  onlyFor(o, model, ['uringReceive'], ['uring']);
  if ((model === 'epoll' || model === 'uring') && o.labCrash !== undefined) {
    throw invalidValue(
      `The "labCrash" option does not apply to the ${model} model: one thread serves every connection, there is no child or worker of its own to crash`,
    );
  }
  onlyFor(o, model, ['labCrash'], ['fork', 'thread', ...POOL_MODELS]);
  if ((model === 'node' || model === 'cluster') && o.trace !== undefined && o.trace !== false) {
    throw invalidValue(
      `The "trace" option applies only to the native models (${NATIVE_MODELS.join(', ')}). Received it for model '${model}'`,
    );
  }
  const minBytesPerSecond = integerIn('minBytesPerSecond', o.minBytesPerSecond ?? 0, 0, 2 ** 31 - 1);
  if (o.rateWindowMs !== undefined && minBytesPerSecond === 0) {
    throw invalidValue(
      `The "rateWindowMs" option applies only with a "minBytesPerSecond" above 0. Received ${show(o.rateWindowMs)}`,
    );
  }
  const whenFull = resolveWhenFull(o, model);
  // A connection flood must not become a fork bomb: each fork connection is a process.
  const limits = native.constants;
  const maxClientsLimit = model === 'fork' ? limits.FORK_MAX_CLIENTS_LIMIT : limits.MAX_CLIENTS_LIMIT;
  const resolved = {
    model,
    host,
    port: port('port', o.port ?? 0, 0),
    backlog: integerIn('backlog', o.backlog ?? DEFAULT_BACKLOG, 1, 65535),
    maxClients: integerIn('maxClients', o.maxClients ?? 100, 1, maxClientsLimit),
    whenFull,
    maxPerSource: integerIn('maxPerSource', o.maxPerSource ?? 0, 0, limits.MAX_CLIENTS_LIMIT),
    maxConnectionsPerSecond: integerIn('maxConnectionsPerSecond', o.maxConnectionsPerSecond ?? 0, 0, MAX_CONNECTIONS_PER_SECOND),
    allow: parseCidrList('allow', o.allow),
    deny: parseCidrList('deny', o.deny),
    trace: boolean('trace', o.trace ?? false),
    reap: oneOf('reap', o.reap ?? 'sigchld', ['sigchld', 'none'] as const),
    restart: boolean('restart', o.restart ?? false),
    threadArg: oneOf('threadArg', o.threadArg ?? 'slot', ['slot', 'shared-cfd'] as const),
    labHoldMs: integerIn('labHoldMs', o.labHoldMs ?? 0, 0, 60000),
    idleTimeoutMs: integerIn('idleTimeoutMs', o.idleTimeoutMs ?? 0, 0, 2 ** 31 - 1),
    maxConnectionMs: integerIn('maxConnectionMs', o.maxConnectionMs ?? 0, 0, 2 ** 31 - 1),
    minBytesPerSecond,
    // Windows shorter than 100 ms would measure the scheduler, not the client.
    rateWindowMs: integerIn('rateWindowMs', o.rateWindowMs ?? 1000, 100, 2 ** 31 - 1),
    labCrash: boolean('labCrash', o.labCrash ?? false),
    workers: integerIn('workers', o.workers ?? Math.min(availableParallelism(), MAX_WORKERS), 1, MAX_WORKERS),
    acceptLock:
      model === 'prethread'
        ? oneOf('acceptLock', o.acceptLock ?? PRETHREAD_ACCEPT_LOCKS[0], PRETHREAD_ACCEPT_LOCKS)
        : oneOf('acceptLock', o.acceptLock ?? 'none', ACCEPT_LOCKS),
    schedulingPolicy: oneOf('schedulingPolicy', o.schedulingPolicy ?? 'rr', SCHEDULING_POLICIES),
    uringReceive: oneOf('uringReceive', o.uringReceive ?? 'multishot', URING_RECEIVES),
    signal: abortSignal('signal', o.signal),
  };
  const rpcMaxBytes = integerIn('rpcMaxBytes', o.rpcMaxBytes ?? RPC_DEFAULT_MAX_BYTES, 1, RPC_MAX_BYTES_LIMIT);
  if (o.rpcMaxBytes !== undefined && (o.handler ?? 'echo') !== 'rpc') {
    throw invalidValue(`The "rpcMaxBytes" option applies only with handler 'rpc'. Received ${show(o.rpcMaxBytes)}`);
  }
  return { ...resolved, rpcMaxBytes, ...resolveHandler(o, model) };
}

// whenFull: 'wait' only where a server can stop accepting; iterative never refuses, so neither
// value means anything there.
function resolveWhenFull(o: Record<string, unknown>, model: Model): WhenFull {
  const whenFull = oneOf('whenFull', o.whenFull ?? 'refuse', WHEN_FULL);
  if (model === 'iterative' && o.whenFull !== undefined) {
    throw invalidValue(
      `The "whenFull" option does not apply to the iterative model: it serves one client at a time and never refuses one (the others wait in the listen backlog). Received ${show(o.whenFull)}`,
    );
  }
  if (whenFull === 'wait' && !(WHEN_FULL_WAIT_MODELS as readonly string[]).includes(model)) {
    throw invalidValue(
      `The "whenFull" option 'wait' applies only to the ${modelList(WHEN_FULL_WAIT_MODELS)}: Node's net.Server accepts every connection libuv reports and cannot leave one in the listen backlog. Received it for model '${model}'`,
    );
  }
  if (whenFull === 'wait' && o.reap === 'none') {
    throw invalidValue(
      `The "whenFull" option 'wait' needs the fork master to reap its children (reap 'sigchld'): with reap 'none' no child ever leaves, and the server would never accept again`,
    );
  }
  return whenFull;
}

// The handler: a service by name, or the exec handler (fork only; its program resolved and
// checked last, once everything else about the options is known to be right).
function resolveHandler(o: Record<string, unknown>, model: Model): { handler: ServiceName | 'exec'; exec: ResolvedExec | null } {
  const value = o.handler ?? 'echo';
  if (!isExecHandler(value)) {
    if (typeof value !== 'string' || !(HANDLERS as readonly string[]).includes(value)) {
      const message = `The "handler" option must be one of ${HANDLERS.map((h) => `'${h}'`).join(', ')}, or { exec: [file, ...args] }. Received ${show(value)}`;
      throw typeof value === 'string' ? invalidValue(message) : invalidType(message);
    }
    const handler = value as ServiceName;
    if (o.labCrash === true && !(READING_HANDLERS as readonly string[]).includes(handler)) {
      throw invalidValue(
        `The "labCrash" option needs a handler that reads the client (${READING_HANDLERS.join(', ')}). Received handler '${handler}'`,
      );
    }
    return { handler, exec: null };
  }
  if (!(EXEC_MODELS as readonly string[]).includes(model)) {
    throw invalidValue(
      `The "handler" option { exec } applies only to the ${EXEC_MODELS.join(' and ')} models: a process serving one client becomes the program, and a thread (or an event loop serving many clients) cannot. Received it for model '${model}'`,
    );
  }
  for (const name of ['idleTimeoutMs', 'maxConnectionMs', 'minBytesPerSecond', 'labCrash']) {
    if (o[name] !== undefined && o[name] !== 0 && o[name] !== false) {
      throw invalidValue(
        `The "${name}" option does not apply to the exec handler: the program reads and writes the connection itself. Received ${show(o[name])}`,
      );
    }
  }
  return { handler: 'exec', exec: resolveExec(value as ExecHandler) };
}

export function resolveCloseOptions(options: unknown): number {
  if (options === undefined) return 2000;
  const t = (object(options) as CloseOptions).timeoutMs ?? 2000;
  return integerIn('timeoutMs', t, 0, 2 ** 31 - 1);
}
