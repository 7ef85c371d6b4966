// What check can see of the server's process when it is given its pid: /proc/<pid>. Whether the
// process still lives and still holds its listening socket; how it ended when it did (a zombie's
// exit status, in /proc/<pid>/stat until its parent reaps it); what it does with SIGPIPE
// (/proc/<pid>/status); its descriptors, threads and children; and whether it served clients with
// child processes or threads — so that a diagnosis names the lecture's fork or thread fix only
// when that is the design it saw.
import { readdirSync, readFileSync } from 'node:fs';
import { fdLinks, socketInode, tcpTable } from '../labs/kit';
import { childrenOf } from '../util/proc';

export interface Resources {
  fds: number;
  threads: number;
  /** Live children (zombies are not counted here). */
  children: number;
}

/** SIGPIPE's disposition in the process, as /proc/<pid>/status shows it before the checks. */
export type SigpipeAction = 'default' | 'ignored' | 'caught' | 'blocked';

/** A wait status (waitpid(2)), decoded. */
export interface WaitStatus {
  /** The signal that killed it, if one did. */
  signal?: number;
  core?: boolean;
  /** Its exit code, if it exited. */
  exitCode?: number;
}

/** How check found the server gone. */
export type ServerEnd =
  /** No pid: a connect() was refused after the server had answered: nothing listens any more. */
  | { kind: 'refused' }
  /** The process exited and its parent has not reaped it yet: its exit status is readable. */
  | { kind: 'zombie'; status: WaitStatus }
  /** The process exited and has been reaped (or its pid now names another process). */
  | { kind: 'gone' }
  /** The process lives, but no longer holds the listening socket. */
  | { kind: 'not-listening' };

const SIGPIPE = 13;

