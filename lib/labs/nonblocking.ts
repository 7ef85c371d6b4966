// Lab: the flawed fix (lecture point 4). Making cfd non-blocking with fcntl lets one loop poll
// accept() and read() — but the loop never sleeps, so it burns a CPU core while nobody talks, and
// its one variable cfd keeps only the last client: the first is never read again. The blocking
// iterative server sleeps in accept() (≈ 0 CPU); the fork server serves both clients.
import type { ListeningProgram } from '../bench/reference';
import { native } from '../addon';
import { cpuUse, tasksOf } from '../util/proc';
import { defineLab, type LabContext } from './context';
import { fdLinks, now, portOf, sleep, socketInode, tcpTable, waitFor } from './kit';
import type { LabResult } from './types';

const WINDOW_MS = 500;
const SILENCE_MS = 400;

interface Idle {
  cpuMs: number;
  /** Share of the window it was running or waiting to run (never asleep), in %. */
  runnablePct: number;
  windowMs: number;
}

/** CPU used by `pid` (or its thread `tid`) while nobody connects, over WINDOW_MS. */
async function idleUse(pid: number | 'self', tid?: number): Promise<Idle> {
  const a = cpuUse(pid, tid);
  const t0 = now();
  await sleep(WINDOW_MS);
  const b = cpuUse(pid, tid);
  const windowMs = now() - t0;
  if (!a || !b) throw new Error(`process ${pid}${tid ? ` thread ${tid}` : ''} vanished while measured`);
  const runnable = b.runningMs + b.waitingMs - (a.runningMs + a.waitingMs);
  return { cpuMs: b.cpuMs - a.cpuMs, runnablePct: Math.round((100 * runnable) / windowMs), windowMs: Math.round(windowMs) };
}

/** TCP connections to `port` that `pid` holds open (not the listener), from /proc/<pid>/fd and /proc/net/tcp. */
function clientSockets(pid: number, port: number): number {
  const connections = new Set(
    tcpTable()
      .filter((e) => e.local.port === port && e.state !== 'LISTEN')
      .map((e) => e.inode),
  );
  return [...(fdLinks(pid)?.values() ?? [])].filter((l) => {
    const inode = socketInode(l);
    return inode !== null && connections.has(inode);
  }).length;
}

export const nonblockingLab = defineLab({
  name: 'nonblocking',
  summary: {
    en: 'fix 1, cfd made non-blocking with fcntl: the loop spins a CPU core while idle, and a second client takes the variable cfd from the first',
    zh: '解决办法 1，用 fcntl 把 cfd 设为非阻塞：空闲时循环占满一个 CPU 核，第二个客户端把变量 cfd 从第一个手里夺走',
  },
  async run(lab) {
    const spin = await startThePollLoop(lab);
    const spinIdle = await itSpinsWhileNobodyTalks(lab, spin);
    const cfd = await aSecondClientTakesCfd(lab, spin);
    await lab.closeAll();
    const iterIdle = await theBlockingServerSleepsInAccept(lab);
    await lab.closeAll();
    const fork = await theForkServerServesBoth(lab);
    return verdict(lab, spinIdle, cfd, iterIdle, fork);
  },
});

/** The non-blocking loop with two clients: who is still served once B has come. */
interface TwoClients {
  firstBefore: boolean;
  firstAfter: boolean;
  secondServed: boolean;
  /** Client sockets the loop's process holds open. */
  held: number;
}

interface ForkServes {
  forkIdle: Idle;
  forkFirst: boolean;
  forkSecond: boolean;
  forkFirstAgain: boolean;
}

/** The lecture's fix 1 (native/labs/nonblocking.c): lfd and cfd O_NONBLOCK, one loop polling both. */
async function startThePollLoop(lab: LabContext): Promise<ListeningProgram> {
  const spin = await lab.program('nonblocking');
  lab.say(
    `1) The lecture's fix 1 (native/labs/nonblocking.c), pid ${spin.pid}, port ${spin.port}: fcntl(fd, F_SETFL, O_NONBLOCK) on lfd and cfd, then while (1) { fd = accept(lfd); if (fd >= 0) cfd = fd; n = read(cfd, …); if (n > 0) write(cfd, …); } — accept and read fail with EAGAIN and the loop goes round again at once.`,
    `1) 讲义的解决办法 1（native/labs/nonblocking.c），进程 ${spin.pid}，端口 ${spin.port}：用 fcntl(fd, F_SETFL, O_NONBLOCK) 把 lfd 和 cfd 设为非阻塞，然后 while (1) { fd = accept(lfd); if (fd >= 0) cfd = fd; n = read(cfd, …); if (n > 0) write(cfd, …); } —— accept 和 read 返回 EAGAIN，循环立刻再转一圈。`,
  );
  return spin;
}

