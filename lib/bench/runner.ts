// The side-by-side benchmark: every model under the same native load, in alternating rounds, each
// model next to its C reference and every other round reversed (A refA B, B refA A …), so that
// drift of a noisy machine hits a model and its baseline alike; medians, spreads, and ratios taken
// round by round.
// Workloads: ping-pong, churn (connect, echo, close) and rpc (UNP ch. 30's client: connect, ask
// for N bytes, read exactly them, close first); for the connection workloads, the server's CPU
// time per connection (its whole process tree, to the nanosecond: bench/cpu.ts) and how evenly a
// pool spread them. Servers already running join with --target (bench/target.ts); the machine's
// fork cost, measured in the same run (bench/fork-cost.ts), is printed beside every "× fork".
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { availableParallelism, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { LoadResult, runLoad } from './loadgen';
import { cpuBetweenMs, readCpu, threadsCpuNs } from './cpu';
import { describeForkCost, ForkCost, measureForkCost } from './fork-cost';
import { Target, targetServer } from './target';
import { descendantsOf } from '../util/proc';
import { referenceBinary, referenceCandidates, ReferenceModel, ReferenceOptions, startReference } from './reference';
import { compiledScript } from '../paths';
import { MAX_WORKERS, RPC_DEFAULT_MAX_BYTES } from '../server/options';

export const BENCH_MODELS = [
  'fork',
  'thread',
  'iterative',
  'prefork',
  'prefork-flock',
  'prefork-mutex',
  'prefork-pass',
  'reuseport',
  'prethread',
  'prethread-main',
  'epoll',
  'uring',
  'node',
  'cluster',
  'cluster-none',
  'ref-fork',
  'ref-thread',
  'ref-iterative',
  'ref-epoll',
  'ref-uring',
  'ref-prefork',
  'ref-prefork-flock',
  'ref-prefork-mutex',
  'ref-prefork-pass',
  'ref-reuseport',
  'ref-prethread',
  'ref-prethread-main',
  'socat',
  'exec',
  'prefork-exec',
  'socat-exec',
  'xinetd-exec',
] as const;
export type BenchModel = (typeof BENCH_MODELS)[number];

/**
 * A program per connection (inetd's design): the fork model with `handler: { exec: ['/bin/true'] }`,
 * the prefork model with it (a pool whose members each become the program for one client, and
 * are replaced), and the same program run by socat (`TCP-LISTEN,fork EXEC:/bin/true`) and by
 * xinetd. They run only the exec churn: connect, the program starts and exits, the client reads EOF.
 */
export const EXEC_BENCH_MODELS: readonly BenchModel[] = ['exec', 'prefork-exec', 'socat-exec', 'xinetd-exec'];
/** The program the exec churn runs for each connection. */
const EXEC_PROGRAM = '/bin/true';
/** What exec churn is held against (BENCHMARKS.md: the target is ≥ 0.8× it). */
const EXEC_BASELINE: BenchModel = 'socat-exec';

/**
 * The bench's names for a model with a non-default acceptLock (prefork: 'none' is the default;
 * prethread: 'mutex') or schedulingPolicy (cluster: 'rr'), and for the C references run with the
 * same --lock.
 */
const VARIANTS: Partial<Record<BenchModel, { model: string; acceptLock?: string; schedulingPolicy?: string }>> = {
  'prefork-flock': { model: 'prefork', acceptLock: 'flock' },
  'prefork-mutex': { model: 'prefork', acceptLock: 'mutex' },
  'prefork-pass': { model: 'prefork', acceptLock: 'pass' },
  'prethread-main': { model: 'prethread', acceptLock: 'main' },
  'cluster-none': { model: 'cluster', schedulingPolicy: 'none' },
};
const REF_LOCKS: Partial<Record<BenchModel, ReferenceOptions['lock']>> = {
  'ref-prefork-flock': 'flock',
  'ref-prefork-mutex': 'mutex',
  'ref-prefork-pass': 'pass',
  'ref-prethread-main': 'main',
};

/** The C program of a ref- model: ref-prefork-flock is ref-prefork with --lock flock. */
function referenceOf(model: BenchModel): ReferenceModel {
  return (REF_LOCKS[model] ? model.slice(4, model.lastIndexOf('-')) : model.slice(4)) as ReferenceModel;
}

/** The C reference each native model is held against. */
export const REFERENCE_OF: Partial<Record<BenchModel, BenchModel>> = {
  fork: 'ref-fork',
  thread: 'ref-thread',
  iterative: 'ref-iterative',
  prefork: 'ref-prefork',
  'prefork-flock': 'ref-prefork-flock',
  'prefork-mutex': 'ref-prefork-mutex',
  'prefork-pass': 'ref-prefork-pass',
  reuseport: 'ref-reuseport',
  prethread: 'ref-prethread',
  'prethread-main': 'ref-prethread-main',
  epoll: 'ref-epoll',
  uring: 'ref-uring',
};

/**
 * The workloads. pingpong: persistent connections in a closed loop (--connections); churn: clients
 * that connect, echo `size` bytes and close; rpc: UNP ch. 30's client, which connects, asks for
 * `replyBytes` with the rpc handler's request ("4000\n"), reads exactly that reply, and closes
 * (first: the server, UNP's web_child, serves requests until its client closes). churn and rpc have `churnClients` clients at once.
 */
export const WORKLOADS = ['pingpong', 'churn', 'rpc'] as const;
export type Workload = (typeof WORKLOADS)[number];
/** UNP ch. 30's client asks each server for 4000 bytes ("client host port 5 500 4000"). */
export const DEFAULT_REPLY_BYTES = 4000;

/**
 * The designs of UNP ch. 30 (3rd ed., figure 30.1: 0 iterative, 1 fork per client, 2–5 prefork with
 * no lock / a file lock / a mutex / descriptor passing, 6 thread per client, 7–8 prethread with a
 * mutex / the main thread accepting), and the designs after it, by bench model.
 */
export const DESIGNS: Partial<Record<BenchModel, { unp: string; design: string }>> = {
  iterative: { unp: '0', design: 'iterative' },
  fork: { unp: '1', design: 'fork per connection' },
  prefork: { unp: '2', design: 'prefork, all in accept' },
  'prefork-flock': { unp: '3', design: 'prefork, fcntl lock' },
  'prefork-mutex': { unp: '4', design: 'prefork, shared mutex' },
  'prefork-pass': { unp: '5', design: 'prefork, fd passing' },
  thread: { unp: '6', design: 'thread per connection' },
  prethread: { unp: '7', design: 'prethread, mutex' },
  'prethread-main': { unp: '8', design: 'prethread, main accepts' },
  epoll: { unp: '—', design: 'epoll event loop' },
  uring: { unp: '—', design: 'io_uring completions' },
  reuseport: { unp: '—', design: 'SO_REUSEPORT epoll pool' },
  node: { unp: '—', design: 'Node net.Server' },
  cluster: { unp: '—', design: 'node:cluster, rr' },
  'cluster-none': { unp: '—', design: 'node:cluster, none' },
};
for (const [model, ref] of Object.entries(REFERENCE_OF)) {
  const d = DESIGNS[model as BenchModel];
  if (d && ref) DESIGNS[ref] = { unp: d.unp, design: `${d.design} (C)` };
}

/** The models of the UNP table: what `--workload rpc` runs when no --models are given. */
export const DESIGN_MODELS: readonly BenchModel[] = [
  'iterative',
  'fork',
  'prefork',
  'prefork-flock',
  'prefork-mutex',
  'prefork-pass',
  'thread',
  'prethread',
  'prethread-main',
  'epoll',
  'uring',
  'reuseport',
  'node',
  'cluster',
  'cluster-none',
  'ref-iterative',
  'ref-fork',
  'ref-prefork',
  'ref-prefork-flock',
  'ref-prefork-mutex',
  'ref-prefork-pass',
  'ref-thread',
  'ref-prethread',
  'ref-prethread-main',
  'ref-epoll',
  'ref-uring',
  'ref-reuseport',
];

/** Models that cannot serve the rpc workload: socat relays to a pipe (echo only); the exec models run a program. */
export const NO_RPC: readonly BenchModel[] = ['socat', 'exec', 'prefork-exec', 'socat-exec', 'xinetd-exec'];

/** Models that serve one client at a time: a multi-connection ping-pong would only stall. */
export const ONE_AT_A_TIME: readonly BenchModel[] = ['iterative', 'ref-iterative'];

/**
 * Pools whose every worker serves one client at a time: they get a worker per connection of the
 * widest run (at most MAX_WORKERS), and skip the ping-pong widths beyond that (those clients
 * would wait in the backlog for the whole run).
 */
const WORKER_PER_CLIENT: readonly BenchModel[] = [
  'prefork',
  'prefork-flock',
  'prefork-mutex',
  'prefork-pass',
  'ref-prefork',
  'ref-prefork-flock',
  'ref-prefork-mutex',
  'ref-prefork-pass',
  'prethread',
  'prethread-main',
  'ref-prethread',
  'ref-prethread-main',
  'prefork-exec',
];

/** The most concurrent clients a run of `config` makes (ping-pong widths only when ping-pong runs). */
function widestRun(config: BenchConfig): number {
  return Math.max(config.churnClients, ...(config.workloads.includes('pingpong') ? config.connections : []));
}

export interface BenchConfig {
  models: BenchModel[];
  /** Servers already running (--target), measured as the models are, taking their turn in each round. */
  targets?: Target[];
  connections: number[];
  size: number;
  durationMs: number;
  repeat: number;
  /** Concurrent clients of the churn and rpc runs (and of the exec churn). */
  churnClients: number;
  /** What runs: ping-pong at each width, churn, rpc (exec models: the exec churn, with churn). */
  workloads: Workload[];
  /** rpc: the reply size every request asks for (0..1 MiB). */
  replyBytes: number;
  /**
   * Before each measured run, the same load for this long, unmeasured (0: none). Every round
   * starts fresh servers, and a fresh Node process hosting one spends its first tenths of a
   * second compiling the event decoder (measured: 5–6 µs of host CPU per connection over a 1 s
   * churn from cold, 1.5–2.5 µs after 250 ms): a cost of starting, not of serving.
   */
  warmupMs: number;
}

/** What /proc showed of the server side while the load ran (peaks over 100 ms samples). */
interface ServerFootprint {
  processes: number;
  threads: number;
  rssMb: number;
}

/**
 * pingpong and churn: echo servers; rpc: the rpc handler; exec: connect and read until the
 * program's exit closes it (load mode eof).
 */
type RunKind = 'pingpong' | 'churn' | 'rpc' | 'exec';

interface BenchRound {
  round: number;
  /** A model, or a --target's HOST:PORT. */
  model: string;
  kind: RunKind;
  connections: number;
  result: LoadResult;
  footprint: ServerFootprint;
  /**
   * CPU time (ms, to the ns) of the server's whole process tree over the run: every live process's
   * CPU clock (its threads, exited ones included) and the children the tree reaped, from the
   * server's own wait4() books (bench/cpu.ts). For the API's models the tree's root is the Node
   * process that hosts the server. null when it reaped children and keeps no such books (socat,
   * xinetd, a --target) or, for a --target, without --target-pid.
   */
  serverCpuMs: number | null;
  /**
   * The native models of the API: the part of serverCpuMs spent by the hosting Node process's own
   * threads (its JS thread decoding the server's events, V8's and libuv's threads), i.e. every live
   * thread of the root process but the server's (named ps-server, ps-worker, ps-pool), from each
   * thread's schedstat. Absent for the C references, and for node and cluster, where Node is the server.
   */
  hostCpuMs?: number;
  /**
   * Without the server's own books: the tree's reaped children as /proc keeps them (cutime +
   * cstime, 10 ms ticks), a total never divided per connection.
   */
  reapedTicksMs?: number;
  /** Connections each pool worker took during the run (stats().perWorker, after − before); absent without a pool or stats. */
  perWorker?: number[];
}

export interface BenchSkip {
  model: BenchModel;
  reason: string;
}

export interface Machine {
  cpus: number;
  node: string;
  kernel: string;
  date: string;
  /** fork()'s cost measured by the run itself, at its start and at its end (null: not measured). */
  forkCost?: Array<ForkCost | null>;
}

export interface BenchReport {
  config: BenchConfig;
  machine: Machine;
  rounds: BenchRound[];
  skipped: BenchSkip[];
  /** Set when the run was interrupted (SIGINT): `rounds` holds the runs completed until then. */
  interrupted?: { completedRuns: number; totalRuns: number };
}

export interface RunningServer {
  /** Where the load generator connects: 127.0.0.1 unless given (a --target). */
  host?: string;
  /** A --target: a server nobody here wrote, whose rpc reply bytes are not known in advance. */
  external?: boolean;
  port: number;
  /** The root of the server's process tree (measured with its descendants); absent: not measured (a --target without --target-pid). */
  pid?: number;
  close(): Promise<void>;
  /** The API's models: stats().perWorker now ([] without a pool). */
  perWorker?(): Promise<number[]>;
  /** The API's native models: CPU ns so far of the hosting Node process's own threads. */
  hostCpuNs?(): number;
  /** CPU ns so far of the children the tree has reaped, from the server's own books; absent: it keeps none. */
  reapedCpuNs?(): Promise<number>;
}

/** The threads the addon's in-process servers run on (native/core/server.h); every other thread of the host is Node's. */
const SERVER_THREAD_PREFIX = 'ps-';

function waitForLine(child: ChildProcess, pattern: RegExp, what: string, timeoutMs = 10000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => done(new Error(`${what} did not start within ${timeoutMs} ms`)), timeoutMs);
    const onData = (d: Buffer) => {
      buffered += d.toString();
      const m = pattern.exec(buffered);
      if (m) done(null, m);
    };
    const onExit = (code: number | null) => done(new Error(`${what} exited (code ${code}) before listening`));
    const done = (err: Error | null, m?: RegExpMatchArray) => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(m!);
    };
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(killer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

function socatAvailable(): boolean {
  return spawnSync('socat', ['-V'], { stdio: 'ignore' }).status === 0;
}

function xinetdAvailable(): boolean {
  return spawnSync('xinetd', ['-version'], { stdio: 'ignore' }).status === 0;
}

/** Resolves once something accepts on 127.0.0.1:port (at most 2 s), else throws naming `what`. */
async function listeningOn(port: number, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${what} did not start listening`);
}

/** socat with `address` for each connection (PIPE: echo; EXEC:…: a program). */
async function startSocat(address: string, what: string): Promise<RunningServer> {
  const port = await freePort();
  const child = spawn('socat', [`TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr`, address], { stdio: 'ignore' });
  try {
    await listeningOn(port, what);
  } catch (e) {
    await stopChild(child);
    throw e;
  }
  return { port, pid: child.pid!, close: () => stopChild(child) };
}

/**
 * xinetd running EXEC_PROGRAM on a loopback port, in the foreground, as the user running the
 * benchmark: xinetd needs no privilege for that when the service's \`user\` is that user and it logs
 * to a file (-filelog), not to syslog. Its limits are lifted (instances, per_source, cps: its
 * default cps of 50 would disable the service for 10 s) and it logs nothing per connection.
 */
async function startXinetd(): Promise<RunningServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'posix-servers-xinetd-'));
  const conf = join(dir, 'xinetd.conf');
  writeFileSync(
    conf,
    [
      'defaults',
      '{',
      '  instances = UNLIMITED',
      '  per_source = UNLIMITED',
      '  cps = 1000000 1',
      '  log_on_success =',
      '  log_on_failure =',
      '}',
      'service posix-servers-bench',
      '{',
      '  type = UNLISTED',
      '  socket_type = stream',
      '  protocol = tcp',
      '  wait = no',
      `  port = ${port}`,
      '  bind = 127.0.0.1',
      `  server = ${EXEC_PROGRAM}`,
      `  user = ${userInfo().username}`,
      '}',
      '',
    ].join('\n'),
  );
  const args = ['-dontfork', '-f', conf, '-pidfile', join(dir, 'pid'), '-filelog', join(dir, 'log')];
  const child = spawn('xinetd', args, { stdio: 'ignore' });
  const close = async () => {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await listeningOn(port, 'xinetd');
  } catch (e) {
    await close();
    throw e;
  }
  return { port, pid: child.pid!, close };
}

/**
 * Starts one model in a process of its own (refs: the C binary; socat; the API's models:
 * bench/server-process). `clients`: the most concurrent clients it will get — a prefork or
 * prethread pool (and its reference) gets a worker for each, at most MAX_WORKERS. `replyBytes`
 * (rpc): what each request will ask for; a server's bound (rpcMaxBytes, UNP's MAXN by default) is
 * raised to it.
 */
export async function startModel(
  model: BenchModel,
  clients = 1,
  handler: 'echo' | 'rpc' = 'echo',
  replyBytes = 0,
): Promise<RunningServer> {
  const workers = WORKER_PER_CLIENT.includes(model) ? { workers: Math.min(MAX_WORKERS, Math.max(1, clients)) } : {};
  const bound = handler === 'rpc' && replyBytes > RPC_DEFAULT_MAX_BYTES ? { rpcMaxBytes: replyBytes } : {};
  if (model.startsWith('ref-')) {
    const lock = REF_LOCKS[model];
    const ref = await startReference(referenceOf(model), { ...workers, handler, ...bound, ...(lock ? { lock } : {}) });
    // ref-fork reaps a child per connection and reports their CPU time on SIGUSR2 (ref.h); the
    // other references reap nothing while they serve (their pools live until they stop).
    const reapedCpuNs =
      referenceOf(model) === 'fork'
        ? async () => {
            const from = ref.lines.length;
            process.kill(ref.pid, 'SIGUSR2');
            const line = await ref.waitForLine(/^reaped-cpu-us (\d+)$/, 5000, from);
            return Number(/(\d+)$/.exec(line)![1]) * 1000;
          }
        : () => Promise.resolve(0);
    return { port: ref.port, pid: ref.pid, close: () => ref.close(), reapedCpuNs };
  }
  // An external fork-per-connection peer: socat forks a child per connection that echoes.
  if (model === 'socat') return startSocat('PIPE', 'socat');
  // socat's child forks again: it relays between the socket and the program over a socketpair.
  if (model === 'socat-exec') return startSocat(`EXEC:${EXEC_PROGRAM}`, 'socat EXEC');
  if (model === 'xinetd-exec') return startXinetd();
  const exec = { handler: { exec: [EXEC_PROGRAM] } };
  const variant = VARIANTS[model] ?? { model };
  const options =
    variant.model === 'cluster'
      ? { ...variant, workers: 2, maxClients: 1000, handler, ...bound }
      : model === 'exec'
        ? { model: 'fork', maxClients: 1000, ...exec }
        : model === 'prefork-exec'
          ? { model: 'prefork', maxClients: 1000, ...workers, ...exec }
          : { ...variant, maxClients: 1000, ...workers, handler, ...bound };
  return startApiServer(options, model);
}

/** What the server process (bench/server-process) says of stats() when asked. */
interface ServerProcessStats {
  perWorker: number[];
  reapedCpuUs: number;
  reaped: number;
}

/**
 * A server of the API (startServer `options`) in a process of its own, bench/server-process: the
 * root of its process tree is that Node process. `label` names it in errors.
 */
export async function startApiServer(
  options: { model: string } & Record<string, unknown>,
  label: string,
): Promise<RunningServer & { pid: number; stats(): Promise<ServerProcessStats> }> {
  const child = spawn(process.execPath, [compiledScript('bench/server-process'), JSON.stringify(options)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const m = await waitForLine(child, /listening (\d+)/, `${label} server`);
  const stats = async () => {
    const line = waitForLine(child, /stats (\{[^\n]*\})\n/, `${label} server's stats`, 5000);
    child.stdin!.write('stats\n');
    return JSON.parse((await line)[1]) as ServerProcessStats;
  };
  const pid = child.pid!;
  const hostCpuNs = () => threadsCpuNs(pid, (name) => !name.startsWith(SERVER_THREAD_PREFIX));
  const native = options.model !== 'node' && options.model !== 'cluster';
  return {
    port: Number(m[1]),
    pid,
    close: () => stopChild(child),
    stats,
    perWorker: async () => (await stats()).perWorker,
    reapedCpuNs: async () => (await stats()).reapedCpuUs * 1000,
    ...(native ? { hostCpuNs } : {}),
  };
}