// The fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses):
// [0] is proc(5)'s field 3 (state), so field n is [n - 3].
function statFields(pid: number): string[] | null {
  try {
    const line = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return line.slice(line.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** The wait status field (52, exit_code; Linux ≥ 3.5), decoded. */
function decodeWaitStatus(raw: number): WaitStatus {
  const signal = raw & 0x7f;
  if (signal !== 0 && signal !== 0x7f) return { signal, core: (raw & 0x80) !== 0 };
  return { exitCode: (raw >> 8) & 0xff };
}

function sigpipeAction(pid: number): SigpipeAction {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const mask = (field: string) => BigInt(`0x${new RegExp(`^${field}:\\s*([0-9a-f]+)`, 'm').exec(status)?.[1] ?? '0'}`);
  const bit = 1n << BigInt(SIGPIPE - 1);
  if (mask('SigIgn') & bit) return 'ignored';
  if (mask('SigCgt') & bit) return 'caught';
  if (mask('SigBlk') & bit) return 'blocked';
  return 'default';
}

function resourcesOf(pid: number): Resources | null {
  try {
    return {
      fds: readdirSync(`/proc/${pid}/fd`).length,
      threads: readdirSync(`/proc/${pid}/task`).length,
      children: childrenOf(pid).filter((c) => c.state !== 'Z').length,
    };
  } catch {
    return null;
  }
}

/** The inodes of the sockets listening on `port` that `pid` holds. */
function listenersHeld(pid: number, port: number): Set<number> {
  const listening = new Set(
    tcpTable(port)
      .filter((e) => e.local.port === port && e.state === 'LISTEN')
      .map((e) => e.inode),
  );
  const held = new Set<number>();
  for (const link of fdLinks(pid)?.values() ?? []) {
    const inode = socketInode(link);
    if (inode !== null && listening.has(inode)) held.add(inode);
  }
  return held;
}

/** /proc/<pid> of the server, from before the first check to after the last. */
export class ServerWatch {
  readonly pid: number;
  /** Descriptors, threads and live children before the checks. */
  readonly baseline: Resources;
  readonly sigpipe: SigpipeAction;
  readonly #startTime: string;
  readonly #listeners: Set<number>;
  #mostChildren: number;
  #mostThreads: number;

  private constructor(pid: number, baseline: Resources, sigpipe: SigpipeAction, startTime: string, listeners: Set<number>) {
    this.pid = pid;
    this.baseline = baseline;
    this.sigpipe = sigpipe;
    this.#startTime = startTime;
    this.#listeners = listeners;
    this.#mostChildren = baseline.children;
    this.#mostThreads = baseline.threads;
  }

  /** Throws an Error naming what is wrong when `pid` is not a live process holding the listener of `port`. */
  static attach(pid: number, port: number): ServerWatch {
    const fields = statFields(pid);
    const baseline = resourcesOf(pid);
    if (fields === null || fields[0] === 'Z' || baseline === null) {
      throw new Error(`--pid ${pid}: no such process (or /proc/${pid} is not readable)`);
    }
    const listeners = listenersHeld(pid, port);
    if (listeners.size === 0) throw new Error(`--pid ${pid}: that process does not hold the listening socket of port ${port}`);
    return new ServerWatch(pid, baseline, sigpipeAction(pid), fields[19], listeners);
  }

  /** Its descriptors, threads and live children now; null once it is gone. */
  resources(): Resources | null {
    return this.end() === null ? resourcesOf(this.pid) : null;
  }

  /** null while it lives and listens; otherwise how it ended. */
  end(): ServerEnd | null {
    const fields = statFields(this.pid);
    // Field 22 (starttime) tells the server from a new process that was given its pid.
    if (fields === null || fields[19] !== this.#startTime || fields[0] === 'X') return { kind: 'gone' };
    if (fields[0] === 'Z') {
      const raw = Number(fields[49]);
      return { kind: 'zombie', status: Number.isInteger(raw) ? decodeWaitStatus(raw) : {} };
    }
    const links = fdLinks(this.pid);
    if (links !== null && ![...links.values()].some((l) => this.#listeners.has(socketInode(l) ?? -1))) {
      return { kind: 'not-listening' };
    }
    return null;
  }

  /** The pids of its children in state Z (exited, not reaped). */
  zombies(): number[] {
    return childrenOf(this.pid)
      .filter((c) => c.state === 'Z')
      .map((c) => c.pid);
  }

  /** Notes its children and threads now: called while clients are connected. */
  sample(): void {
    const r = resourcesOf(this.pid);
    if (r === null) return;
    this.#mostChildren = Math.max(this.#mostChildren, r.children);
    this.#mostThreads = Math.max(this.#mostThreads, r.threads);
  }

  /**
   * The design it showed: 'fork' if it had child processes (one per client, or a pool made at
   * start), 'threads' if it had more than one thread, 'single' if neither — one process, one
   * thread, serving every client itself. As sampled while clients were connected.
   */
  design(): { kind: 'fork' | 'threads' | 'single'; children: number; threads: number; childPerClient: boolean } {
    const children = this.#mostChildren;
    const threads = this.#mostThreads;
    const kind = children > 0 ? 'fork' : threads > 1 ? 'threads' : 'single';
    // More children with clients than before them: a child per client (a pool's are there from the start).
    return { kind, children, threads, childPerClient: children > this.baseline.children };
  }

  /** Its state letter in /proc/<pid>/stat (R, S, T: stopped, Z…), or null once gone. */
  state(): string | null {
    return statFields(this.pid)?.[0] ?? null;
  }
}

/** The accept queue of the socket listening on `port` (clients connected, not yet accepted); null if not local. */
export function acceptQueue(port: number, address: string): number | null {
  const rows = tcpTable(port).filter((e) => e.local.port === port && e.state === 'LISTEN');
  const row =
    rows.find((e) => e.local.address === address) ?? rows.find((e) => e.local.address === '0.0.0.0' || e.local.address === '::');
  return row ? row.rxQueue : null;
}
