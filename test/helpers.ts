// Real sockets, real /proc: helpers that observe what the servers really did.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, Server as NetServer, Socket } from 'node:net';
import { join } from 'node:path';
import type { LoadOptions, LoadResult, Model, ServerOptions, ServerStats } from '../lib';
import type { Lab, LabResult } from '../lib/labs/types';
import { childrenOf, descendantsOf, readStat } from '../lib/util/proc';
import { tcpListeners } from '../lib/labs/kit';

/**
 * The pool size each pool model gets in the shared suites: cluster and reuseport 2 (one per core
 * of the CI machine; each worker serves many clients); prefork and prethread 4, because a prefork
 * worker or a prethread thread serves one client at a time and the suites hold up to 3 clients
 * while others come and go.
 */
export const SUITE_WORKERS: Partial<Record<Model, number>> = { cluster: 2, prefork: 4, reuseport: 2, prethread: 4 };

/** Options for `model`, with its pool size (SUITE_WORKERS) unless `extra` names one. */
export function optionsFor(model: Model, extra: Omit<ServerOptions, 'model'> = {}): ServerOptions {
  const workers = SUITE_WORKERS[model];
  return workers === undefined ? { model, ...extra } : { model, workers, ...extra };
}

export const isPoolModel = (model: Model): model is 'prefork' | 'reuseport' => model === 'prefork' || model === 'reuseport';
/** The models that count per pool member (stats().perWorker, `worker` on events): the process pools and prethread. */
export const hasPool = (model: Model): boolean => isPoolModel(model) || model === 'prethread';
/** Models whose members serve one client at a time: a load of N clients at once needs N members. */
export const isOneClientPerMember = (model: Model): boolean => model === 'prefork' || model === 'prethread';

/**
 * The shared suites run every model with its defaults, and the variants below as well: the other
 * kind of prethread's hand-off, cluster's other scheduling policy, and uring's single-shot
 * receives (what kernels before 6.1 get). [label, model, options].
 */
export type Variant = [string, Model, Omit<ServerOptions, 'model'>];
export const VARIANTS: Variant[] = [
  ['prethread (acceptLock main)', 'prethread', { acceptLock: 'main' }],
  ['cluster (schedulingPolicy none)', 'cluster', { schedulingPolicy: 'none' }],
  ['uring (uringReceive single)', 'uring', { uringReceive: 'single' }],
];

/** Every model with its defaults, then the variants of those models. */
export function withVariants(models: readonly Model[]): Variant[] {
  return [...models.map((m): Variant => [m, m, {}]), ...VARIANTS.filter(([, m]) => models.includes(m))];
}
/** The models whose server.pid is a master process of their own (fork + execve). */
export const isProcessModel = (model: Model): boolean => model === 'fork' || isPoolModel(model);

// The client, exchange() and the waiting helpers are the labs' own kit: one client for labs,
// tests and `posix-servers check`.
export { Client, exchange, portOf as port, sleep, waitFor } from '../lib/labs/kit';

export const random = (n: number) => randomBytes(n);

/**
 * The first n bytes of RFC 864's stream (line k: the 72 printable characters from character k,
 * CR LF): what chargen sends and what the rpc handler and the C references reply.
 */
export function chargenPrefix(n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    const line = Math.floor(i / 74) % 95;
    const col = i % 74;
    out[i] = col < 72 ? 0x20 + ((line + col) % 95) : col === 72 ? 0x0d : 0x0a;
  }
  return out;
}

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

/** A net.Server of Node's listening on 127.0.0.1:p (0: any port). */
export function listenNet(p = 0): Promise<NetServer> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(p, '127.0.0.1', () => resolve(s));
  });
}

export const closeNet = (s: NetServer) => new Promise<void>((r) => s.close(() => r()));

/** Whether a server could listen on 127.0.0.1:p now (nothing holds it). */
export async function portIsFree(p: number): Promise<boolean> {
  try {
    await closeNet(await listenNet(p));
    return true;
  } catch {
    return false;
  }
}

/** Resumes a paused socket and resolves with the next `n` bytes it reads (chunks kept in a list: a
 * payload of megabytes through Client's buffer would be slow). */
