// Decodes the fixed-size event records written by native/core/event_pipe.h (64 bytes each,
// little-endian, packed). Keep the offsets below in step with struct EventRecord.
import { constants as osConstants } from 'node:os';
import { native } from '../addon';

export const EVENT_RECORD_SIZE: number = native.constants.EVENT_RECORD_SIZE;

export interface Peer {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

export interface ConnectionEvent {
  /** 1, 2, … in accept order (refused connections take an id too). */
  id: number;
  peer: Peer;
  /** Fork model: the child process serving this connection. */
  pid?: number;
  /** Thread model: the slot of the INFO table it occupies. */
  slot?: number;
}

export type DisconnectReason = 'end' | 'error' | 'aborted' | 'idle' | 'crash';

export interface DisconnectEvent {
  id: number;
  bytesIn: number;
  bytesOut: number;
  /**
   * end: the client closed; error: a read/write failed; aborted: close()'s timeout ended it;
   * idle: silent for idleTimeoutMs; crash: the serving child or worker crashed.
   */
  reason: DisconnectReason;
  pid?: number;
  slot?: number;
}

export type RejectReason = 'max-clients' | 'no-thread' | 'no-process' | 'no-fd';

export interface RejectEvent {
  id: number;
  peer: Peer;
  reason: RejectReason;
  /** For no-thread/no-process/no-fd: the errno name (of pthread_create, fork, or accept's EMFILE). */
  errno?: string;
}

export interface ReapEvent {
  /** The child's pid, as waitpid() returned it. */
  pid: number;
  /** The connection it served. */
  id: number;
  /** Exit status when the child exited (0: client closed, 1: I/O error), else null. */
  exitCode: number | null;
  /** Signal name when the child was killed, else null. */
  signal: NodeJS.Signals | null;
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
] as const;
export type TraceCall = (typeof TRACE_CALLS)[number];

/**
 * One real syscall (or step) of the server, recorded where it happened (native/core, TraceCall).
 * Meaning of fd/result per call: socket → result lfd; bind/listen → fd lfd (listen: result backlog);
 * accept → fd lfd, result cfd, peer; fork → fd cfd, result child pid; waitpid → result pid, fd the
 * wait status; worker-start → fd the cfd the worker read, result its tid; pthread_create → result rc;
 * exec (fork: the master program starts) → fd Node's lfd, result the same socket's number in the master.
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
  /** bind: the address bound; accept: the client. */
  address?: Peer;
}

export type NativeEvent =
  | { type: 'connection'; event: ConnectionEvent; timeNs: bigint }
  | { type: 'disconnect'; event: DisconnectEvent; timeNs: bigint }
  | { type: 'reject'; event: RejectEvent; timeNs: bigint }
  | { type: 'reap'; event: ReapEvent; timeNs: bigint }
  | { type: 'error'; errno: number; timeNs: bigint }
  | { type: 'listening'; timeNs: bigint }
  | { type: 'trace'; event: TraceEvent; timeNs: bigint };

const DISCONNECT_REASONS: readonly DisconnectReason[] = ['end', 'error', 'aborted', 'idle', 'crash'];
const REJECT_REASONS: readonly RejectReason[] = ['max-clients', 'no-thread', 'no-process', 'no-fd'];

// First name wins for aliases (6 is SIGABRT, not SIGIOT), as in Node's own child_process.
const signalNames = new Map<number, NodeJS.Signals>();
for (const [name, num] of Object.entries(osConstants.signals)) {
  if (!signalNames.has(num)) signalNames.set(num, name as NodeJS.Signals);
}
const errnoNames = new Map<number, string>(
  Object.entries(osConstants.errno).map(([name, num]) => [num, name]),
);

/** RFC 5952 text form of a 16-byte IPv6 address (longest run of zero groups becomes ::). */
export function formatIPv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i] << 8) | bytes[i + 1]);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
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

function peerOf(buf: Buffer, at: number): Peer {
  const family = buf.readUInt8(at + 1);
  const port = buf.readUInt16LE(at + 2);
  const addr = buf.subarray(at + 40, at + 56);
  if (family === 6) return { address: formatIPv6(addr), family: 'IPv6', port };
  return { address: `${addr[0]}.${addr[1]}.${addr[2]}.${addr[3]}`, family: 'IPv4', port };
}

function decodeOne(buf: Buffer, at: number): NativeEvent | null {
  const type = buf.readUInt8(at);
  const id = buf.readUInt32LE(at + 4);
  const pid = buf.readInt32LE(at + 8);
  const slot = buf.readInt32LE(at + 12);
  const code = buf.readInt32LE(at + 16);
  const detail = buf.readInt32LE(at + 20);
  const bytesIn = Number(buf.readBigUInt64LE(at + 24));
  const bytesOut = Number(buf.readBigUInt64LE(at + 32));
  const timeNs = buf.readBigUInt64LE(at + 56);
  const where = <T extends { pid?: number; slot?: number }>(e: T): T => {
    if (pid > 0) e.pid = pid;
    if (slot >= 0) e.slot = slot;
    return e;
  };
  switch (type) {
    case 1:
      return { type: 'connection', event: where<ConnectionEvent>({ id, peer: peerOf(buf, at) }), timeNs };
    case 2:
      return {
        type: 'disconnect',
        event: where<DisconnectEvent>({ id, bytesIn, bytesOut, reason: DISCONNECT_REASONS[code] ?? 'error' }),
        timeNs,
      };
    case 3: {
      const event: RejectEvent = { id, peer: peerOf(buf, at), reason: REJECT_REASONS[code] ?? 'max-clients' };
      if (detail !== 0) event.errno = errnoNames.get(detail) ?? `E${detail}`;
      return { type: 'reject', event, timeNs };
    }
    case 4:
      return {
        type: 'reap',
        event: { pid, id, exitCode: code >= 0 ? code : null, signal: detail > 0 ? (signalNames.get(detail) ?? null) : null },
        timeNs,
      };
    case 5:
      return { type: 'error', errno: code, timeNs };
    case 6:
      return { type: 'listening', timeNs };
    case 7: {
      const event: TraceEvent = {
        timeMs: Number(timeNs) / 1e6,
        call: TRACE_CALLS[code - 1] ?? 'socket',
        pid,
        fd: Number(buf.readBigInt64LE(at + 24)),
        result: Number(buf.readBigInt64LE(at + 32)),
        errno: detail !== 0 ? (errnoNames.get(detail) ?? `E${detail}`) : null,
        id,
      };
      if (slot >= 0) event.slot = slot;
      if (buf.readUInt8(at + 1) !== 0) event.address = peerOf(buf, at);
      return { type: 'trace', event, timeNs };
    }
    default:
      return null;
  }
}

/** Turns a byte stream into events; keeps a partial record for the next chunk. */
export class EventDecoder {
  #pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): NativeEvent[] {
    const buf = this.#pending.length > 0 ? Buffer.concat([this.#pending, chunk]) : chunk;
    const whole = buf.length - (buf.length % EVENT_RECORD_SIZE);
    const out: NativeEvent[] = [];
    for (let at = 0; at < whole; at += EVENT_RECORD_SIZE) {
      const ev = decodeOne(buf, at);
      if (ev) out.push(ev);
    }
    this.#pending = Buffer.from(buf.subarray(whole));
    return out;
  }
}
