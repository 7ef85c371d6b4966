// `bench --target HOST:PORT[,…]`: a server that is already running — a student's, UNP's, nginx's —
// measured by the same load generator with the same workloads, in the same table, taking its turn
// in every round as the models do. The benchmark neither starts nor stops it: it serves whatever it
// serves, so ask for the workloads it speaks (--workload rpc for UNP's servers; pingpong and churn
// for an echo server). Its rpc replies are counted, not checked: the protocol fixes their length,
// and UNP's web_child sends whatever its buffer held. With --target-pid, its process tree is measured as a model's is: CPU time
// to the nanosecond for every live process and thread (exited threads included); the children it
// reaps during a run, though, are known outside the server only as its cutime and cstime in /proc,
// in 10 ms ticks — no per-connection figure is printed from those (bench/cpu.ts).
import { isIP } from 'node:net';
import { existsSync } from 'node:fs';
import type { RunningServer } from './runner';

export interface Target {
  /** As given: '127.0.0.1:9000', '[::1]:9000'; its name in the tables. */
  name: string;
  /** Numeric IPv4 or IPv6 address (the load generator connects to addresses, not names). */
  host: string;
  port: number;
  /** --target-pid: the root of its process tree, measured as a model's; absent: not measured. */
  pid?: number;
}

/** The --target value: HOST:PORT[,HOST:PORT…], an IPv6 HOST in brackets. Throws naming the flag. */
export function parseTargets(text: string, flag: string): Target[] {
  const targets = text.split(',').map((item) => {
    const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(item.trim());
    const host = m ? (m[1] ?? m[2]) : '';
    const port = m ? Number(m[3]) : NaN;
    if (!m || isIP(host) === 0 || (m[1] !== undefined && isIP(host) !== 6) || port < 1 || port > 65535) {
      throw new Error(
        `${flag} takes HOST:PORT[,HOST:PORT…] with a numeric IPv4 address or an IPv6 one in brackets and a port 1..65535, got '${item}'`,
      );
    }
    return { name: item.trim(), host, port };
  });
  const names = targets.map((t) => t.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) throw new Error(`${flag} names ${twice} twice`);
  return targets;
}

/** The --target-pid value: one PID per target, in the same order. Throws naming the flag. */
export function withPids(targets: Target[], text: string, flag: string): Target[] {
  const pids = text.split(',').map((p) => {
    const n = Number(p);
    if (!/^\d+$/.test(p.trim()) || n < 1 || n > 2 ** 22) throw new Error(`${flag} takes process ids, got '${p}'`);
    if (!existsSync(`/proc/${n}`)) throw new Error(`${flag}: there is no process ${n}`);
    return n;
  });
  if (pids.length !== targets.length) {
    throw new Error(`${flag} takes one PID per --target (${targets.length}), got ${pids.length}`);
  }
  return targets.map((t, i) => ({ ...t, pid: pids[i] }));
}

/** A target as the benchmark drives a server: nothing to start, nothing to close. */
export function targetServer(target: Target): RunningServer {
  return {
    host: target.host,
    port: target.port,
    external: true,
    ...(target.pid !== undefined ? { pid: target.pid } : {}),
    close: () => Promise.resolve(),
  };
}
