// Decodes the fixed-size event records written by the native servers. The layout and every
// numbering in it come from the addon (native/core/event_record.h is their one source of truth):
// this file decodes by field and value names, never by offsets or numbers of its own.
// test/wire-format.test.ts checks that the names below and the addon's are the same.
import { native } from '../addon';
import { errnoName, signalName } from '../util/os-names';

export interface Peer {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

export interface ConnectionEvent {
  /** 1, 2, … in accept order (refused connections take an id too). */
  id: number;
  peer: Peer;
  /** fork: the child process serving this connection; prefork, reuseport, cluster: the worker process. */
  pid?: number;
  /** Thread model: the slot of the INFO table it occupies. */
  slot?: number;
  /**
   * prefork, reuseport, cluster: the index of the pool worker serving it; prethread: of the pool
   * thread (0..workers-1; see stats().perWorker).
   */
  worker?: number;
}

export const DISCONNECT_REASONS = ['end', 'error', 'aborted', 'idle', 'crash', 'lifetime', 'slow'] as const;
export type DisconnectReason = (typeof DISCONNECT_REASONS)[number];

export interface DisconnectEvent {
  id: number;
  bytesIn: number;
  bytesOut: number;
  /**
   * end: the client closed; error: a read/write failed; aborted: close()'s timeout ended it (or
   * close() had to kill the process serving it); idle: silent for idleTimeoutMs; crash: the
   * process or thread serving it died (a crashed child or worker, a fork master killed with its
   * children, a cluster worker that exited); lifetime: open for maxConnectionMs; slow: the client
   * sent less than minBytesPerSecond over a rate window.
   */
  reason: DisconnectReason;
  pid?: number;
  slot?: number;
  worker?: number;
}

export const REJECT_REASONS = ['max-clients', 'no-thread', 'no-process', 'no-fd', 'per-source', 'rate', 'denied'] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export interface RejectEvent {
  id: number;
  peer: Peer;
  /**
   * max-clients: maxClients connections are live · no-thread, no-process: pthread_create or fork
   * failed · no-fd: no descriptor left · and the door's (before any process or thread is spent):
   * per-source: maxPerSource connections from this address are live · rate: over
   * maxConnectionsPerSecond · denied: the address matches a deny rule, or allow rules and none
   */
  reason: RejectReason;
  /** For no-thread/no-process/no-fd: the errno name (of pthread_create, fork, or accept's EMFILE). */
  errno?: string;
}

export interface ReapEvent {
  /** The child's (pool models, cluster: the worker's) pid, as waitpid() returned it. */
  pid: number;
  /** The connection it served (0: none — a pool worker that was idle, or held several). */
  id: number;
  /**
   * Exit status when the process exited, else null. fork: 0 client closed, 1 I/O error, 3 idle,
   * 4 lifetime, 5 slow; with the exec handler (fork, prefork) the program's own exit status, 127
   * when it could not be executed. Pool workers: 0 when they left at close, 6 when they had
   * reported a fatal error (the server then stops).
   */
  exitCode: number | null;
  /** Signal name when the child was killed, else null. */
  signal: NodeJS.Signals | null;
  /** prefork, reuseport: the pool worker's index (a replacement takes the same index). */
  worker?: number;
}

export const TRACE_CALLS = [
  'socket',
  'bind',
  'listen',
  'accept',
  'accept-eintr',
  'fork',
  'close-cfd',
  'close-lfd',
  'child-exit',
  'waitpid',
  'pthread_create',
  'pthread_detach',
  'worker-start',
  'slots-full',
  'shutdown',
  'close-conn',
  'exec',
  'pool-fork',
  'worker-accept',
  'lock-file',
  'fcntl-lock',
  'fcntl-unlock',
  'mutex-lock',
  'mutex-unlock',
  'sendmsg',
  'recvmsg',
  'worker-idle',
  'close-node-lfd',
  'epoll_wait',
  'epoll_ctl',
  'epoll_create',
  'queue-push',
  'queue-pop',
  'pthread_join',
  'door-pass',
  'door-refuse',
  'dup2',
  'execve',
  'io_uring_setup',
  'io_uring_register',
  'io_uring_enter',
  'uring-arm',
  'uring-cancel',
  'uring-cqe',
] as const;
export type TraceCall = (typeof TRACE_CALLS)[number];

/**
 * One real syscall (or step) of the server, recorded where it happened (native/core, TraceCall).
 * Meaning of fd/result per call: socket → result lfd; bind/listen → fd lfd (listen: result backlog);
 * accept → fd lfd, result cfd, peer; fork → fd cfd, result child pid; waitpid → result pid, fd the
 * wait status; worker-start → fd the cfd the worker read, result its tid; pthread_create → result rc;
 * exec (the master program starts) → fd Node's lfd, result the same socket's number in the master;
 * Pool models: pool-fork → result the worker's pid; worker-accept → as accept; sendmsg/recvmsg →
 * fd the worker's Unix socket, result the descriptor passed (its number in the sender/receiver);
 * epoll_wait → fd the epoll instance, result ready descriptors; epoll_ctl → fd the descriptor,
 * result (op << 16) | events (op 1 ADD, 2 DEL, 3 MOD). prethread: pthread_create/pthread_join of a
 * pool thread → worker its index (join: result its tid); mutex-lock/unlock, worker-accept as
 * prefork's; queue-push → fd cfd, result the queue's length; queue-pop → fd cfd, result the tid.
 * epoll: epoll_create → result epfd; close-conn → result the epoll descriptor cfd leaves.
 * door-pass → fd cfd, result the live connections from the client's address (0 without maxPerSource);
 * door-refuse → fd cfd, result the reason's number (see `reason`); dup2 (exec handler) → fd cfd,
 * result the standard descriptor it now is; execve → result 0 before the call, -1 (with errno) if it failed.
 * uring (uringWords() in lib/trace/format.ts unpacks the packed results): io_uring_setup → fd the
 * setup flags, result the ring's descriptor; io_uring_register → fd the ring, result (count << 8) |
 * opcode; io_uring_enter → fd the ring, result (completions << 32) | submissions; uring-arm → fd the
 * socket, result kind | 0x100 for a re-arm, errno what ended the one before; uring-cancel → fd cfd,
 * result why (1 backpressure, 2 the end); uring-cqe → fd the socket, result op << 40 | MORE << 32 |
 * the kernel's result (32 bits).
 */
export interface TraceEvent {
  /** CLOCK_MONOTONIC in milliseconds (µs precision), comparable across processes. */
  timeMs: number;
  call: TraceCall;
  /** The process that made the call (the master, a child, or Node for in-process models). */
  pid: number;
  fd: number;
  result: number;
  /** errno name when the call failed (accept-eintr: 'EINTR'), else null. */
  errno: string | null;
  /** The connection (0 when none). */
  id: number;
  /** Thread model: the slot. */
  slot?: number;
  /** Pool models: the pool worker (the caller, or for pool-fork and sendmsg the one concerned). */
  worker?: number;
  /** bind: the address bound; accept, door-pass, door-refuse: the client. */
  address?: Peer;
  /** door-refuse: why. */
  reason?: RejectReason;
  /** execve: the program (its absolute path). */
  program?: string;
}

// The record's time reaches JavaScript only in a trace event (timeMs): the others are delivered in
// the order they happened, and need no time of their own (it would be one more BigInt per record).
type NativeEvent =
  | { type: 'connection'; event: ConnectionEvent }
  | { type: 'disconnect'; event: DisconnectEvent }
  | { type: 'reject'; event: RejectEvent }
  | { type: 'reap'; event: ReapEvent }
  | { type: 'error'; errno: number; syscall: string }
  | { type: 'listening' }
  | { type: 'trace'; event: TraceEvent };

/** The record types this decoder knows (the addon's `wire.eventTypes`). */
export const EVENT_TYPES = ['connection', 'disconnect', 'reject', 'reap', 'error', 'listening', 'trace'] as const;
/** The fields this decoder reads, each with the width it reads it at (the addon's `wire.fields`). */
export const EVENT_FIELDS = {
  type: 1,
  family: 1,
  port: 2,
  id: 4,
  pid: 4,
  slot: 4,
  code: 4,
  detail: 4,
  bytesIn: 8,
  bytesOut: 8,
  fd: 8,
  result: 8,
  addr: 16,
  timeNs: 8,
} as const;

/** number → name, from the addon's table for one enumeration. */
function byNumber<T extends string>(table: Record<string, number>): Map<number, T> {
  return new Map(Object.entries(table).map(([name, n]) => [n, name as T]));
}

/** The addon's layout and numberings, as the decoder uses them. */
function readLayout() {
  const wire = native.constants.wire;
  const at = (name: keyof typeof EVENT_FIELDS): number => wire.fields[name].offset;
  return {
    size: wire.recordSize,
    typeOf: byNumber<(typeof EVENT_TYPES)[number]>(wire.eventTypes),
    traceCallOf: byNumber<TraceCall>(wire.traceCalls),
    disconnectReasonOf: byNumber<DisconnectReason>(wire.disconnectReasons),
    rejectReasonOf: byNumber<RejectReason>(wire.rejectReasons),
    F: {
      type: at('type'),
      family: at('family'),
      port: at('port'),
      id: at('id'),
      pid: at('pid'),
      slot: at('slot'),
      code: at('code'),
      detail: at('detail'),
      bytesIn: at('bytesIn'),
      bytesOut: at('bytesOut'),
      fd: at('fd'),
      result: at('result'),
      addr: at('addr'),
      timeNs: at('timeNs'),
    },
  };
}

// Read on the first decode, not at import: importing this module loads no addon (lib/addon.ts).
let layoutOnce: ReturnType<typeof readLayout> | undefined;
const layout = () => (layoutOnce ??= readLayout());

/** The size of one event record, in bytes (the addon's `wire.recordSize`). */
export const eventRecordSize = (): number => layout().size;

/** RFC 5952 text form of a 16-byte IPv6 address (longest run of zero groups becomes ::). */
export function formatIPv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8) | bytes[i + 1]);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

