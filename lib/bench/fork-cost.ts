// The machine's fork cost, as the benchmark measures it: what a process per connection costs
// before the connection is served. The fork model's master program runs the loop itself
// (`posix-servers-master fork-cost N`: fork(), _exit(0) in the child, waitpid() in the parent, N
// times; native/bench/measure.h), because fork() copies the page tables of the process that calls
// it: a loop in Node (≈ 50 MB) would measure Node's size, not the master's (≈ 1 MB) or ref-fork's.
// Every "× fork" is printed with it: the same pools are 5× or 50× cheaper than fork depending on
// what fork() costs on the day.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BUILD_DIR, NATIVE_FILES, PREBUILD_DIR } from '../paths';

export interface ForkCost {
  iterations: number;
  /** CPU time (parent and child) per fork/_exit/waitpid, ms. */
  cpuMs: number;
  /** Elapsed time per fork/_exit/waitpid, ms. */
  wallMs: number;
}

/** The master program: built (build/Release), else prebuilt, as the addon is found. */
function masterProgram(): string | null {
  const candidates = [join(BUILD_DIR, NATIVE_FILES.MASTER.build), join(PREBUILD_DIR, NATIVE_FILES.MASTER.ship)];
  return candidates.find((c) => existsSync(c)) ?? null;
}

/** Runs the loop `iterations` times; null when the master program is not there or fails (the report says so). */
export function measureForkCost(iterations = 2000): Promise<ForkCost | null> {
  const program = masterProgram();
  if (program === null) return Promise.resolve(null);
  return new Promise((resolve) => {
    execFile(program, ['fork-cost', String(iterations)], { timeout: 60000 }, (error, stdout) => {
      const m = /^fork-cost (\d+) (\d+) (\d+)$/m.exec(stdout);
      if (error || !m) return resolve(null);
      resolve({ iterations: Number(m[1]), cpuMs: Number(m[2]) / 1e6, wallMs: Number(m[3]) / 1e6 });
    });
  });
}

/** '0.14 ms CPU, 0.21 ms wall' (two readings: '0.13–0.15 ms CPU, …'). */
export function describeForkCost(costs: ReadonlyArray<ForkCost | null>): string {
  const got = costs.filter((c): c is ForkCost => c !== null);
  if (got.length === 0) return 'not measured (the master program posix-servers-master is missing)';
  const range = (values: number[]) => {
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    const f = (v: number) => v.toFixed(v < 1 ? 3 : 2);
    return f(lo) === f(hi) ? f(lo) : `${f(lo)}–${f(hi)}`;
  };
  return `${range(got.map((c) => c.cpuMs))} ms CPU, ${range(got.map((c) => c.wallMs))} ms wall per fork/_exit/waitpid`;
}
