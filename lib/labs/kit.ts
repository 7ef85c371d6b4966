// What the labs share: a client we drive step by step, bounded waiting, and readers of what the
// kernel says (/proc/<pid>/fd, /proc/net/tcp). Loopback only: clients connect to 127.0.0.1.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { connect, Socket } from 'node:net';
import { endianness } from 'node:os';
import { formatIPv6 } from '../server/events';
import { NATIVE_MODELS, ServerOptions } from '../server/options';
import { PosixServer, startServer as startPosixServer } from '../server/server';
import type { Recorder } from '../trace/recording';
import { native } from '../addon';
import { readStat, USER_HZ } from '../util/proc';

const LOOPBACK = '127.0.0.1';

// ---- the recorder: what `lab <name> --svg/--ui` draws ----

let recorder: Recorder | null = null;

/** While `r` is set, every server a lab starts through startServer() below is recorded in it. */
export function recordLabServers(r: Recorder | null): void {
  recorder = r;
}

/**
 * startServer() for the labs: the same server; while a recorder is set (`lab --svg`, `lab --ui`),
 * a native one is started with `trace: true` and handed to the recorder, so that its picture can
 * be drawn. Tracing adds records to the event pipe and nothing else: the lab measures the same.
 */
export async function startServer(options: ServerOptions): Promise<PosixServer> {
  const r = recorder;
  const native = (NATIVE_MODELS as readonly string[]).includes(options.model);
  const server = await startPosixServer(r && native ? { ...options, trace: true } : options);
  r?.attach(server, options);
  return server;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Milliseconds on a monotonic clock. */
export const now = () => performance.now();

/** Polls `cond` every 5 ms; throws after `timeoutMs` naming `what`. */
export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = now() + timeoutMs;
  while (!cond()) {
    if (now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** Polls `cond`; true if it held within `timeoutMs`, false otherwise (never throws). */
export async function eventually(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = now() + timeoutMs;
  while (!cond()) {
    if (now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

/**
 * Calls `read` every 5 ms until `done` holds for what it returned or `timeoutMs` has passed, and
 * returns the last value read (never throws). For readers that are slow themselves: /proc/net/tcp
 * on a machine with 100 000 sockets in TIME_WAIT takes most of a second to read.
 */
export async function pollUntil<T>(read: () => T, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = now() + timeoutMs;
  for (;;) {
    const value = read();
    if (done(value) || now() > deadline) return value;
    await sleep(5);
  }
}

export function portOf(server: PosixServer): number {
  const a = server.address();
  if (!a) throw new Error('server is closed');
  return a.port;
}

/**
 * A TCP client that we drive step by step, recording when things arrived. The labs, the tests and
 * `posix-servers check` all use this one.
 */
export class Client {
  readonly sock: Socket;
  /** Our end's port (Node forgets it once the socket is closed). */
  readonly localPort: number;
  /** When the server's FIN (or a reset) arrived, on the now() clock; null until then. */
  closedAt: number | null = null;
  error: Error | null = null;
  #buf = Buffer.alloc(0);
  #waiters: Array<() => void> = [];

  private constructor(sock: Socket) {
    this.sock = sock;
    this.localPort = sock.localPort ?? -1;
    sock.on('data', (c) => {
      this.#buf = Buffer.concat([this.#buf, c]);
      this.#wake();
    });
    const closed = () => {
      if (this.closedAt === null) this.closedAt = now();
      this.#wake();
    };
    sock.on('end', closed);
    sock.on('close', closed);
    sock.on('error', (e) => {
      this.error = e;
      closed();
    });
  }

  /**
   * Connects; resolves when the three-way handshake is done (connect() returned). `localAddress`:
   * the address to connect from (any of 127.0.0.0/8 on loopback), to test rules per source.
   */
  static open(port: number, timeoutMs = 2000, host = LOOPBACK, localAddress?: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const sock = connect({ port, host, ...(localAddress !== undefined ? { localAddress } : {}) });
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`connect to ${host}:${port} timed out`));
      }, timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        resolve(new Client(sock));
      });
      sock.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  get received(): number {
    return this.#buf.length;
  }

  /** The server closed (FIN), or the connection failed or was reset. */
  get closed(): boolean {
    return this.closedAt !== null;
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Resolves with the first n bytes received, or rejects after timeoutMs or at EOF. */
  read(n: number, timeoutMs = 5000): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read(${n}) timed out with ${this.#buf.length} bytes`)), timeoutMs);
      const check = () => {
        if (this.#buf.length >= n) {
          clearTimeout(timer);
          const out = Buffer.from(this.#buf.subarray(0, n));
          this.#buf = this.#buf.subarray(n);
          resolve(out);
        } else if (this.closed) {
          clearTimeout(timer);
          reject(this.error ?? new Error(`connection ended with ${this.#buf.length} of ${n} bytes`));
        } else {
          this.#waiters.push(check);
        }
      };
      check();
    });
  }

  /** Everything received so far, taken out of the buffer. */
  take(): Buffer {
    const out = this.#buf;
    this.#buf = Buffer.alloc(0);
    return out;
  }

  /** Sends `data` and waits for as many bytes to come back; returns what came back. */
  async echo(data: Buffer | string, timeoutMs = 5000): Promise<Buffer> {
    const buf = Buffer.from(data);
    this.sock.write(buf);
    return this.read(buf.length, timeoutMs);
  }

  /** True if `text` comes back within timeoutMs (false on a timeout, a close or another reply). */
  async echoes(text: string, timeoutMs = 2000): Promise<boolean> {
    const back = await this.echo(text, timeoutMs).catch(() => null);
    return back !== null && back.toString() === text;
  }

  /** True if nothing arrives for `ms` and the connection stays open. */
  async silentFor(ms: number): Promise<boolean> {
    const before = this.#buf.length;
    await sleep(ms);
    return this.#buf.length === before && !this.closed;
  }

  /** Resolves when the server has closed the connection (EOF or reset). */
  closedByPeer(timeoutMs = 5000): Promise<void> {
    return waitFor(() => this.closed, timeoutMs, 'the connection to be closed by the peer');
  }

  /** Half-close: sends FIN (the client closes first). */
  end(): void {
    this.sock.end();
  }

  destroy(): void {
    this.sock.destroy();
  }
}

/**
 * Connects, sends `payload`, half-closes, and resolves with everything received until the server
 * closed. Rejects on a connection error or after timeoutMs.
 */
export async function exchange(port: number, payload: Buffer | string, timeoutMs = 10000, host = LOOPBACK): Promise<Buffer> {
  const c = await Client.open(port, timeoutMs, host);
  try {
    c.sock.end(payload);
    await c.closedByPeer(timeoutMs);
    if (c.error) throw c.error;
    return c.take();
  } finally {
    c.destroy();
  }
}

/** Ends every client; ignores those already gone. */
export function destroyAll(clients: Array<Client | undefined>): void {
  for (const c of clients) c?.destroy();
}

/** Closes every server still open; never throws (labs call it in finally). */
export async function closeAll(servers: Array<PosixServer | undefined>): Promise<void> {
  await Promise.all(servers.map((s) => (s && s.listening ? s.close({ timeoutMs: 0 }).catch(() => undefined) : undefined)));
}

// ---- /proc/<pid>/fd ----

/** fd → what it points to (`socket:[12345]`, `pipe:[…]`, a path), or null if unreadable. */
export function fdLinks(pid: number | 'self', task?: number): Map<number, string> | null {
  const dir = task === undefined ? `/proc/${pid}/fd` : `/proc/${pid}/task/${task}/fd`;
  try {
    const out = new Map<number, string>();
    for (const name of readdirSync(dir)) {
      try {
        out.set(Number(name), readlinkSync(`${dir}/${name}`));
      } catch {
        // closed between readdir and readlink
      }
    }
    return out;
  } catch {
    return null;
  }
}

/** The socket inode a /proc fd link names (`socket:[12345]` → 12345), else null. */
export function socketInode(link: string | undefined): number | null {
  const m = link ? /^socket:\[(\d+)\]$/.exec(link) : null;
  return m ? Number(m[1]) : null;
}

/** True if one of the descriptors in `links` is the socket `inode` (false for a null inode). */
export function holdsSocket(links: Map<number, string>, inode: number | null): boolean {
  return [...links.values()].some((l) => inode !== null && socketInode(l) === inode);
}

/** `3 → socket:[1234], 4 → pipe:[…]` for printing, in descriptor order; `highlight` adds a note to some. */
export function showFds(links: Map<number, string>, highlight: Map<number, string> = new Map()): string {
  return [...links.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([fd, link]) => `${fd} → ${link}${highlight.has(fd) ? ` (${highlight.get(fd)})` : ''}`)
    .join(', ');
}

// ---- /proc/net/tcp ----

const TCP_STATES: Record<string, string> = {
  '01': 'ESTABLISHED',
  '02': 'SYN_SENT',
  '03': 'SYN_RECV',
  '04': 'FIN_WAIT1',
  '05': 'FIN_WAIT2',
  '06': 'TIME_WAIT',
  '07': 'CLOSE',
  '08': 'CLOSE_WAIT',
  '09': 'LAST_ACK',
  '0A': 'LISTEN',
  '0B': 'CLOSING',
};

interface TcpEndpoint {
  address: string;
  port: number;
}

interface TcpEntry {
  local: TcpEndpoint;
  remote: TcpEndpoint;
  /** The hex code from the `st` column, e.g. '06'. */
  st: string;
  /** Its name, e.g. 'TIME_WAIT'. */
  state: string;
  /**
   * The rx_queue column: bytes received and not yet read; for a LISTEN socket, the connections
   * in its accept queue (handshake done, not yet accept()ed).
   */
  rxQueue: number;
  /**
   * The kernel's timer on the socket (the `tr` column): 0 none, 1 retransmission (a SYN, data),
   * 2 keepalive, 3 TIME_WAIT's end, 4 zero-window probe; and how long until it fires, in ms
   * (`tm->when`, in clock ticks).
   */
  timer: number;
  timerMs: number;
  /** Retransmissions not yet acknowledged (the `retrnsmt` column; for a SYN_SENT socket, of its SYN). */
  retransmits: number;
  inode: number;
  /** The raw line, trimmed. */
  line: string;
}

// The kernel prints each 32-bit word of the address with %08X, in host byte order.
function wordBytes(hex8: string): number[] {
  const n = parseInt(hex8, 16);
  const be = [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
  return endianness() === 'LE' ? be.reverse() : be;
}

export function decodeTcpEndpoint(field: string): TcpEndpoint {
  const [hexAddr, hexPort] = field.split(':');
  const port = parseInt(hexPort, 16);
  if (hexAddr.length === 8) return { address: wordBytes(hexAddr).join('.'), port };
  const bytes: number[] = [];
  for (let i = 0; i < 32; i += 8) bytes.push(...wordBytes(hexAddr.slice(i, i + 8)));
  return { address: formatIPv6(Uint8Array.from(bytes)), port };
}

/** Parses /proc/net/tcp-format text (header line first). */
export function parseProcNetTcp(text: string): TcpEntry[] {
  const out: TcpEntry[] = [];
  for (const raw of text.split('\n').slice(1)) {
    const f = raw.trim().split(/\s+/);
    if (f.length < 10) continue;
    const st = f[3].toUpperCase();
    const [tr, when] = f[5].split(':');
    out.push({
      local: decodeTcpEndpoint(f[1]),
      remote: decodeTcpEndpoint(f[2]),
      st,
      state: TCP_STATES[st] ?? `0x${st}`,
      rxQueue: parseInt(f[4].split(':')[1] ?? '0', 16),
      timer: parseInt(tr, 16),
      timerMs: (parseInt(when ?? '0', 16) * 1000) / USER_HZ,
      retransmits: parseInt(f[6], 16),
      inode: Number(f[9]),
      line: raw.trim(),
    });
  }
  return out;
}

/**
 * Every TCP socket of this network namespace: /proc/net/tcp, and /proc/net/tcp6 if present; with
 * `port`, only those whose local or remote port it is (the other lines are skipped unparsed: after
 * a benchmark the table holds 100 000 sockets and more in TIME_WAIT).
 */
export function tcpTable(port?: number): TcpEntry[] {
  const out: TcpEntry[] = [];
  // Each address field is HEXADDR:HEXPORT followed by a space.
  const field = port === undefined ? null : `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue; // no IPv6 in this kernel
    }
    // One by one, not push(...rows): a machine that has just run a benchmark holds 100 000
    // sockets and more in TIME_WAIT, beyond what a call's arguments can carry (RangeError).
    if (field !== null)
      text = text
        .split('\n')
        .filter((line, i) => i === 0 || line.includes(field))
        .join('\n');
    for (const row of parseProcNetTcp(text)) {
      if (port === undefined || row.local.port === port || row.remote.port === port) out.push(row);
    }
  }
  return out;
}

/** The entry whose local end is `localPort` and remote end `remotePort` (0: any), if any. */
export function tcpEntry(localPort: number, remotePort: number, table = tcpTable(localPort)): TcpEntry | undefined {
  return table.find((e) => e.local.port === localPort && (remotePort === 0 || e.remote.port === remotePort));
}

/** State name of that entry, or 'gone' when the kernel no longer lists it. */
export function tcpState(localPort: number, remotePort: number, table = tcpTable(localPort)): string {
  return tcpEntry(localPort, remotePort, table)?.state ?? 'gone';
}

/** `127.0.0.1:53422 → 127.0.0.1:9000 st 06 TIME_WAIT` */
export function showTcp(e: TcpEntry | undefined, fallback: string): string {
  if (!e) return fallback;
  return `${e.local.address}:${e.local.port} → ${e.remote.address}:${e.remote.port}  st ${e.st} ${e.state}`;
}

/**
 * The kernel's TCP counters of this network namespace (the TcpExt lines of /proc/net/netstat):
 * `ListenOverflows`, `ListenDrops`, `TCPSynRetrans`, `DelayedACKs`, `TCPAbortOnClose`, … by name.
 * They count for every socket of the namespace: a lab reads how much one counter rose across a
 * step, which other programs can only make larger.
 */
export function tcpExtCounters(): Map<string, number> {
  const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
  const out = new Map<string, number>();
  // Pairs of lines: "TcpExt: name name …" then "TcpExt: value value …".
  for (let i = 0; i + 1 < lines.length; i += 2) {
    if (!lines[i].startsWith('TcpExt:')) continue;
    const names = lines[i].split(/\s+/).slice(1);
    const values = lines[i + 1].split(/\s+/).slice(1);
    names.forEach((name, k) => out.set(name, Number(values[k])));
  }
  return out;
}

/** How much the counter `name` rose between two readings of tcpExtCounters(). */
export function counterRise(before: Map<string, number>, after: Map<string, number>, name: string): number {
  return (after.get(name) ?? 0) - (before.get(name) ?? 0);
}

/** A listening socket as the kernel's sock_diag reports it (what `ss -lnt` shows). */
export interface TcpListener {
  address: string;
  port: number;
  /** Connections in its accept queue: handshake done, not yet accept()ed (ss: Recv-Q). */
  queued: number;
  /** The accept queue's limit: listen()'s backlog, capped at net.core.somaxconn (ss: Send-Q). */
  backlog: number;
  inode: number;
}

/**
 * The TCP listeners on `port` (IPv4 and IPv6; reuseport has several), asked of the kernel over
 * netlink (native/core/sock_diag.h), as `ss` asks: no iproute2 needed, and no reading through the
 * 100,000 TIME_WAIT rows /proc/net/tcp may list after a benchmark.
 */
export function tcpListeners(port: number): TcpListener[] {
  return native.tcpListeners(port).map((l) => ({
    address: l.address.address,
    port: l.address.port,
    queued: l.queued,
    backlog: l.backlog,
    inode: l.inode,
  }));
}

/** The LISTEN socket's inode for `port` (to recognise lfd in /proc/<pid>/fd). */
export function listenInode(port: number, address: string): number | null {
  // The address too: another program may listen on the same port number at another address
  // (::1, 127.0.0.2), and /proc/net lists every socket of the namespace.
  const e = tcpTable(port).find((x) => x.local.port === port && x.local.address === address && x.st === '0A');
  return e ? e.inode : null;
}

/** Threads of this process, from /proc/self/task. */
export function tasks(): number[] {
  return readdirSync('/proc/self/task').map(Number);
}

/**
 * How many times `pid` went to sleep (gave up the CPU to wait: voluntary_ctxt_switches in
 * /proc/<pid>/status). A process asleep in accept() or epoll_wait() adds one each time it is woken
 * and sleeps again: the labs count wake-ups with it. null when the process is gone.
 */
export function voluntarySwitches(pid: number): number | null {
  try {
    const m = /^voluntary_ctxt_switches:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Waits until every one of `pids` is asleep (state S in /proc/<pid>/stat) at two looks 5 ms apart:
 * whoever was woken has run and gone back to wait. Throws after `timeoutMs` naming `what`.
 */
export async function allAsleep(pids: number[], timeoutMs: number, what: string): Promise<void> {
  const asleep = () => pids.every((p) => readStat(p)?.state === 'S');
  const deadline = now() + timeoutMs;
  for (;;) {
    if (asleep()) {
      await sleep(5);
      if (asleep()) return;
    }
    if (now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}
