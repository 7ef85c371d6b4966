// The labs' children waiting on one shared listener (native/labs/herd.c, lab-herd): started in one
// of its arrangements, driven one connection at a time, and counted — wake-ups from each child's
// context switches in /proc, accepts and EAGAINs from the children's own counters.
import type { ListeningProgram } from '../bench/reference';
import type { LabContext } from './context';
import { allAsleep, voluntarySwitches } from './kit';

/** How lab-herd's children wait (its --wait): see native/labs/herd.c. */
export type WaitKind = 'accept' | 'epoll' | 'exclusive' | 'mutex' | 'lock';

const LINE_TIMEOUT_MS = 3000;
const SETTLE_TIMEOUT_MS = 3000;

/** What one child did over a run of connections. */
export interface ChildCount {
  index: number;
  pid: number;
  /** Times it was woken (voluntary context switches, after minus before). */
  wakeups: number;
  accepted: number;
  /** accept() calls that failed with EAGAIN: woken, but another child had taken the connection. */
  eagain: number;
  /** Returns from the call it waits in (epoll_wait, or accept) into the program. */
  returns: number;
}

export interface WaitersRun {
  kind: WaitKind;
  connections: number;
  children: ChildCount[];
  /** All the children's wake-ups over all the connections, divided by the connections. */
  wakeupsPerConnection: number;
  accepted: number;
  eagain: number;
}

/** lab-herd with `workers` children waiting as `kind`, once every child is asleep in its wait. */
export class Waiters {
  private constructor(
    readonly program: ListeningProgram,
    readonly kind: WaitKind,
    /** The children's pids, by index. */
    readonly pids: number[],
  ) {}

  static async start(lab: LabContext, kind: WaitKind, workers: number): Promise<Waiters> {
    const program = await lab.program('herd', ['--wait', kind, '--workers', String(workers)]);
    const pids: number[] = [];
    for (let i = 0; i < workers; i++) {
      const line = await program.waitForLine(new RegExp(`^worker ${i} \\d+$`), LINE_TIMEOUT_MS);
      pids.push(Number(line.split(' ')[2]));
    }
    const waiters = new Waiters(program, kind, pids);
    await waiters.settle();
    return waiters;
  }

  get port(): number {
    return this.program.port;
  }

  /** Until every child is back asleep: whoever a connection woke has run and gone back to wait. */
  settle(): Promise<void> {
    return allAsleep(this.pids, SETTLE_TIMEOUT_MS, `the ${this.kind} children of lab-herd to sleep`);
  }

  /**
   * `connections` connections, one at a time: each is accepted and closed by a child (the client
   * sees the close), then every child is let go back to sleep before the next — so each wake-up is
   * counted, also on a loaded machine where a woken child runs late.
   */
  async connectOneAtATime(lab: LabContext, connections: number): Promise<WaitersRun> {
    const before = this.pids.map((p) => this.switches(p));
    const countsBefore = await this.counts();
    for (let i = 0; i < connections; i++) {
      const client = await lab.client(this.port);
      await client.closedByPeer(LINE_TIMEOUT_MS);
      client.destroy();
      await this.settle();
    }
    const after = this.pids.map((p) => this.switches(p));
    const countsAfter = await this.counts();
    const children = this.pids.map((pid, i) => ({
      index: i,
      pid,
      wakeups: after[i] - before[i],
      accepted: countsAfter[i].accepted - countsBefore[i].accepted,
      eagain: countsAfter[i].eagain - countsBefore[i].eagain,
      returns: countsAfter[i].returns - countsBefore[i].returns,
    }));
    const sum = (f: (c: ChildCount) => number) => children.reduce((a, c) => a + f(c), 0);
    return {
      kind: this.kind,
      connections,
      children,
      wakeupsPerConnection: Math.round((100 * sum((c) => c.wakeups)) / connections) / 100,
      accepted: sum((c) => c.accepted),
      eagain: sum((c) => c.eagain),
    };
  }

  private switches(pid: number): number {
    const n = voluntarySwitches(pid);
    if (n === null) throw new Error(`lab-herd child ${pid} is gone`);
    return n;
  }

  /** The children's counters: SIGUSR1, then the parent's `count …` lines up to `counted`. */
  async counts(): Promise<Array<{ accepted: number; eagain: number; returns: number }>> {
    const from = this.program.lines.length;
    process.kill(this.program.pid, 'SIGUSR1');
    await this.program.waitForLine(/^counted$/, LINE_TIMEOUT_MS, from);
    const out = this.pids.map(() => ({ accepted: 0, eagain: 0, returns: 0 }));
    for (const line of this.program.lines.slice(from)) {
      const m = /^count (\d+) (\d+) (\d+) (\d+) (\d+)$/.exec(line);
      if (!m) continue;
      out[Number(m[1])] = { accepted: Number(m[3]), eagain: Number(m[4]), returns: Number(m[5]) };
    }
    return out;
  }
}
