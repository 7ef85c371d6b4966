// One client served by a JS model ('node' in this process, 'cluster' in a worker): the same
// echo/upper handler, time limits (idle, lifetime, rate) and disconnect reasons as
// native/core/connection.cc, written the way a Node programmer would (stream events, backpressure
// with pause/resume, timers).
import type { Socket } from 'node:net';
import type { DisconnectReason, Peer } from './events';
import type { Handler } from './options';

export interface JsServePolicy {
  handler: Handler;
  /** 0: never. Otherwise silent this long in both directions → reason 'idle'. */
  idleTimeoutMs: number;
  /** 0: never. Otherwise open this long → reason 'lifetime'. */
  maxConnectionMs: number;
  /** 0: no minimum. Otherwise fewer bytes read than this × rateWindowMs / 1000 in a window → 'slow'. */
  minBytesPerSecond: number;
  rateWindowMs: number;
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

/** ASCII a–z to A–Z, every other byte unchanged (native/core/connection.cc does the same). */
function toUpper(chunk: Buffer): Buffer {
  const out = Buffer.allocUnsafe(chunk.length);
  for (let i = 0; i < chunk.length; i++) {
    const b = chunk[i];
    out[i] = b >= 0x61 && b <= 0x7a ? b - 0x20 : b;
  }
  return out;
}

export class JsConnection {
  readonly socket: Socket;
  bytesIn = 0;
  bytesOut = 0;
  #reason: DisconnectReason | null = null;

  /** `onBytes` sees every read and every completed write (live counters); `onEnd` is called once, from 'close'. */
  constructor(
    socket: Socket,
    policy: JsServePolicy,
    onEnd: (end: ConnectionEnd) => void,
    onBytes?: (bytesIn: number, bytesOut: number) => void,
  ) {
    this.socket = socket;
    const transform = policy.handler === 'upper' ? toUpper : (b: Buffer) => b;
    socket.on('data', (chunk: Buffer) => {
      this.bytesIn += chunk.length;
      onBytes?.(chunk.length, 0);
      const out = transform(chunk);
      const wrote = socket.write(out, (err) => {
        if (err) return;
        this.bytesOut += out.length;
        onBytes?.(0, out.length);
      });
      // Backpressure: stop reading while the client is not reading what we send.
      if (!wrote) socket.pause();
    });
    socket.on('drain', () => socket.resume());
    // Half-close (the server is created with allowHalfOpen): everything read has been queued,
    // so end() sends FIN after the last echoed byte, as the native servers do on read() == 0.
    socket.on('end', () => {
      this.#reason ??= 'end';
      socket.end();
    });
    socket.on('error', () => {
      this.#reason ??= 'error';
    });
    if (policy.idleTimeoutMs > 0) {
      socket.setTimeout(policy.idleTimeoutMs, () => this.#destroy('idle'));
    }
    const timers: NodeJS.Timeout[] = [];
    if (policy.maxConnectionMs > 0) timers.push(setTimeout(() => this.#destroy('lifetime'), policy.maxConnectionMs));
    if (policy.minBytesPerSecond > 0) {
      // Consecutive windows from the start, as native/core/connection.cc counts them. A client
      // we stopped reading (backpressure) sends nothing we count: it is slow too.
      const need = Math.ceil((policy.minBytesPerSecond * policy.rateWindowMs) / 1000);
      let windowStart = 0;
      timers.push(
        setInterval(() => {
          if (this.bytesIn - windowStart < need) this.#destroy('slow');
          windowStart = this.bytesIn;
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
