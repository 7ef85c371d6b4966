// The benchmark's catalogue: every model it can run, what each is held against (its C reference,
// Node, socat), which design of UNP ch. 30 it is, and which workloads and widths it can serve.
// Everything else of the benchmark reads these lists; a new model is added here.
import type { ReferenceModel, ReferenceOptions } from './reference';

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
export const EXEC_PROGRAM = '/bin/true';
/** What exec churn is held against (BENCHMARKS.md: the target is ≥ 0.8× it). */
export const EXEC_BASELINE: BenchModel = 'socat-exec';

/**
 * The bench's names for a model with a non-default acceptLock (prefork: 'none' is the default;
 * prethread: 'mutex') or schedulingPolicy (cluster: 'rr'), and for the C references run with the
 * same --lock.
 */
export const VARIANTS: Partial<Record<BenchModel, { model: string; acceptLock?: string; schedulingPolicy?: string }>> = {
  'prefork-flock': { model: 'prefork', acceptLock: 'flock' },
  'prefork-mutex': { model: 'prefork', acceptLock: 'mutex' },
  'prefork-pass': { model: 'prefork', acceptLock: 'pass' },
  'prethread-main': { model: 'prethread', acceptLock: 'main' },
  'cluster-none': { model: 'cluster', schedulingPolicy: 'none' },
};
export const REF_LOCKS: Partial<Record<BenchModel, ReferenceOptions['lock']>> = {
  'ref-prefork-flock': 'flock',
  'ref-prefork-mutex': 'mutex',
  'ref-prefork-pass': 'pass',
  'ref-prethread-main': 'main',
};

/** The C program of a ref- model: ref-prefork-flock is ref-prefork with --lock flock. */
export function referenceOf(model: BenchModel): ReferenceModel {
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

/**
 * The models of the UNP table: what `--workload rpc` runs when no --models are given — every design
 * above in its order (UNP's numbering first), then their C references in the same order.
 */
export const DESIGN_MODELS: readonly BenchModel[] = (() => {
  const designs = (Object.keys(DESIGNS) as BenchModel[]).filter((m) => !m.startsWith('ref-'));
  return [...designs, ...designs.flatMap((m) => REFERENCE_OF[m] ?? [])];
})();

/**
 * The comparison's models when no --models are given: every model of the catalogue but the
 * acceptLock and scheduling variants (VARIANTS, REF_LOCKS), which the UNP table runs.
 */
export const DEFAULT_MODELS: readonly BenchModel[] = BENCH_MODELS.filter((m) => !VARIANTS[m] && !REF_LOCKS[m]);

/** Models that cannot serve the rpc workload: socat relays to a pipe (echo only); the exec models run a program. */
export const NO_RPC: readonly BenchModel[] = ['socat', 'exec', 'prefork-exec', 'socat-exec', 'xinetd-exec'];

/** Models that serve one client at a time: a multi-connection ping-pong would only stall. */
export const ONE_AT_A_TIME: readonly BenchModel[] = ['iterative', 'ref-iterative'];

/**
 * Pools whose every worker serves one client at a time: they get a worker per connection of the
 * widest run (at most MAX_WORKERS), and skip the ping-pong widths beyond that (those clients
 * would wait in the backlog for the whole run).
 */
export const WORKER_PER_CLIENT: readonly BenchModel[] = [
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