/** Nobody connected: /proc says the loop burns CPU and is runnable all the time. */
async function itSpinsWhileNobodyTalks(lab: LabContext, spin: ListeningProgram): Promise<Idle> {
  const spinIdle = await idleUse(spin.pid);
  lab.say(
    `   Nobody connected for ${spinIdle.windowMs} ms: /proc/${spin.pid}/stat says it used ${spinIdle.cpuMs} ms of CPU (utime+stime); /proc/${spin.pid}/schedstat: runnable ${spinIdle.runnablePct}% of the time — it never sleeps.`,
    `   ${spinIdle.windowMs} ms 内没有任何客户端：/proc/${spin.pid}/stat 显示它用了 ${spinIdle.cpuMs} ms CPU（utime+stime）；/proc/${spin.pid}/schedstat：${spinIdle.runnablePct}% 的时间处于可运行状态 —— 它从不睡眠。`,
  );
  return spinIdle;
}

/** A is echoed; B's accept() overwrites cfd: A is never read again, though its socket stays open. */
async function aSecondClientTakesCfd(lab: LabContext, spin: ListeningProgram): Promise<TwoClients> {
  const a = await lab.client(spin.port);
  const firstBefore = await a.echoes('A: hello\n');
  const b = await lab.client(spin.port);
  // B is taken by accept() within a turn of the loop: its socket shows up in the server's fds.
  await waitFor(() => clientSockets(spin.pid, spin.port) >= 2, 5000, 'the server to accept the second client');
  a.sock.write('A: still there?\n');
  const firstAfter = !(await a.silentFor(SILENCE_MS));
  const secondServed = await b.echoes('B: hello\n');
  const held = clientSockets(spin.pid, spin.port);
  lab.say(
    `   Client A connected and was echoed: ${firstBefore ? 'yes' : 'no'}. Client B connected: cfd now holds B's descriptor. A sent again: ${firstAfter ? 'echoed' : `no echo within ${SILENCE_MS} ms`}; B: ${secondServed ? 'echoed' : 'no echo'}. /proc/${spin.pid}/fd still holds ${held} client sockets: A's is open but nobody will ever read it.`,
    `   客户端 A 连接并收到回显：${firstBefore ? '是' : '否'}。客户端 B 连接：cfd 现在保存的是 B 的描述符。A 再次发送：${firstAfter ? '收到回显' : `${SILENCE_MS} ms 内没有回显`}；B：${secondServed ? '收到回显' : '没有回显'}。/proc/${spin.pid}/fd 里仍有 ${held} 个客户端套接字：A 的还开着，但再也没人读它。`,
  );
  return { firstBefore, firstAfter, secondServed, held };
}

/** The blocking iterative server, idle: its thread sleeps in accept() (≈ 0 CPU). */
async function theBlockingServerSleepsInAccept(lab: LabContext): Promise<Idle> {
  const before = new Set(tasksOf('self').map((x) => x.tid));
  await lab.server({ model: 'iterative' });
  const serverThread = tasksOf('self').find((x) => !before.has(x.tid) && x.name === native.constants.threadNames.server);
  if (!serverThread) throw new Error(`no new ${native.constants.threadNames.server} thread in /proc/self/task`);
  const iterIdle = await idleUse('self', serverThread.tid);
  lab.say(
    `2) The blocking iterative server (model 'iterative', thread ${serverThread.tid} of Node's process ${process.pid}), idle for ${iterIdle.windowMs} ms: ${iterIdle.cpuMs} ms of CPU, runnable ${iterIdle.runnablePct}% — it sleeps in accept() until the kernel has a client for it.`,
    `2) 阻塞的迭代服务器（模型 'iterative'，Node 进程 ${process.pid} 的线程 ${serverThread.tid}），空闲 ${iterIdle.windowMs} ms：CPU ${iterIdle.cpuMs} ms，可运行 ${iterIdle.runnablePct}% —— 它在 accept() 里睡眠，直到内核交给它一个客户端。`,
  );
  return iterIdle;
}

