// One client served by a JS model ('node' in this process, 'cluster' in a worker): the same
// handlers (echo, upper, inetd's discard, chargen, daytime, time, and rpc: native/core/service.h),
// time limits (idle, lifetime, rate) and disconnect reasons as native/core/connection.cc, written
// the way a Node programmer would (stream events, backpressure with pause/resume and 'drain',
// timers).
import type { Socket } from 'node:net';
import type { DisconnectReason, Peer } from './events';
import { RPC_MAX_LINE, type ResolvedOptions, type ServiceName } from './options';

export interface JsServePolicy {
  handler: ServiceName;
  /** 0: never. Otherwise silent this long in both directions → reason 'idle'. */
  idleTimeoutMs: number;
  /** 0: never. Otherwise open this long → reason 'lifetime'. */
  maxConnectionMs: number;
  /** 0: no minimum. Otherwise fewer bytes read than this × rateWindowMs / 1000 in a window → 'slow'. */
  minBytesPerSecond: number;
  rateWindowMs: number;
  /** rpc: the largest reply a request may ask for. */
  rpcMaxBytes: number;
}

/** The policy of a JS model's connections (options.ts refuses the exec handler for them). */
export function jsServePolicy(opts: ResolvedOptions): JsServePolicy {
  const { handler, idleTimeoutMs, maxConnectionMs, minBytesPerSecond, rateWindowMs, rpcMaxBytes } = opts;
  if (handler === 'exec')
    throw new TypeError(`The exec handler applies only to the fork model. Received it for model '${opts.model}'`);
  return { handler, idleTimeoutMs, maxConnectionMs, minBytesPerSecond, rateWindowMs, rpcMaxBytes };
}

interface ConnectionEnd {
  bytesIn: number;
  /** Bytes the kernel took (write callbacks without an error), as native write() counts them. */
  bytesOut: number;
  reason: DisconnectReason;
}

/**
 * The client of an accepted socket. A client that reset before we looked has no address left;
 * its family is then the listener's (`host`).
 */
export function peerOf(socket: Socket, host: string): Peer {
  const family = socket.remoteFamily === 'IPv6' || (socket.remoteFamily === undefined && host.includes(':')) ? 'IPv6' : 'IPv4';
  return { address: socket.remoteAddress ?? '', family, port: socket.remotePort ?? 0 };
}

/**
 * CLOCK_MONOTONIC in ms (µs precision): one clock for every process of the machine, so that a
 * cluster worker counts a connection's lifetime from its accept in the primary.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

/** ASCII a–z to A–Z, every other byte unchanged (native/core/connection.cc does the same). */
function toUpper(chunk: Buffer): Buffer {
  const out = Buffer.allocUnsafe(chunk.length);
  for (let i = 0; i < chunk.length; i++) {
    const b = chunk[i];
    out[i] = b >= 0x61 && b <= 0x7a ? b - 0x20 : b;
  }
  return out;
}

// RFC 864: the 95 printable characters as a ring, line N = 72 of them from character N, CR LF.
const CHARGEN_LINE = 74;
const CHARGEN_CYCLE = 95 * CHARGEN_LINE;
const CHARGEN_CHUNK = 16 * 1024;
/** Several cycles in a row, so that any CHARGEN_CHUNK from a position in the first is a subarray. */
const chargenRing = (() => {
  const cycles = Math.ceil(CHARGEN_CHUNK / CHARGEN_CYCLE) + 1;
  const buf = Buffer.alloc(cycles * CHARGEN_CYCLE);
  for (let i = 0; i < buf.length; i++) {
    const line = Math.floor(i / CHARGEN_LINE) % 95;
    const col = i % CHARGEN_LINE;
    buf[i] = col < 72 ? 0x20 + ((line + col) % 95) : col === 72 ? 0x0d : 0x0a;
  }
  return buf;
})();

/**
 * rpc: one request line as it arrives, as native/core/service.cc's RpcRequest: a decimal size,
 * a '\r' tolerated before the '\n', the size from 1 to the server's rpcMaxBytes, the line at most
 * RPC_MAX_LINE bytes; anything else is refused.
 */
class RpcLine {
  length = 0;
  size = 0;
  #cr = false;