function peerOf(buf: Buffer, rec: number): Peer {
  const { F } = layout();
  const family = buf.readUInt8(rec + F.family);
  const port = buf.readUInt16LE(rec + F.port);
  const addr = buf.subarray(rec + F.addr, rec + F.addr + 16);
  if (family === 6) return { address: formatIPv6(addr), family: 'IPv6', port };
  return { address: `${addr[0]}.${addr[1]}.${addr[2]}.${addr[3]}`, family: 'IPv4', port };
}

/** Trace calls that are steps of a server rather than syscalls of the same name. */
const SYSCALL_OF: Partial<Record<TraceCall, string>> = {
  'worker-accept': 'accept',
  'pool-fork': 'fork',
  'lock-file': 'mkstemp',
  'fcntl-lock': 'fcntl',
  'mutex-lock': 'pthread_mutex_lock',
};

/** What the record's `slot` field holds: a thread model's slot, or a pool model's worker index. */
type SlotMeaning = 'slot' | 'worker';

/** Where an event happened: its process, and its slot or worker (a module function: no closure per record). */
function placed<T extends { pid?: number; slot?: number; worker?: number }>(
  e: T,
  pid: number,
  slot: number,
  slotIs: SlotMeaning,
): T {
  if (pid > 0) e.pid = pid;
  if (slot >= 0) e[slotIs] = slot;
  return e;
}