export function readBytes(sock: Socket, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let received = 0;
  return new Promise<Buffer>((resolve) => {
    sock.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received >= n) resolve(Buffer.concat(chunks));
    });
    sock.resume();
  });
}

/**
 * Runs `lab` as `posix-servers lab` does, collecting its lines; afterwards no child process of ours
 * may be left (its servers and C programs are gone). No wall-clock assertion: jest's timeout bounds it.
 */
export async function runLabIn(lab: Lab, lang: 'en' | 'zh' = 'en'): Promise<{ result: LabResult; lines: string[] }> {
  const lines: string[] = [];
  const result = await lab.run((l) => lines.push(l), lang);
  expect(childrenOf(process.pid).filter((c) => c.state !== 'Z')).toEqual([]);
  return { result, lines };
}

/**
 * Every process a server starts, found wherever it went. Two ways, because a mark in the
 * environment cannot reach every process from a test:
 * - the mark: a variable of its own in the environment, which every process inherits from its
 *   parent — a program from the master, whatever a program starts from it — whatever process group
 *   or session it moves to and whoever its parent becomes (init, once its own has died).
 *   `new ServerProcessMark()` sets it in process.env: the default environment of an exec'd
 *   program, and of a Node process a test spawns with `env: { ...process.env }`; a test that gives
 *   `env` to the exec handler adds `mark.env`. (jest's process.env is the test's own copy: the
 *   master, exec'd with the C environment of jest's Node, does not carry it.)
 * - the tree: `scan(server)` also records the server's master and every process below it.
 * Each process is remembered with its start time, so a pid reused later by someone else is not
 * taken for it. `expectNoneLeft()` fails naming every one still in /proc, zombies included.
 */
export class ServerProcessMark {
  static readonly NAME = 'POSIX_SERVERS_TEST_MARK';
  private static count = 0;
  readonly value = `${process.pid}-${++ServerProcessMark.count}-${randomBytes(4).toString('hex')}`;
  /** pid → its start time (clock ticks since boot), of every process seen so far. */
  private readonly seen = new Map<number, string>();

  constructor() {
    process.env[ServerProcessMark.NAME] = this.value;
  }

  /** The mark, for an exec handler's own `env`. */
  get env(): Record<string, string> {
    return { [ServerProcessMark.NAME]: this.value };
  }

  /**
   * The marked processes alive now (Node itself excluded) and, given a process-model server, its
   * master and every process below it; all remembered for expectNoneLeft(). Returns them.
   */
  scan(server?: { pid: number }): number[] {
    const needle = Buffer.from(`\0${ServerProcessMark.NAME}=${this.value}\0`);
    const found = new Set<number>();
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
      try {
        // The environment as the process was exec'd with it: NUL-separated, NUL-terminated.
        const environ = Buffer.concat([Buffer.from([0]), readFileSync(`/proc/${name}/environ`)]);
        if (environ.includes(needle)) found.add(Number(name));
      } catch {
        // gone meanwhile, or not ours to read
      }
    }
    if (server !== undefined && server.pid !== process.pid) for (const pid of descendantsOf(server.pid)) found.add(pid);
    for (const pid of found) {
      const started = startTimeOf(pid);
      if (started !== null) this.seen.set(pid, started);
    }
    return [...found].filter((pid) => this.seen.has(pid));
  }

  /** The processes seen (or marked now) that are still in /proc, alive or zombie, with what /proc says. */
  left(): string[] {
    this.scan();
    const out: string[] = [];
    for (const [pid, started] of this.seen) {
      const st = readStat(pid);
      if (st === null || startTimeOf(pid) !== started) continue; // gone (or the number is someone else's now)
      let comm = '?';
      try {
        comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch {
        // gone meanwhile
      }
      out.push(`${pid} ${comm} (state ${st.state}, parent ${st.ppid}, group ${st.pgrp}, session ${st.session})`);
    }
    return out;
  }

  /**
   * No process of the server is left anywhere in /proc: at once by default (close() has settled,
   * so the server must be gone), or within `withinMs` (Node itself was killed: init reaps them).
   */
  async expectNoneLeft(withinMs = 0): Promise<void> {
    const deadline = performance.now() + withinMs;
    let left = this.left();
    while (left.length > 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      left = this.left();
    }
    if (left.length > 0) throw new Error(`processes of the server left in /proc: ${left.join('; ')}`);
  }

  /** Takes the mark out of process.env (servers started later are not marked). */
  dispose(): void {
    if (process.env[ServerProcessMark.NAME] === this.value) delete process.env[ServerProcessMark.NAME];
  }
}

