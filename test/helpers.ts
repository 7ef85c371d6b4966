// Real sockets, real /proc: helpers that observe what the servers really did.
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { connect, Socket } from 'node:net';
import type { Model, PosixServer, ServerOptions } from '../lib';
import { childrenOf, readStat } from '../lib/util/proc';

/** Options for `model`; the cluster model gets 2 workers (one per core of the CI machine). */
export function optionsFor(model: Model, extra: Omit<ServerOptions, 'model'> = {}): ServerOptions {
  return model === 'cluster' ? { model, workers: 2, ...extra } : { model, ...extra };
}

export function port(server: PosixServer): number {
  const a = server.address();
  if (!a) throw new Error('server is closed');
  return a.port;
}

/** Connects, sends `payload`, half-closes, and collects everything until the server closes. */
export function exchange(p: number, payload: Buffer, timeoutMs = 10000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = connect(p, '127.0.0.1', () => sock.end(payload));
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`exchange timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
}

/** An open connection that we drive step by step. */
export class Client {
  readonly sock: Socket;
  /** Our end's port, kept: Node forgets it once the socket is closed. */
  readonly localPort: number;
  #buf = Buffer.alloc(0);
  #waiters: Array<() => void> = [];
  ended = false;
  error: Error | null = null;

  private constructor(sock: Socket) {
    this.sock = sock;
    this.localPort = sock.localPort ?? -1;
    sock.on('data', (c) => {
      this.#buf = Buffer.concat([this.#buf, c]);
      this.#wake();
    });
    sock.on('end', () => {
      this.ended = true;
      this.#wake();
    });
    sock.on('error', (e) => {
      this.error = e;
      this.#wake();
    });
    sock.on('close', () => {
      this.ended = true;
      this.#wake();
    });
  }

  static open(p: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const sock = connect(p, '127.0.0.1');
      sock.once('connect', () => resolve(new Client(sock)));
      sock.once('error', reject);
    });
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Resolves with the first n bytes received, or rejects after timeoutMs. */
  read(n: number, timeoutMs = 5000): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read(${n}) timed out; have ${this.#buf.length}`)), timeoutMs);
      const check = () => {
        if (this.#buf.length >= n) {
          clearTimeout(timer);
          const out = this.#buf.subarray(0, n);
          this.#buf = this.#buf.subarray(n);
          resolve(Buffer.from(out));
        } else if (this.ended || this.error) {
          clearTimeout(timer);
          reject(this.error ?? new Error(`connection ended with ${this.#buf.length} of ${n} bytes`));
        } else {
          this.#waiters.push(check);
        }
      };
      check();
    });
  }

  /** True if nothing arrives within ms (the connection stays open and silent). */
  async silentFor(ms: number): Promise<boolean> {
    const before = this.#buf.length;
    await sleep(ms);
    return this.#buf.length === before && !this.ended;
  }

  /** Resolves when the server has closed the connection (EOF or reset). */
  closedByPeer(timeoutMs = 5000): Promise<void> {
    return waitFor(() => this.ended || this.error !== null, timeoutMs, 'connection closed by peer');
  }

  async echo(data: Buffer | string): Promise<Buffer> {
    const buf = Buffer.from(data);
    this.sock.write(buf);
    return this.read(buf.length);
  }

  end(): void {
    this.sock.end();
  }

  destroy(): void {
    this.sock.destroy();
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function waitFor(cond: () => boolean, timeoutMs: number, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

export const random = (n: number) => randomBytes(n);

/** Open descriptors of this process (the readdir's own descriptor is counted every time alike). */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Threads of this process. */
export function taskCount(): number {
  return readdirSync('/proc/self/task').length;
}

export { childrenOf, zombiesOf } from '../lib/util/proc';

/** True if the process exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  const st = readStat(pid);
  return st !== null && st.state !== 'Z' && st.state !== 'X';
}

/** What /proc says about this process's resources, to compare before and after a server. */
export function snapshot() {
  return { fds: fdCount(), tasks: taskCount(), children: childrenOf(process.pid).map((c) => c.pid) };
}