/**
 * A 64-bit field as a Number, from its two 32-bit halves: no BigInt on the heap. Exact up to
 * 2^53 (byte counts, nanoseconds: 104 days of CLOCK_MONOTONIC); above, rounded as Number(bigint) is.
 */
function readUint64(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * 2 ** 32;
}

function readInt64(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at) + buf.readInt32LE(at + 4) * 2 ** 32;
}

function decodeOne(buf: Buffer, rec: number, slotIs: SlotMeaning): NativeEvent | null {
  const { F, typeOf, traceCallOf, disconnectReasonOf, rejectReasonOf } = layout();
  const id = buf.readUInt32LE(rec + F.id);
  const pid = buf.readInt32LE(rec + F.pid);
  const slot = buf.readInt32LE(rec + F.slot);
  const code = buf.readInt32LE(rec + F.code);
  const detail = buf.readInt32LE(rec + F.detail);
  switch (typeOf.get(buf.readUInt8(rec + F.type))) {
    case 'connection':
      return { type: 'connection', event: placed<ConnectionEvent>({ id, peer: peerOf(buf, rec) }, pid, slot, slotIs) };
    case 'disconnect': {
      const bytesIn = readUint64(buf, rec + F.bytesIn);
      const bytesOut = readUint64(buf, rec + F.bytesOut);
      const reason = disconnectReasonOf.get(code) ?? 'error';
      return { type: 'disconnect', event: placed<DisconnectEvent>({ id, bytesIn, bytesOut, reason }, pid, slot, slotIs) };
    }
    case 'reject': {
      const event: RejectEvent = { id, peer: peerOf(buf, rec), reason: rejectReasonOf.get(code) ?? 'max-clients' };
      if (detail !== 0) event.errno = errnoName(detail);
      return { type: 'reject', event };
    }
    case 'reap': {
      const event: ReapEvent = { pid, id, exitCode: code >= 0 ? code : null, signal: detail > 0 ? signalName(detail) : null };
      if (slot >= 0 && slotIs === 'worker') event.worker = slot;
      return { type: 'reap', event };
    }
    case 'error': {
      // detail: the call that failed (0: accept, the accept loop's own error), named as Node
      // names syscalls.
      const call = traceCallOf.get(detail);
      return { type: 'error', errno: code, syscall: call === undefined ? 'accept' : (SYSCALL_OF[call] ?? call) };
    }
    case 'listening':
      return { type: 'listening' };
    case 'trace': {
      const call = traceCallOf.get(code);
      if (call === undefined) return null;
      const event: TraceEvent = {
        timeMs: readUint64(buf, rec + F.timeNs) / 1e6,
        call,
        pid,
        fd: readInt64(buf, rec + F.fd),
        result: readInt64(buf, rec + F.result),
        errno: detail !== 0 ? errnoName(detail) : null,
        id,
      };
      if (slot >= 0) event[slotIs] = slot;
      if (buf.readUInt8(rec + F.family) !== 0) event.address = peerOf(buf, rec);
      if (call === 'door-refuse') event.reason = rejectReasonOf.get(event.result);
      return { type: 'trace', event };
    }
    default:
      return null;
  }
}

/**
 * Turns a byte stream into events; keeps a partial record for the next chunk. `slotIs`: what the
 * records' slot field means for this server (the pool models put their worker index there).
 */
const EMPTY = Buffer.alloc(0);

export class EventDecoder {
  #pending: Buffer = EMPTY;
  readonly #slotIs: SlotMeaning;

  constructor(slotIs: SlotMeaning = 'slot') {
    this.#slotIs = slotIs;
  }

  push(chunk: Buffer): NativeEvent[] {
    const buf = this.#pending.length > 0 ? Buffer.concat([this.#pending, chunk]) : chunk;
    const size = eventRecordSize();
    const whole = buf.length - (buf.length % size);
    const out: NativeEvent[] = [];
    for (let at = 0; at < whole; at += size) {
      const ev = decodeOne(buf, at, this.#slotIs);
      if (ev) out.push(ev);
    }
    // A copy only for a partial record (rare: the ring hands out whole records).
    this.#pending = whole === buf.length ? EMPTY : Buffer.from(buf.subarray(whole));
    return out;
  }
}