function statusField(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Samples the server's process tree every 100 ms until stopped; returns the peaks. */
function watchFootprint(rootPid: number): () => ServerFootprint {
  const peak: ServerFootprint = { processes: 0, threads: 0, rssMb: 0 };
  const sample = () => {
    const pids = descendantsOf(rootPid);
    let threads = 0;
    let rssKb = 0;
    for (const p of pids) {
      threads += statusField(p, 'Threads');
      rssKb += statusField(p, 'VmRSS');
    }
    peak.processes = Math.max(peak.processes, pids.length);
    peak.threads = Math.max(peak.threads, threads);
    peak.rssMb = Math.max(peak.rssMb, Math.round(rssKb / 102.4) / 10);
  };
  sample();
  const timer = setInterval(sample, 100);
  return () => {
    clearInterval(timer);
    sample();
    return peak;
  };
}

/** Where the benchmark is: shown as a progress line. */
export interface BenchProgress {
  round: number;
  repeat: number;
  /** A model, or a --target's HOST:PORT. */
  model: string;
  /** Runs (one load each) done so far, and in all. */
  done: number;
  total: number;
  elapsedMs: number;
  /** The time still needed, from the runs done so far (before the first: from durationMs). */
  etaMs: number;
}

/** sustained.ts reports its progress as text. */
export type Progress = (text: string) => void;

/** 42 s, 3 min 05 s: for progress lines. */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/** The time the remaining runs will take, from the runs done so far (before the first: a guess per run). */
export function etaMs(startedMs: number, done: number, total: number, guessPerRunMs: number): number {
  const perRun = done > 0 ? (Date.now() - startedMs) / done : guessPerRunMs;
  return Math.round(perRun * (total - done));
}

interface BenchControl {
  progress?: (p: BenchProgress) => void;
  /** Aborting stops the benchmark at once: the report holds the runs completed (`interrupted`). */
  signal?: AbortSignal;
}

type Run = { kind: RunKind; connections: number };

/** The runs of a model, or of a --target (named by its HOST:PORT): every workload asked, at every width. */
function runsOf(model: string, config: BenchConfig): Run[] {
  const has = (w: Workload) => config.workloads.includes(w);
  if (isTarget(model, config)) {
    return [
      ...(has('pingpong') ? config.connections.map((c) => ({ kind: 'pingpong' as const, connections: c })) : []),
      ...(has('churn') ? [{ kind: 'churn' as const, connections: config.churnClients }] : []),
      ...(has('rpc') ? [{ kind: 'rpc' as const, connections: config.churnClients }] : []),
    ];
  }
  return modelRuns(model as BenchModel, config);
}

function modelRuns(model: BenchModel, config: BenchConfig): Run[] {
  const has = (w: Workload) => config.workloads.includes(w);
  if (EXEC_BENCH_MODELS.includes(model)) return has('churn') ? [{ kind: 'exec', connections: config.churnClients }] : [];
  const clients = ONE_AT_A_TIME.includes(model) ? 1 : config.churnClients;
  const runs: Run[] = !has('pingpong')
    ? []
    : config.connections
        .filter((c) => c === 1 || !ONE_AT_A_TIME.includes(model))
        .filter((c) => c <= MAX_WORKERS || !WORKER_PER_CLIENT.includes(model))
        .map((c) => ({ kind: 'pingpong' as const, connections: c }));
  if (has('churn')) runs.push({ kind: 'churn', connections: clients });
  if (has('rpc') && !NO_RPC.includes(model)) runs.push({ kind: 'rpc', connections: clients });
  return runs;
}

/** Whether `name` is one of the run's --targets (a HOST:PORT), not a model. */
function isTarget(name: string, config: BenchConfig): boolean {
  return (config.targets ?? []).some((t) => t.name === name);
}

/**
 * The load generator's options for a run. A --target's rpc replies are counted, not checked: the
 * protocol fixes their length, not their bytes (UNP's own servers send whatever their buffer held;
 * posix-servers' and the C references' are chargen's stream).
 */
function loadOf(run: Run, config: BenchConfig, server: RunningServer) {
  const mode = run.kind === 'exec' ? ('eof' as const) : run.kind;
  const size = run.kind === 'rpc' ? config.replyBytes : config.size;
  const host = server.host ?? '127.0.0.1';
  const expect = run.kind === 'rpc' && server.external ? ('any' as const) : ('echo' as const);
  return { mode, host, port: server.port, connections: run.connections, size, durationMs: config.durationMs, expect };
}

/**
 * After the load (and after the warm-up): how long the server may still be finishing its last
 * connections (a child's exit, its reaping), so that the CPU books are read while it is quiet.
 */
const SETTLE_MS = 100;

/** after − before per worker; undefined when either is missing, empty, or they differ in length. */
function perWorkerDelta(before: number[] | undefined, after: number[] | undefined): number[] | undefined {
  if (!before || !after || before.length !== after.length || after.length === 0) return undefined;
  return after.map((n, i) => n - before[i]);
}

/** Why a model cannot run here, or null. */
function unavailable(model: BenchModel): string | null {
  if (model === 'socat' || model === 'socat-exec') {
    return socatAvailable() ? null : 'socat is not installed (apt-get install socat)';
  }
  if (model === 'xinetd-exec') return xinetdAvailable() ? null : 'xinetd is not installed (apt-get install xinetd)';
  if (model.startsWith('ref-')) {
    const ref = referenceOf(model);
    if (existsSync(referenceBinary(ref))) return null;
    const where =
      ref === 'uring'
        ? 'it is built with the addon where liburing is (Debian: liburing-dev, then npm run build)'
        : 'it is built with the addon (npm run build)';
    return (
      `its C program ref-${ref} is not here (looked in ${referenceCandidates(ref).join(', ')}): ${where} ` +
      `and prebuilt for linux-x64; POSIX_SERVERS_REF_DIR names another directory`
    );
  }
  return null;
}

// Resolves with the run's promise, or with null once the signal is aborted (the load thread is
// left to finish its duration on its own; its result is dropped).
export function unlessAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T | null> {
  if (!signal) return work;
  if (signal.aborted) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(null);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** The models that can run here, and why the others cannot (socat not installed, a C reference not built). */
export function runnable(models: BenchModel[]): { models: BenchModel[]; skipped: BenchSkip[] } {
  const skipped: BenchSkip[] = [];
  const can = models.filter((model) => {
    const why = unavailable(model);
    if (why !== null) skipped.push({ model, reason: why });
    return why === null;
  });
  return { models: can, skipped };
}

export function machineInfo(): Machine {
  let kernel = 'unknown';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    // not Linux's /proc
  }
  return { cpus: availableParallelism(), node: process.version, kernel, date: new Date().toISOString() };
}

/**
 * The order of the models in round `round` (from 1): the given order, but each C reference right
 * after its model, and every even round the whole order reversed, so that a model and its
 * reference run back to back and take turns at going first (ABBA). A reference whose model is not
 * run keeps its place.
 *
 * Why: the machine drifts between rounds, and on churn so does the kernel's state (the TIME_WAIT
 * sockets earlier runs left): here the same C server's churn moved 1.5× between the rounds of one
 * run, while a model and its reference run back to back moved together (BENCHMARKS.md, "Method").
 * Alternating who goes first cancels what one run leaves to the next.
 */
export function roundOrder<T extends string>(models: readonly T[], round: number): T[] {
  const refOf = (m: string) => REFERENCE_OF[m as BenchModel] as T | undefined;
  const order: T[] = [];
  for (const model of models) {
    if (models.some((m) => refOf(m) === model)) continue; // placed after its model
    order.push(model);
    const ref = refOf(model);
    if (ref && models.includes(ref)) order.push(ref);
  }
  return round % 2 === 0 ? order.reverse() : order;
}

/**
 * Runs every (model, kind, connections) once per round, in `roundOrder`, each run after
 * `warmupMs` of its own load unmeasured. A model serves echo for ping-pong and churn, and is
 * started again with the rpc handler for the rpc run. The --targets take their turn after the
 * models (they are neither started nor stopped). The machine's fork cost is measured before the
 * first round and after the last.
 */
export async function runBench(config: BenchConfig, control: BenchControl = {}): Promise<BenchReport> {
  const { progress = () => undefined, signal } = control;
  const started = Date.now();
  const forkCost: Array<ForkCost | null> = [await measureForkCost()];
  const { models, skipped } = runnable(config.models);
  const targets = config.targets ?? [];
  const entries: string[] = [...models, ...targets.map((t) => t.name)];
  const total = config.repeat * entries.reduce((n, m) => n + runsOf(m, config).length, 0);
  let done = 0;
  const eta = () => etaMs(started, done, total, config.warmupMs + config.durationMs + 300);
  const rounds: BenchRound[] = [];
  const aborted = () => signal?.aborted === true;
  bench: for (let round = 1; round <= config.repeat; round++) {
    for (const model of roundOrder(entries, round)) {
      if (aborted()) break bench;
      progress({ round, repeat: config.repeat, model, done, total, elapsedMs: Date.now() - started, etaMs: eta() });
      const runs = runsOf(model, config);
      const target = targets.find((t) => t.name === model);
      // One server for the echo runs, one for rpc: the handler is fixed when a server starts (a
      // target serves what it serves).
      for (const handler of target ? (['any'] as const) : (['echo', 'rpc'] as const)) {
        const mine = runs.filter((r) => handler === 'any' || (r.kind === 'rpc') === (handler === 'rpc'));
        if (mine.length === 0 || aborted()) continue;
        // The exec churn's clients are all a prefork-exec pool ever serves at once.
        const clients = EXEC_BENCH_MODELS.includes(model as BenchModel) ? config.churnClients : widestRun(config);
        const server = target
          ? targetServer(target)
          : await startModel(model as BenchModel, clients, handler as 'echo' | 'rpc', config.replyBytes);
        try {
          for (const run of mine) {
            if (aborted()) break;
            const measured = await measureRun(server, run, config, signal);
            if (measured === null) break;
            rounds.push({ round, model, kind: run.kind, connections: run.connections, ...measured });
            done++;
            progress({ round, repeat: config.repeat, model, done, total, elapsedMs: Date.now() - started, etaMs: eta() });
          }
        } finally {
          await server.close();
        }
      }
    }
  }
  if (!aborted()) forkCost.push(await measureForkCost());
  return {
    config,
    machine: { ...machineInfo(), forkCost },
    rounds,
    skipped,
    ...(aborted() && done < total ? { interrupted: { completedRuns: done, totalRuns: total } } : {}),
  };
}

/**
 * One run on a running server: the warm-up, then the load, with the server's CPU books read when
 * it is quiet on either side (bench/cpu.ts), its footprint sampled meanwhile, and its pool's
 * counts. null when aborted.
 */
async function measureRun(
  server: RunningServer,
  run: Run,
  config: BenchConfig,
  signal: AbortSignal | undefined,
): Promise<Omit<BenchRound, 'round' | 'model' | 'kind' | 'connections'> | null> {
  if (config.warmupMs > 0) {
    const warm = { ...loadOf(run, config, server), durationMs: config.warmupMs };
    if ((await unlessAborted(runLoad(warm), signal)) === null) return null;
    await new Promise((r) => setTimeout(r, SETTLE_MS));
  }
  const pid = server.pid;
  const before = await server.perWorker?.();
  const cpuBefore = pid !== undefined ? await readCpu(pid, server.reapedCpuNs) : null;
  const hostBefore = server.hostCpuNs?.();
  const stop = pid !== undefined ? watchFootprint(pid) : () => ({ processes: NaN, threads: NaN, rssMb: NaN });
  const result = await unlessAborted(runLoad(loadOf(run, config, server)), signal);
  const footprint = stop();
  if (result === null) return null;
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const cpuAfter = pid !== undefined ? await readCpu(pid, server.reapedCpuNs) : null;
  const hostAfter = server.hostCpuNs?.();
  const serverCpuMs = cpuBefore && cpuAfter ? cpuBetweenMs(cpuBefore, cpuAfter) : NaN;
  const perWorker = perWorkerDelta(before, await server.perWorker?.());
  const ticks = cpuBefore && cpuAfter && cpuAfter.reapedNs === null ? cpuAfter.reapedTicksMs - cpuBefore.reapedTicksMs : 0;
  return {
    result,
    footprint,
    serverCpuMs: Number.isFinite(serverCpuMs) ? serverCpuMs : null,
    ...(hostBefore !== undefined && hostAfter !== undefined ? { hostCpuMs: (hostAfter - hostBefore) / 1e6 } : {}),
    ...(ticks > 0 ? { reapedTicksMs: ticks } : {}),
    ...(perWorker ? { perWorker } : {}),
  };
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export interface Summary {
  /** A model, or a --target's HOST:PORT. */
  model: string;
  kind: RunKind;
  connections: number;
  /** msgs/s for pingpong, conns/s for churn and exec, verified replies/s for rpc: median, min, max over rounds. */
  rate: { median: number; min: number; max: number };
  /** The same rate, round by round (round number → rate), for ratios taken within a round. */
  rateOfRound: Map<number, number>;
  /** Server CPU time per connection in µs (serverCpuMs / connections): median, min, max over rounds. */
  cpuPerConnUs: { median: number; min: number; max: number };
  /** The same without the hosting Node process's own threads (median; NaN when not measured). */
  serverOnlyCpuPerConnUs: number;
  /** Connections per pool worker, summed over the rounds; absent without a pool's stats. */
  perWorker?: number[];
  /** Without the server's own books: its reaped children's ticks (ms) over the rounds, never divided per connection. */
  reapedTicksMs: number;
  p50Us: number;
  p99Us: number;
  errors: number;
  verifyFailures: number;
  footprint: ServerFootprint;
  /** Load generator CPU as a share of one core over the run (median). */
  clientCpu: number;
}

/** Each (model, kind, width) over the rounds: medians, spreads, CPU per connection. */
export function summarize(report: BenchReport): Summary[] {
  const groups = new Map<string, BenchRound[]>();
  for (const r of report.rounds) {
    const key = `${r.model}|${r.kind}|${r.connections}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const out: Summary[] = [];
  for (const rs of groups.values()) {
    // exec: a cycle completes at the program's EOF; conns/s counts cycles begun, as churn does.
    const rate = (r: BenchRound) => (r.kind === 'pingpong' || r.kind === 'rpc' ? r.result.msgsPerSec : r.result.connsPerSec);
    const rates = rs.map(rate);
    // null (or absent, in a report written before CPU was measured): not measured, NaN, shown '—'.
    const cpus = rs.map((r) => (r.result.connects > 0 ? ((r.serverCpuMs ?? NaN) * 1000) / r.result.connects : NaN));
    const pools = rs.map((r) => r.perWorker).filter((w): w is number[] => w !== undefined && w.length > 0);
    const perWorker = pools.length > 0 ? pools[0].map((_, i) => pools.reduce((n, w) => n + (w[i] ?? 0), 0)) : undefined;
    out.push({
      model: rs[0].model,
      kind: rs[0].kind,
      connections: rs[0].connections,
      rate: { median: median(rates), min: Math.min(...rates), max: Math.max(...rates) },
      rateOfRound: new Map(rs.map((r) => [r.round, rate(r)])),
      cpuPerConnUs: { median: median(cpus), min: Math.min(...cpus), max: Math.max(...cpus) },
      serverOnlyCpuPerConnUs: median(
        rs.map((r) =>
          r.hostCpuMs !== undefined && r.result.connects > 0
            ? (((r.serverCpuMs ?? NaN) - r.hostCpuMs) * 1000) / r.result.connects
            : NaN,
        ),
      ),
      ...(perWorker ? { perWorker } : {}),
      reapedTicksMs: rs.reduce((a, r) => a + (r.reapedTicksMs ?? 0), 0),
      p50Us: median(rs.map((r) => r.result.latencyUs.p50)),
      p99Us: median(rs.map((r) => r.result.latencyUs.p99)),
      errors: rs.reduce((a, r) => a + r.result.errors + r.result.resets, 0),
      verifyFailures: rs.reduce((a, r) => a + r.result.verifyFailures, 0),
      footprint: {
        processes: Math.max(...rs.map((r) => r.footprint.processes)),
        threads: Math.max(...rs.map((r) => r.footprint.threads)),
        rssMb: Math.max(...rs.map((r) => r.footprint.rssMb)),
      },
      clientCpu: median(rs.map((r) => (r.result.cpu.userMs + r.result.cpu.systemMs) / r.result.durationMs)),
    });
  }
  return out;
}

/**
 * How many times `base`'s rate `s`'s is: the median, over the rounds both ran in, of that round's
 * ratio. A model runs next to its reference (`roundOrder`), so a round's ratio cancels what the
 * machine did in that round, where a ratio of two medians would divide rates of different rounds.
 * Without a round in common (an interrupted run), the ratio of the medians.
 */
export function rateRatio(s: Summary, base: Summary): number {
  const ratios = [...s.rateOfRound]
    .filter(([round]) => base.rateOfRound.has(round))
    .map(([round, rate]) => rate / base.rateOfRound.get(round)!);
  return ratios.length > 0 ? median(ratios) : s.rate.median / base.rate.median;
}

/** A number for a table; '—' when there is none (not measured). */
export const fmt = (n: number, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits }) : '—';

/** The footnote's words for the warm-up (a report written before it existed has none). */
function warmedUp(config: BenchConfig): string {
  return config.warmupMs > 0 ? `, each after ${config.warmupMs} ms of the same load unmeasured` : '';
}

/** The table on stdout: one line per model and ping-pong width, with churn beside it. */
export function formatTable(report: BenchReport): string {
  const sums = summarize(report);
  const find = (model: string, kind: RunKind, c?: number) =>
    sums.find((s) => s.model === model && s.kind === kind && (c === undefined || s.connections === c));
  const entries = entriesOf(report.config);
  const header = [
    'model',
    'conns',
    'msgs/s (min–max)',
    '× node',
    '× ref',
    'p50 µs',
    'p99 µs',
    'conns/s',
    'procs',
    'threads',
    'RSS MB',
    'client CPU',
  ];
  const rows: string[][] = [header];
  for (const c of report.config.connections) {
    for (const model of entries) {
      const s = find(model, 'pingpong', c);
      if (!s) continue;
      const node = find('node', 'pingpong', c);
      const refModel = REFERENCE_OF[model as BenchModel];
      const ref = refModel ? find(refModel, 'pingpong', c) : undefined;
      const churn = find(model, 'churn');
      rows.push([
        model,
        String(c),
        `${fmt(s.rate.median)} (${fmt(s.rate.min)}–${fmt(s.rate.max)})`,
        node ? fmt(rateRatio(s, node), 2) : '',
        ref ? fmt(rateRatio(s, ref), 2) : '',
        fmt(s.p50Us),
        fmt(s.p99Us),
        churn ? fmt(churn.rate.median) : '',
        fmt(s.footprint.processes),
        fmt(s.footprint.threads),
        fmt(s.footprint.rssMb, 1),
        `${fmt(s.clientCpu * 100)}%`,
      ]);
    }
  }
  const lines = rows.length > 1 ? tableLines(rows) : [];
  const designRows = designTableRows(report, sums);
  if (designRows.length > 1) lines.push(...(lines.length > 0 ? [''] : []), ...tableLines(designRows, 3));
  const execRows = execTableRows(report, sums);
  if (execRows.length > 1) lines.push(...(lines.length > 0 ? [''] : []), ...tableLines(execRows));
  const forkCost = describeForkCost(report.machine.forkCost ?? []);
  const targets = report.config.targets ?? [];
  const notes = [
    machineLine(report.machine),
    `msgs/s: ${report.config.size}-byte ping-pong, median of ${report.config.repeat} round(s) of ${report.config.durationMs} ms${warmedUp(report.config)}; conns/s: churn with ${report.config.churnClients} clients (1 for one-at-a-time models).`,
    "× ref: against the C reference server of the same design (ref/*.c), run next to its model; × node, × ref: the median of each round's ratio. procs/threads/RSS: peaks of the server process tree.",
    ...(designRows.length > 1
      ? [
          `designs (UNP ch. 30's numbers): rpc/s: ${report.config.churnClients} clients each connect, ask for ${report.config.replyBytes} bytes ("${report.config.replyBytes}\\n"), read exactly them, close (verified replies per second); churn: connect, echo ${report.config.size} bytes, close.`,
          "CPU µs/conn: CPU time of the server's whole process tree over the run, to the ns — every live process's CPU clock (exited threads included) and the children it reaped, from the server's own wait4() books (the masters' stats().reapedCpuUs, ref-fork's report) — divided by the connections made; for the API's models the Node process hosting the server is in it; w/o Node: the same less the hosting Node process's own threads (their schedstat; the API's native models); — : not measured (a server that reaped children and keeps no books of their CPU, or a --target without --target-pid).",
          `× fork: how many times less CPU per connection than fork's; fork() on this machine, measured by this run: ${forkCost}.`,
          'per worker: connections each pool worker took over the rounds (stats().perWorker), fewest–most (workers); — without a pool, and for the C references (they keep no count).',
        ]
      : []),
    ...targets.map(
      (t) =>
        `${t.name}: a server already running (--target), measured by the same client (its rpc replies counted, not checked)${t.pid !== undefined ? `; its process tree from pid ${t.pid} (--target-pid)` : '; no --target-pid: its CPU, processes and memory are not measured'}.`,
    ),
    ...sums
      .filter((s) => s.reapedTicksMs > 0 && (s.kind === 'churn' || s.kind === 'rpc')) // the kinds with a CPU column
      .map(
        (s) =>
          `${s.model} ${s.kind}: reaped children whose CPU time only /proc's cutime + cstime kept, in 10 ms ticks — ${fmt(s.reapedTicksMs)} ms over its rounds — so no CPU per connection is given.`,
      ),
    ...(execRows.length > 1
      ? [
          `exec conns/s: ${report.config.churnClients} clients each connect and read until ${EXEC_PROGRAM}, run for the connection, has exited and the connection is closed; × ${EXEC_BASELINE}: against socat TCP-LISTEN,fork EXEC:${EXEC_PROGRAM} in the same run.`,
        ]
      : []),
    ...sums
      .filter((s) => s.errors > 0 || s.verifyFailures > 0)
      .map(
        (s) => `warning: ${s.model} ${s.kind} ${s.connections}: ${s.errors} errors, ${s.verifyFailures} verification failures`,
      ),
    ...report.skipped.map((s) => `skipped ${s.model}: ${s.reason}`),
    ...(report.interrupted
      ? [
          `interrupted: ${report.interrupted.completedRuns} of ${report.interrupted.totalRuns} runs completed; medians are of those.`,
        ]
      : []),
  ];
  return [...lines, '', ...notes].join('\n');
}

/** The rows of a report, in order: its models, then its --targets. */
function entriesOf(config: BenchConfig): string[] {
  return [...config.models, ...(config.targets ?? []).map((t) => t.name)];
}

/** 'machine: 2 CPUs, Linux 6.18.0, Node v20.20.2, 2026-11-26 10:00 UTC; fork(): 0.14 ms CPU, …'. */
export function machineLine(m: Machine): string {
  const when = m.date.replace('T', ' ').replace(/:\d\d\.\d+Z$/, ' UTC');
  return `machine: ${m.cpus} CPUs, Linux ${m.kernel}, Node ${m.node}, ${when}; fork(): ${describeForkCost(m.forkCost ?? [])} (the fork model's master program, at the run's start and end).`;
}

/** Columns before `left` are left-aligned (names), the rest right-aligned (numbers). */
function tableLines(rows: string[][], left = 1): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) => r.map((cell, i) => (i < left ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  '));
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  return lines;
}

// The UNP table: one line per design, its rpc and churn rates and the server's CPU per connection.
function designTableRows(report: BenchReport, sums: Summary[]): string[][] {
  const header = [
    'UNP',
    'model',
    'design',
    'rpc/s (min–max)',
    '× ref',
    'CPU µs/conn',
    'w/o Node',
    '× fork',
    'per worker',
    'churn conns/s',
    'churn CPU µs/conn',
    'w/o Node ',
    'churn × fork',
  ];
  const rows: string[][] = [header];
  const find = (model: string, kind: RunKind) => sums.find((s) => s.model === model && s.kind === kind);
  const ordered: string[] = [
    ...DESIGN_MODELS.filter((m) => report.config.models.includes(m)),
    ...report.config.models.filter((m) => !DESIGN_MODELS.includes(m)),
    ...(report.config.targets ?? []).map((t) => t.name),
  ];
  const forkRpc = find('fork', 'rpc');
  const forkChurn = find('fork', 'churn');
  const less = (base: Summary | undefined, s: Summary | undefined) =>
    base && s ? fmt(base.cpuPerConnUs.median / s.cpuPerConnUs.median, 1) : '';
  const spread = (s: Summary | undefined) =>
    s?.perWorker ? `${fmt(Math.min(...s.perWorker))}–${fmt(Math.max(...s.perWorker))} (${s.perWorker.length})` : '—';
  for (const model of ordered) {
    const rpc = find(model, 'rpc');
    const churn = find(model, 'churn');
    if (!rpc && !churn) continue;
    const refModel = REFERENCE_OF[model as BenchModel];
    const ref = refModel ? find(refModel, 'rpc') : undefined;
    const d = DESIGNS[model as BenchModel];
    rows.push([
      d?.unp ?? '—',
      model,
      d?.design ?? (isTarget(model, report.config) ? 'already running (--target)' : ''),
      rpc ? `${fmt(rpc.rate.median)} (${fmt(rpc.rate.min)}–${fmt(rpc.rate.max)})` : '',
      rpc && ref ? fmt(rateRatio(rpc, ref), 2) : '',
      rpc ? fmt(rpc.cpuPerConnUs.median) : '',
      rpc && Number.isFinite(rpc.serverOnlyCpuPerConnUs) ? fmt(rpc.serverOnlyCpuPerConnUs) : '—',
      less(forkRpc, rpc),
      spread(rpc ?? churn),
      churn ? fmt(churn.rate.median) : '',
      churn ? fmt(churn.cpuPerConnUs.median) : '',
      churn ? (Number.isFinite(churn.serverOnlyCpuPerConnUs) ? fmt(churn.serverOnlyCpuPerConnUs) : '—') : '',
      less(forkChurn, churn),
    ]);
  }
  return rows;
}

// The exec churn: one line per program-per-connection server, held against socat's.
function execTableRows(report: BenchReport, sums: Summary[]): string[][] {
  const header = [
    'model',
    'clients',
    'exec conns/s (min–max)',
    `× ${EXEC_BASELINE}`,
    'p50 µs',
    'p99 µs',
    'procs',
    'RSS MB',
    'client CPU',
  ];
  const rows: string[][] = [header];
  const baseline = sums.find((s) => s.model === EXEC_BASELINE && s.kind === 'exec');
  for (const model of report.config.models) {
    const s = sums.find((x) => x.model === model && x.kind === 'exec');
    if (!s) continue;
    rows.push([
      model,
      String(s.connections),
      `${fmt(s.rate.median)} (${fmt(s.rate.min)}–${fmt(s.rate.max)})`,
      baseline ? fmt(rateRatio(s, baseline), 2) : '',
      fmt(s.p50Us),
      fmt(s.p99Us),
      String(s.footprint.processes),
      fmt(s.footprint.rssMb, 1),
      `${fmt(s.clientCpu * 100)}%`,
    ]);
  }
  return rows;
}

/** A bar chart (msgs/s per model and width, conns/s), error bars from the min–max spread. */
export function renderSvg(report: BenchReport): string {
  const sums = summarize(report);
  type Bar = { model: string; value: { median: number; min: number; max: number } };
  const rates = (ss: Summary[]): Bar[] => ss.map((s) => ({ model: s.model, value: s.rate }));
  const cpu = (ss: Summary[]): Bar[] =>
    ss.filter((s) => Number.isFinite(s.cpuPerConnUs.median)).map((s) => ({ model: s.model, value: s.cpuPerConnUs }));
  const groups: Array<{ title: string; bars: Bar[] }> = [
    ...report.config.connections.map((c) => ({
      title: `ping-pong msgs/s, ${c} connection${c === 1 ? '' : 's'}`,
      bars: rates(sums.filter((s) => s.kind === 'pingpong' && s.connections === c)),
    })),
    { title: `churn conns/s`, bars: rates(sums.filter((s) => s.kind === 'churn')) },
    {
      title: `rpc replies/s (${report.config.replyBytes} bytes each, UNP ch. 30)`,
      bars: rates(sums.filter((s) => s.kind === 'rpc')),
    },
    { title: `server CPU µs per connection, rpc (shorter is better)`, bars: cpu(sums.filter((s) => s.kind === 'rpc')) },
    { title: `server CPU µs per connection, churn (shorter is better)`, bars: cpu(sums.filter((s) => s.kind === 'churn')) },
    { title: `exec churn conns/s (${EXEC_PROGRAM} per connection)`, bars: rates(sums.filter((s) => s.kind === 'exec')) },
  ].filter((g) => g.bars.length > 0);
  const barH = 18;
  const labelW = 140;
  const chartW = 520;
  let y = 30;
  const parts: string[] = [];
  const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  for (const g of groups) {
    parts.push(`<text x="10" y="${y}" font-weight="bold">${esc(g.title)}</text>`);
    y += 10;
    const max = Math.max(...g.bars.map((b) => b.value.max));
    for (const b of g.bars) {
      const w = (b.value.median / max) * chartW;
      const x0 = labelW + (b.value.min / max) * chartW;
      const x1 = labelW + (b.value.max / max) * chartW;
      const colour =
        b.model.startsWith('ref-') || b.model === 'socat' || b.model === 'socat-exec' || b.model === 'xinetd-exec'
          ? '#999'
          : b.model === 'node' || b.model === 'cluster'
            ? '#4a8'
            : '#36c';
      parts.push(
        `<text x="10" y="${y + 13}">${esc(b.model)}</text>`,
        `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH - 4}" fill="${colour}"/>`,
        `<line x1="${x0.toFixed(1)}" x2="${x1.toFixed(1)}" y1="${y + 7}" y2="${y + 7}" stroke="#000"/>`,
        `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 12}" font-size="11">${fmt(b.value.median)}</text>`,
      );
      y += barH;
    }
    y += 20;
  }
  const width = labelW + chartW + 120;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...parts,
    `</svg>`,
    '',
  ].join('\n');
}