  /** Takes bytes of `data` from `at` up to and including the line's '\n'; `used`: how many it took. */
  feed(data: Buffer, at: number, max: number): { status: 'more' | 'ready' | 'refused'; used: number } {
    for (let i = at; i < data.length; i++) {
      const c = data[i];
      const used = i - at + 1;
      if (++this.length > RPC_MAX_LINE) return { status: 'refused', used };
      if (c === 0x0a) return { status: this.end(), used };
      if (this.#cr) return { status: 'refused', used }; // only '\n' may follow '\r'
      if (c === 0x0d) {
        this.#cr = true;
        continue;
      }
      if (c < 0x30 || c > 0x39) return { status: 'refused', used };
      this.size = this.size * 10 + (c - 0x30);
      if (this.size > max) return { status: 'refused', used };
    }
    return { status: 'more', used: data.length - at };
  }

  /** The line ends here ('\n', or the client's EOF within it, as UNP's readline() returns it). */
  end(): 'ready' | 'refused' {
    return this.size > 0 ? 'ready' : 'refused';
  }
}

/** RFC 867: one line, the syntax the RFC suggests, in UTC (as native/core/service.cc writes it). */
const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

function daytimeText(date: Date): string {
  const weekday = WEEKDAYS[date.getUTCDay()];
  const month = MONTHS[date.getUTCMonth()];
  const two = (n: number) => String(n).padStart(2, '0');
  return (
    `${weekday}, ${month} ${date.getUTCDate()}, ${date.getUTCFullYear()} ` +
    `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())}-UTC\r\n`
  );
}

/** Seconds from 1900-01-01 to 1970-01-01 (RFC 868). */
const SECONDS_1900_TO_1970 = 2_208_988_800;

/** RFC 868: seconds since 1900-01-01 00:00 UTC, modulo 2^32, big-endian. */
function timeBytes(date: Date): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE((Math.floor(date.getTime() / 1000) + SECONDS_1900_TO_1970) % 2 ** 32);
  return out;
}

export class JsConnection {
  readonly socket: Socket;
  bytesIn = 0;
  bytesOut = 0;
  #reason: DisconnectReason | null = null;

