// Reading /proc: what the kernel says about processes, not what the server believes.
import { readdirSync, readFileSync } from 'node:fs';

interface ProcStat {
  pid: number;
  /** R, S, D, Z (zombie), T, … */
  state: string;
  ppid: number;
  pgrp: number;
  /** The session's id: the pid of the process that made it with setsid(). */
  session: number;
}

// utime and stime (and the timers of /proc/net/tcp) are in clock ticks of USER_HZ, which Linux
// fixes at 100 for user space on every architecture Node runs on (sysconf(_SC_CLK_TCK); only alpha
// differs); /proc/<pid>/schedstat is in nanoseconds.
export const USER_HZ = 100;

/**
 * The fields of a /proc/…/stat line after the command name: [0] is proc(5)'s field 3 (state).
 * The name may contain spaces and parentheses, so the split starts after the last ')'.
 */
function statFields(text: string): string[] {
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

export function readStat(pid: number): ProcStat | null {
  try {
    const rest = statFields(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    return { pid, state: rest[0], ppid: Number(rest[1]), pgrp: Number(rest[2]), session: Number(rest[3]) };
  } catch {
    return null;
  }
}

/** Processes whose parent is `ppid`, zombies included. */
export function childrenOf(ppid: number): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (st && st.ppid === ppid) out.push(st);
  }
  return out;
}

/**
 * `root` and every process below it (children, their children…), from one scan of /proc — not
 * one scan per process of the tree, which a 50-process fork server would make 50 times slower.
 */
export function descendantsOf(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (st === null) continue;
    const siblings = children.get(st.ppid);
    if (siblings) siblings.push(st.pid);
    else children.set(st.ppid, [st.pid]);
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]) ?? []));
  return out;
}

/** Children of `ppid` that have exited and not been waited for (state Z). */
export function zombiesOf(ppid: number): ProcStat[] {
  return childrenOf(ppid).filter((s) => s.state === 'Z');
}

/**
 * Each thread of `pid` → how many times the scheduler moved it to another CPU (`se.nr_migrations`
 * in /proc/<pid>/task/<tid>/sched; 0 for a new thread or process). Empty when the process is gone
 * or the kernel has no /proc/…/sched (CONFIG_SCHED_DEBUG).
 */
export function migrationsOf(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const m = /^se\.nr_migrations\s*:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/task/${tid}/sched`, 'utf8'));
      if (m) out.set(Number(tid), Number(m[1]));
    } catch {
      // the thread ended between readdir and read
    }
  }
  return out;
}

/** One thread of a process, from /proc/<pid>/task/<tid>. */
interface TaskInfo {
  tid: number;
  /** The thread's name (comm): 'node', 'ps-server', 'ps-worker', … */
  name: string;
  state: string;
}

/** The threads of `pid` (Node's own 'self' works too), or [] when the process is gone. */
export function tasksOf(pid: number | 'self'): TaskInfo[] {
  let names: string[];
  try {
    names = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: TaskInfo[] = [];
  for (const name of names) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${name}/stat`, 'utf8');
      const open = text.indexOf('(');
      out.push({ tid: Number(name), name: text.slice(open + 1, text.lastIndexOf(')')), state: statFields(text)[0] });
    } catch {
      // the thread ended between readdir and read
    }
  }
  return out;
}

/** What the scheduler says one process (or one of its threads) has used so far. */
interface CpuUse {
  /** utime + stime from /proc/<pid>/stat, in ms (10 ms resolution). */
  cpuMs: number;
  /** From /proc/<pid>/schedstat, in ms: time on a CPU, and time runnable but waiting for one. */
  runningMs: number;
  waitingMs: number;
}

/** CPU use of `pid`, or of its thread `tid`; null when it is gone. */
export function cpuUse(pid: number | 'self', tid?: number): CpuUse | null {
  const dir = tid === undefined ? `/proc/${pid}` : `/proc/${pid}/task/${tid}`;
  try {
    const rest = statFields(readFileSync(`${dir}/stat`, 'utf8'));
    // Fields 14 and 15 of stat(5).
    const ticks = Number(rest[11]) + Number(rest[12]);
    const [run, wait] = readFileSync(`${dir}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    return { cpuMs: (ticks * 1000) / USER_HZ, runningMs: run / 1e6, waitingMs: wait / 1e6 };
  } catch {
    return null;
  }
}

/** The system's page size in bytes (the auxiliary vector's AT_PAGESZ), 4096 if it cannot be read. */
export function pageSize(): number {
  const AT_PAGESZ = 6n;
  try {
    const auxv = readFileSync('/proc/self/auxv');
    const word = process.arch.endsWith('64') ? 8 : 4;
    for (let at = 0; at + 2 * word <= auxv.length; at += 2 * word) {
      const type = word === 8 ? auxv.readBigUInt64LE(at) : BigInt(auxv.readUInt32LE(at));
      if (type === AT_PAGESZ) return Number(word === 8 ? auxv.readBigUInt64LE(at + word) : auxv.readUInt32LE(at + word));
    }
  } catch {
    // no /proc
  }
  return 4096;
}

/** This process's soft RLIMIT_STACK in bytes (Infinity when unlimited), from /proc/self/limits; 8 MiB if unreadable. */
export function stackLimit(): number {
  try {
    const m = /^Max stack size\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m) return m[1] === 'unlimited' ? Infinity : Number(m[1]);
  } catch {
    // no /proc
  }
  return 8 * 1024 * 1024;
}
