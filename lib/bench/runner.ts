// The side-by-side benchmark's schedule: every model under the same native load, in alternating
// rounds, each model next to its C reference and every other round reversed (A refA B, B refA A …),
// so that drift of a noisy machine hits a model and its baseline alike; each run warmed up, then
// measured (the load, the server's CPU books on either side, its footprint, its pool's counts).
// Workloads: ping-pong, churn (connect, echo, close) and rpc (UNP ch. 30's client: connect, ask
// for N bytes, read exactly them, close first); for the connection workloads, the server's CPU
// time per connection (its whole process tree, to the nanosecond: bench/cpu.ts) and how evenly a
// pool spread them. Servers already running join with --target (bench/target.ts); the machine's
// fork cost, measured in the same run (bench/fork-cost.ts), is printed beside every "× fork".
// The models are listed in catalogue.ts, started by servers.ts; the report (report.ts) is
// summarized by stats.ts and shown by table.ts and chart.ts.
import { runLoad } from './loadgen';
import { cpuBetweenMs, readCpu } from './cpu';
import {
  BenchModel,
  EXEC_BENCH_MODELS,
  NO_RPC,
  ONE_AT_A_TIME,
  REFERENCE_OF,
  WORKER_PER_CLIENT,
  type Workload,
} from './catalogue';
import { ForkCost, measureForkCost } from './fork-cost';
import { watchFootprint } from './footprint';
import { isTarget, machineInfo, type BenchConfig, type BenchReport, type BenchRound, type RunKind } from './report';
import { runnable, RunningServer, startModel } from './servers';
import { targetServer } from './target';
import { MAX_WORKERS } from '../server/options';

/** The most concurrent clients a run of `config` makes (ping-pong widths only when ping-pong runs). */
function widestRun(config: BenchConfig): number {
  return Math.max(config.churnClients, ...(config.workloads.includes('pingpong') ? config.connections : []));
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