  /**
   * `onBytes` sees every read and every completed write (live counters); `onEnd` is called once,
   * from 'close'. `acceptedAt` (monotonicMs()): when the connection was accepted, if that was
   * earlier than now — a cluster worker serves a connection the primary accepted and handed on, a
   * message or more later; its lifetime (maxConnectionMs) counts from the accept, as the native
   * models count it.
   */
  constructor(
    socket: Socket,
    policy: JsServePolicy,
    onEnd: (end: ConnectionEnd) => void,
    onBytes?: (bytesIn: number, bytesOut: number) => void,
    acceptedAt?: number,
  ) {
    this.socket = socket;
    const handler = policy.handler;
    const countOut = (n: number) => (err?: Error | null) => {
      if (err) return;
      this.bytesOut += n;
      onBytes?.(0, n);
    };
    if (handler === 'daytime' || handler === 'time') {
      // One message, then close (the native servers close(cfd) after the send): nothing is read.
      const message = handler === 'daytime' ? Buffer.from(daytimeText(new Date())) : timeBytes(new Date());
      this.#reason = 'end';
      socket.write(message, countOut(message.length));
      socket.end(() => socket.destroy());
    }
    const transform = handler === 'upper' ? toUpper : (b: Buffer) => b;
    if (handler === 'chargen') {
      // Keep the socket's send buffer full: write until Node queues, then wait for 'drain'.
      let pos = 0;
      const pump = () => {
        while (!socket.destroyed && !socket.writableEnded) {
          const chunk = chargenRing.subarray(pos, pos + CHARGEN_CHUNK);
          pos = (pos + CHARGEN_CHUNK) % CHARGEN_CYCLE;
          if (!socket.write(chunk, countOut(chunk.length))) return;
        }
      };
      socket.on('drain', pump);
      setImmediate(pump);
    }
    if (handler === 'rpc') {
      // UNP's web_child: a line, its reply from chargen's stream (reading paused meanwhile, with
      // backpressure), the next line — those read with it first (pipelined) — until the client's
      // EOF; then the close. A refused line ends the connection at once, without its reply.
      let input: Buffer = Buffer.alloc(0);
      let at = 0;
      let line = new RpcLine();
      let replying = false;
      let ended = false;
      const reply = (size: number) => {
        replying = true;
        socket.pause();
        let left = size;
        let pos = 0;
        const pump = () => {
          while (left > 0 && !socket.destroyed) {
            const n = Math.min(left, CHARGEN_CHUNK);
            const piece = chargenRing.subarray(pos, pos + n);
            pos = (pos + n) % CHARGEN_CYCLE;
            left -= n;
            if (!socket.write(piece, countOut(n))) {
              socket.once('drain', pump);
              return;
            }
          }
          replying = false;
          answer();
        };
        pump();
      };
      const answer = () => {
        while (!replying && !socket.destroyed) {
          let status: 'more' | 'ready' | 'refused';
          if (at < input.length) {
            const fed = line.feed(input, at, policy.rpcMaxBytes);
            at += fed.used;
            status = fed.status;
          } else if (ended && line.length > 0) {
            status = line.end();
          } else if (ended) {
            this.#reason ??= 'end';
            socket.end(() => socket.destroy());
            return;
          } else {
            socket.resume();
            return;
          }
          if (status === 'refused') return this.#destroy('error');
          if (status === 'ready') {
            const size = line.size;
            line = new RpcLine();
            reply(size);
          }
        }
      };
      socket.on('data', (chunk: Buffer) => {
        this.bytesIn += chunk.length;
        onBytes?.(chunk.length, 0);
        input = at < input.length ? Buffer.concat([input.subarray(at), chunk]) : chunk;
        at = 0;
        answer();
      });
      socket.on('end', () => {
        ended = true;
        answer();
      });
    }
    if (handler !== 'daytime' && handler !== 'time' && handler !== 'rpc') {
      socket.on('data', (chunk: Buffer) => {
        this.bytesIn += chunk.length;
        onBytes?.(chunk.length, 0);
        if (handler !== 'echo' && handler !== 'upper') return; // discard, chargen: thrown away
        const out = transform(chunk);
        // Backpressure: stop reading while the client is not reading what we send.
        if (!socket.write(out, countOut(out.length))) socket.pause();
      });
      socket.on('drain', () => socket.resume());
    }
    // Half-close (the server is created with allowHalfOpen): everything read has been queued,
    // so end() sends FIN after the last echoed byte, as the native servers do on read() == 0.
    // (rpc ends itself once its last reply is out.)
    if (handler !== 'rpc') {
      socket.on('end', () => {
        this.#reason ??= 'end';
        socket.end(); // chargen: the client's EOF ends the stream too
      });
    }
    socket.on('error', () => {
      this.#reason ??= 'error';
    });
    if (policy.idleTimeoutMs > 0) {
      socket.setTimeout(policy.idleTimeoutMs, () => this.#destroy('idle'));
    }
    const timers: NodeJS.Timeout[] = [];
    if (policy.maxConnectionMs > 0) {
      const age = acceptedAt === undefined ? 0 : Math.max(0, monotonicMs() - acceptedAt);
      timers.push(setTimeout(() => this.#destroy('lifetime'), Math.max(0, policy.maxConnectionMs - age)));
    }
    if (policy.minBytesPerSecond > 0) {
      // Consecutive windows from the start, as native/core/connection.cc counts them. A client
      // we stopped reading (backpressure) sends nothing we count: it is slow too. chargen keeps
      // nothing it reads: what the client took counts instead.
      const need = Math.ceil((policy.minBytesPerSecond * policy.rateWindowMs) / 1000);
      const moved = () =>
        handler === 'chargen' ? this.bytesOut : handler === 'rpc' ? this.bytesIn + this.bytesOut : this.bytesIn;
      let windowStart = 0;
      timers.push(
        setInterval(() => {
          if (moved() - windowStart < need) this.#destroy('slow');
          windowStart = moved();
        }, policy.rateWindowMs),
      );
    }
    socket.on('close', () => {
      for (const t of timers) clearTimeout(t);
      onEnd({ bytesIn: this.bytesIn, bytesOut: this.bytesOut, reason: this.#reason ?? 'error' });
    });
  }

  /** close()'s timeout has passed: end it now. */
  abort(): void {
    this.#destroy('aborted');
  }

  #destroy(reason: DisconnectReason): void {
    // An idle or aborted connection whose client had already closed still ended by 'end'.
    if (this.#reason === null) this.#reason = reason;
    this.socket.destroy();
  }
}
