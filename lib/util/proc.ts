// Reading /proc: what the kernel says about processes, not what the server believes.
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcStat {
  pid: number;
  /** R, S, D, Z (zombie), T, … */
  state: string;
  ppid: number;
  pgrp: number;
}

export function readStat(pid: number): ProcStat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: split after the last ')'.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { pid, state: rest[0], ppid: Number(rest[1]), pgrp: Number(rest[2]) };
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
