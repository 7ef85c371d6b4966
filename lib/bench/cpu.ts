// The server side's CPU time, to the nanosecond: what the benchmark divides by the connections made.
//
// /proc/<pid>/stat's utime and stime are clock ticks (10 ms), truncated per process and per field:
// a pool of 15 members that each ran 4 ms reads as 0, and a tree of 50 members can be off by
// half a second. Here instead:
// - every live process of the tree: its CPU-time clock (the addon's processCpuNs: the scheduler's
//   own nanosecond sum over all its threads, those that have exited included — a thread per
//   connection is gone by the time anyone looks);
// - the hosting Node's own threads (for "w/o Node"): each thread's /proc/<pid>/task/<tid>/schedstat,
//   also in nanoseconds;
// - the processes the tree reaped during the run (fork's children, a prefork member that became a
//   program): gone from /proc, so they come from the server's own books — wait4()'s rusage added
//   up by the fork and pool masters (stats().reapedCpuUs) and by ref-fork (its SIGUSR2 report),
//   in microseconds. A server that keeps no such books (socat, xinetd, a --target) cannot be
//   measured so: what /proc keeps of its reaped children is its cutime and cstime, in ticks, which
//   is used only to notice that it reaped some (reapedTicksMs) — the figure is then not printed.
import { readdirSync, readFileSync } from 'node:fs';
import { native } from '../addon';
import { descendantsOf } from '../util/proc';

/** The CPU time (ns) of one process so far, every thread of it, the exited ones included; 0 when it is gone. */
export function processCpuNs(pid: number): number {
  const ns = native.processCpuNs(pid);
  return ns < 0 ? 0 : ns;
}

/** The CPU time (ns) of every live process of the tree under `root` (root included). */
export function liveTreeCpuNs(root: number): number {
  return descendantsOf(root).reduce((sum, pid) => sum + processCpuNs(pid), 0);
}

/**
 * The CPU time (ns) of the live threads of `pid` whose name (comm) `counts` accepts, from each
 * thread's /proc/<pid>/task/<tid>/schedstat (its first field: nanoseconds on a CPU).
 */
export function threadsCpuNs(pid: number, counts: (name: string) => boolean): number {
  let ns = 0;
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  for (const tid of tids) {
    try {
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trimEnd();
      if (!counts(comm)) continue;
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread exited meanwhile
    }
  }
  return ns;
}

/**
 * The tree's reaped children as /proc keeps them: cutime + cstime of every live member, in ms of
 * 10 ms ticks. Never a figure to print: only whether it moved, i.e. whether the tree reaped
 * children whose CPU nothing precise recorded.
 */
export function reapedTicksMs(root: number): number {
  let ticks = 0;
  for (const pid of descendantsOf(root)) {
    try {
      const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[13]) + Number(f[14]); // proc(5) fields 16 and 17
    } catch {
      // gone meanwhile
    }
  }
  return ticks * 10; // USER_HZ is 100 on every architecture Node runs on
}

/** A server's CPU books at one moment: what its live tree used, what it reaped, and whether that is exact. */
export interface CpuReading {
  /** Every live process of the tree: ns. */
  liveNs: number;
  /** The children the tree reaped, from the server's own books (ns); null when it keeps none. */
  reapedNs: number | null;
  /** Without such books: the tree's cutime + cstime in ticks (ms), to notice reaping. */
  reapedTicksMs: number;
}

/**
 * Reads a tree's CPU books. `reapedNs`: the server's own sum of its reaped children (absent: it
 * keeps none). Read before the live tree: a child reaped in between is then counted in neither
 * reading rather than in both (the benchmark reads when the server is quiet, so there is none).
 */
export async function readCpu(root: number, reapedNs?: () => Promise<number>): Promise<CpuReading> {
  const reaped = reapedNs ? await reapedNs() : null;
  return { liveNs: liveTreeCpuNs(root), reapedNs: reaped, reapedTicksMs: reaped === null ? reapedTicksMs(root) : 0 };
}

/**
 * The CPU time (ms) between two readings, or NaN when the tree reaped children whose CPU no
 * precise source recorded (their ticks moved): a figure from 10 ms ticks is not printed.
 */
export function cpuBetweenMs(before: CpuReading, after: CpuReading): number {
  if (before.reapedNs === null || after.reapedNs === null) {
    if (after.reapedTicksMs !== before.reapedTicksMs) return NaN;
    return (after.liveNs - before.liveNs) / 1e6;
  }
  return (after.liveNs - before.liveNs + after.reapedNs - before.reapedNs) / 1e6;
}
