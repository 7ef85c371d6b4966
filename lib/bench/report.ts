// What a benchmark run is asked (BenchConfig) and what it records (BenchReport: every round's raw
// figures, the machine, the models skipped): the schema of `bench --json`, read back by the
// tables, the chart and bench:doc's goals.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { BenchModel, Workload } from './catalogue';
import type { ForkCost } from './fork-cost';
import type { ServerFootprint } from './footprint';
import type { LoadResult } from './loadgen';
import type { Target } from './target';

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

/**
 * pingpong and churn: echo servers; rpc: the rpc handler; exec: connect and read until the
 * program's exit closes it (load mode eof).
 */
export type RunKind = 'pingpong' | 'churn' | 'rpc' | 'exec';

export interface BenchRound {
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

/** Whether `name` is one of the run's --targets (a HOST:PORT), not a model. */
export function isTarget(name: string, config: BenchConfig): boolean {
  return (config.targets ?? []).some((t) => t.name === name);
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
