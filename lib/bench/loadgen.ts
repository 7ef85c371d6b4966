// A load generator in the addon (native/core/loadgen.cc): one epoll thread of its own drives every
// connection, so the JS thread stays free and the client uses at most one core. Every echoed byte
// is checked against what was sent.
import type { NativeLoadExpect, NativeLoadMode, NativeLoadOptions } from '../binding';
import { fromNative } from '../util/errors';
import { native } from '../addon';
import { integerIn, numericHost, oneOf, optionsObject, port } from '../util/validate';

const LOAD_MODES = ['pingpong', 'churn', 'eof', 'rpc'] as const satisfies readonly NativeLoadMode[];
const LOAD_EXPECTS = ['echo', 'upper', 'any'] as const satisfies readonly NativeLoadExpect[];
export type LoadMode = (typeof LOAD_MODES)[number];
export type LoadExpect = (typeof LOAD_EXPECTS)[number];

const MAX_LOAD_CONNECTIONS = 10000;
const MAX_LOAD_SIZE = 1024 * 1024;
const MAX_LOAD_DURATION_MS = 600000;

export interface LoadOptions {
  /**
   * 'pingpong': `connections` persistent connections, each sending `size` bytes and waiting for
   * all of them back, again and again (closed loop). 'churn': `connections` concurrent clients,
   * each connecting, sending `size` bytes, reading them back and closing, again and again.
   * 'eof': `connections` concurrent clients, each connecting, reading until the server closes, and
   * closing, again and again: for servers that speak first and hang up (daytime, time, a program
   * per connection such as /bin/true); what they send is counted in `bytes`, not checked.
   * 'rpc': `connections` concurrent clients, each connecting, sending the request `${size}\n`,
   * reading exactly `size` bytes of reply, checking them against chargen's stream, and closing
   * first (so the TIME_WAIT is the client's), again and again: UNP ch. 30's client, for the rpc
   * handler (a server that closes before the last byte — a refusal — counts in `resets`).
   */
  mode: LoadMode;
  /** Numeric IPv4 or IPv6 address of the server. Default '127.0.0.1'. */
  host?: string;
  /** The server's port, 1..65535. Required. */
  port: number;
  /** Connections (pingpong) or concurrent clients (churn), 1..10000. Default 1. */
  connections?: number;
  /** Bytes per message, 1..1048576 (1 MiB); rpc: the reply size asked for. Default 64. */
  size?: number;
  /** How long new messages are started, 1..600000 ms. Default 1000. */
  durationMs?: number;
  /**
   * What the server sends back: 'echo' (default) the same bytes (rpc: chargen's stream, as
   * posix-servers and its C references reply), 'upper' with ASCII a–z as A–Z, 'any' bytes — only
   * how many are counted (UNP's own servers answer rpc with whatever their buffer held).
   */
  expect?: LoadExpect;
}

export interface LoadResult {
  mode: LoadMode;
  connections: number;
  size: number;
  /**
   * Measured: from the first connect until the last connection closed. After `durationMs` no
   * message is started; those in flight are waited for, 1.5 s at most (then they count as errors).
   */
  durationMs: number;
  /** Completed round trips whose every byte matched (churn: connect + echo cycles; rpc: whole verified replies). */
  messages: number;
  /** Payload bytes of those messages, each counted once: messages × size (eof: the bytes the server sent; rpc: the replies). */
  bytes: number;
  /** Connections established. */
  connects: number;
  /** Failed connects, stalls (1.5 s without any progress), other socket errors. */
  errors: number;
  /** ECONNRESET, EPIPE, or EOF before the whole reply (rpc: a reply shorter than asked). */
  resets: number;
  /** Replies that differed from what was expected (a wrong byte, or more bytes than sent; rpc: than asked). */
  verifyFailures: number;
  msgsPerSec: number;
  /** Payload throughput in one direction, in 10^6 bytes per second. */
  mbPerSec: number;
  connsPerSec: number;
  /**
   * Per round trip (pingpong: send to last byte back) or per cycle (churn: connect to last byte
   * back), in microseconds; percentiles from a histogram with < 1% error, max and mean exact.
   */
  latencyUs: { p50: number; p90: number; p99: number; max: number; mean: number };
  /** CPU time of the load generator's thread: near durationMs means the client was the bottleneck. */
  cpu: { userMs: number; systemMs: number };
}

const KNOWN = new Set(['mode', 'host', 'port', 'connections', 'size', 'durationMs', 'expect']);

/** Validates and fills in defaults: a TypeError or RangeError naming the option and the bad value. */
function resolveLoadOptions(options: unknown): NativeLoadOptions {
  const o = optionsObject(options, KNOWN);
  const mode = oneOf('mode', o.mode, LOAD_MODES);
  const host = numericHost(o.host ?? '127.0.0.1');
  return {
    mode,
    host,
    port: port('port', o.port, 1),
    connections: integerIn('connections', o.connections ?? 1, 1, MAX_LOAD_CONNECTIONS),
    size: integerIn('size', o.size ?? 64, 1, MAX_LOAD_SIZE),
    durationMs: integerIn('durationMs', o.durationMs ?? 1000, 1, MAX_LOAD_DURATION_MS),
    expect: oneOf('expect', o.expect ?? 'echo', LOAD_EXPECTS),
  };
}

/**
 * Runs a load against an echo server. Bad options throw at once (TypeError/RangeError), before
 * any socket or thread exists. The promise resolves after the load thread has been joined; it
 * rejects only if the run could not start at all (a SystemError from epoll_create1 or pthread_create). Connection failures are
 * counted in the result, never thrown.
 */
export function runLoad(options: LoadOptions): Promise<LoadResult> {
  const o = resolveLoadOptions(options);
  return native.runLoad(o).then(
    (raw) => {
      const seconds = raw.durationMs / 1000;
      const rate = (n: number) => (seconds > 0 ? n / seconds : 0);
      return {
        mode: o.mode,
        connections: o.connections,
        size: o.size,
        durationMs: raw.durationMs,
        messages: raw.messages,
        bytes: raw.bytes,
        connects: raw.connects,
        errors: raw.errors,
        resets: raw.resets,
        verifyFailures: raw.verifyFailures,
        msgsPerSec: rate(raw.messages),
        mbPerSec: rate(raw.bytes) / 1e6,
        connsPerSec: rate(raw.connects),
        latencyUs: { ...raw.latencyUs },
        cpu: { ...raw.cpu },
      };
    },
    (e: unknown) => {
      throw fromNative(e, o.host, o.port);
    },
  );
}