/** The fork server: its master sleeps while idle, and each client has a process with its own cfd. */
async function theForkServerServesBoth(lab: LabContext): Promise<ForkServes> {
  const fork = await lab.server({ model: 'fork' });
  const forkIdle = await idleUse(fork.pid);
  const fa = await lab.client(portOf(fork));
  const forkFirst = await fa.echoes('A: hello\n');
  const fb = await lab.client(portOf(fork));
  const forkSecond = await fb.echoes('B: hello\n');
  const forkFirstAgain = await fa.echoes('A: still there?\n');
  lab.say(
    `3) The fork server (master pid ${fork.pid}): idle for ${forkIdle.windowMs} ms it used ${forkIdle.cpuMs} ms of CPU. A: ${forkFirst ? 'echoed' : 'no echo'}; B: ${forkSecond ? 'echoed' : 'no echo'}; A again after B came: ${forkFirstAgain ? 'echoed' : 'no echo'} — each client has a process, and each process its own cfd.`,
    `3) 多进程服务器（master 进程 ${fork.pid}）：空闲 ${forkIdle.windowMs} ms，CPU ${forkIdle.cpuMs} ms。A：${forkFirst ? '收到回显' : '没有回显'}；B：${forkSecond ? '收到回显' : '没有回显'}；B 来了之后 A 再发送：${forkFirstAgain ? '收到回显' : '没有回显'} —— 每个客户端一个进程，每个进程有自己的 cfd。`,
  );
  return { forkIdle, forkFirst, forkSecond, forkFirstAgain };
}

function verdict(lab: LabContext, spinIdle: Idle, cfd: TwoClients, iterIdle: Idle, fork: ForkServes): LabResult {
  const { firstBefore, firstAfter, secondServed, held } = cfd;
  const { forkIdle } = fork;
  const measured = {
    windowMs: spinIdle.windowMs,
    nonblockingIdleCpuMs: spinIdle.cpuMs,
    nonblockingIdleRunnablePct: spinIdle.runnablePct,
    iterativeIdleCpuMs: iterIdle.cpuMs,
    iterativeIdleRunnablePct: iterIdle.runnablePct,
    forkMasterIdleCpuMs: forkIdle.cpuMs,
    firstServedBeforeSecond: firstBefore,
    firstServedAfterSecond: firstAfter,
    secondServed,
    clientSocketsHeld: held,
    forkBothServed: fork.forkFirst && fork.forkSecond && fork.forkFirstAgain,
  };
  lab.say('Measured:', '测量结果：');
  lab.say(
    `  idle CPU in ${spinIdle.windowMs} ms: non-blocking loop ${spinIdle.cpuMs} ms (runnable ${spinIdle.runnablePct}%), blocking iterative ${iterIdle.cpuMs} ms (runnable ${iterIdle.runnablePct}%), fork master ${forkIdle.cpuMs} ms. Non-blocking with two clients: first served ${firstAfter ? 'yes' : 'no'}, second served ${secondServed ? 'yes' : 'no'}; fork: both served ${measured.forkBothServed ? 'yes' : 'no'}.`,
    `  空闲 ${spinIdle.windowMs} ms 的 CPU：非阻塞循环 ${spinIdle.cpuMs} ms（可运行 ${spinIdle.runnablePct}%），阻塞的迭代服务器 ${iterIdle.cpuMs} ms（可运行 ${iterIdle.runnablePct}%），fork 的 master ${forkIdle.cpuMs} ms。非阻塞服务器有两个客户端时：第一个得到服务 ${firstAfter ? '是' : '否'}，第二个得到服务 ${secondServed ? '是' : '否'}；fork：两个都得到服务 ${measured.forkBothServed ? '是' : '否'}。`,
  );
  lab.say(
    'Lesson: O_NONBLOCK only turns "wait" into "try again": a loop that polls without ever blocking spins a whole core while idle, and one variable cfd can hold one client only — the next accept() overwrites it and the first client is lost (its descriptor even stays open). Blocking calls cost nothing while they wait; serving several clients needs a process or thread per client (points 5, 9), or a call that waits for many descriptors at once (select/epoll).',
    '结论：O_NONBLOCK 只是把“等待”变成“再试一次”：从不阻塞的轮询循环在空闲时也占满一个核；一个 cfd 变量只能保存一个客户端 —— 下一次 accept() 把它覆盖，第一个客户端就丢了（它的描述符甚至一直开着）。阻塞调用在等待时不耗 CPU；要同时服务多个客户端，需要每个客户端一个进程或线程（第 5、9 点），或者一次等待多个描述符的调用（select/epoll）。',
  );
  // Runnable nearly all the window (it never sleeps, whatever share of a core a busy machine
  // gives it), and burning CPU; the blocking servers asleep: at most a tick of CPU.
  const tick = 10;
  const ok =
    spinIdle.runnablePct >= 90 &&
    spinIdle.cpuMs >= spinIdle.windowMs / 10 &&
    iterIdle.cpuMs <= tick &&
    iterIdle.runnablePct <= 2 &&
    forkIdle.cpuMs <= tick &&
    firstBefore &&
    !firstAfter &&
    secondServed &&
    held === 2 &&
    measured.forkBothServed;
  return { ok, measured };
}