/** A process's start time (proc(5)'s field 22, clock ticks after boot), or null when it is gone. */
function startTimeOf(pid: number): string | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return null;
  }
}

/**
 * The listening sockets of `port` and the connections waiting in their accept queues (handshake
 * done, not yet accept()ed: ss's Recv-Q of a LISTEN socket; reuseport has several listeners), asked
 * of the kernel by netlink for that port only (kit's tcpListeners): /proc/net/tcp lists every socket
 * of the machine, and after a benchmark that is 100,000 lines and more.
 */
export function listenQueue(port: number): { listeners: number; queued: number } {
  const listeners = tcpListeners(port);
  return { listeners: listeners.length, queued: listeners.reduce((n, l) => n + l.queued, 0) };
}

/**
 * Runs `node ...argv` in a network namespace of its own (unshare --net; as root, or as a user
 * mapped to root in a user namespace of its own), its loopback brought up, and resolves with the
 * JSON of the last line it printed; rejects with its stderr when it fails.
 *
 * For the tests that watch TIME_WAIT sockets: the kernel keeps them per network namespace, at most
 * net.ipv4.tcp_max_tw_buckets, and a socket that closes beyond that leaves none on either side
 * (TcpExt TCPTimeWaitOverflow). In the machine's own namespace, the other suites' churn running
 * beside a test fills that table within a second, and the test sees nothing (CI, once, three
 * times in a row); in a namespace of its own the table is empty and the test's alone.
 */
export function inOwnNetwork<T>(argv: string[], timeoutMs = 120000): Promise<T> {
  const as = process.getuid?.() === 0 ? [] : ['--user', '--map-root-user'];
  const up = 'ip link set lo up && exec "$@"';
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', [...as, '--net', 'sh', '-c', up, 'sh', process.execPath, ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').pop();
      if (code !== 0 || !last) {
        reject(new Error(`in a network namespace of its own, node ${argv[0]} ended (${signal ?? code}): ${err.trim()}`));
        return;
      }
      resolve(JSON.parse(last) as T);
    });
  });
}

/** What test/fixtures/time-waits.js prints for a load job: the TIME_WAIT sockets of the port by side. */
export interface TimeWaitsAfterLoad {
  load: LoadResult;
  /** 'local→remote' keys of the TIME_WAIT sockets whose local end is the server's port (the server closed first). */
  server: string[];
  /** Those whose remote end is the port (the client closed first). */
  client: string[];
  stats?: ServerStats;
}

const TIME_WAITS = join(__dirname, 'fixtures', 'time-waits.js');

/**
 * Starts a server (`server`: startServer's options, or `{ reference, options }` for a C
 * reference) in a network namespace of its own (inOwnNetwork), runs `load` against it, and says
 * which side holds the TIME_WAIT sockets once every server side has closed.
 */
export function timeWaitsAfterLoad(
  server: ServerOptions | { reference: string; options: object },
  load: Omit<LoadOptions, 'port'>,
): Promise<TimeWaitsAfterLoad> {
  return inOwnNetwork([TIME_WAITS, JSON.stringify({ server, load })]);
}

/** Runs a lab in a network namespace of its own (inOwnNetwork): for the labs that watch TIME_WAIT rows. */
export async function runLabInOwnNetwork(
  name: string,
  lang: 'en' | 'zh' = 'en',
): Promise<{ result: LabResult; lines: string[] }> {
  const { result, lines, children } = await inOwnNetwork<{ result: LabResult; lines: string[]; children: unknown[] }>([
    TIME_WAITS,
    JSON.stringify({ lab: name, lang }),
  ]);
  expect(children).toEqual([]);
  return { result, lines };
}
