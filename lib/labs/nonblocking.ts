// Lab: the flawed fix (lecture point 4). Making cfd non-blocking with fcntl lets one loop poll
// accept() and read() — but the loop never sleeps, so it burns a CPU core while nobody talks, and
// its one variable cfd keeps only the last client: the first is never read again. The blocking
// iterative server sleeps in accept() (≈ 0 CPU); the fork server serves both clients.
import { programBinary, startProgram, type ListeningProgram } from '../bench/reference';
import { native } from '../addon';
import type { PosixServer } from '../server/server';
import { sayer } from '../util/i18n';
import { cpuUse, tasksOf } from '../util/proc';
import { closeAll, destroyAll, fdLinks, Client, now, portOf, sleep, socketInode, startServer, tcpTable, waitFor } from './kit';
import type { Lab } from './types';

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

export const nonblockingLab: Lab = {
  name: 'nonblocking',
  summary: {
    en: 'fix 1, cfd made non-blocking with fcntl: the loop spins a CPU core while idle, and a second client takes the variable cfd from the first',
    zh: '解决办法 1，用 fcntl 把 cfd 设为非阻塞：空闲时循环占满一个 CPU 核，第二个客户端把变量 cfd 从第一个手里夺走',
  },
  async run(out, lang) {
    const say = sayer(out, lang);
    let spin: ListeningProgram | undefined;
    let iterative: PosixServer | undefined;
    let fork: PosixServer | undefined;
    const clients: Client[] = [];
    try {
      // ---- 1. the non-blocking poll loop (native/labs/nonblocking.c) ----
      spin = await startProgram('lab server nonblocking', programBinary('labs', 'nonblocking'), []);
      say(
        `1) The lecture's fix 1 (native/labs/nonblocking.c), pid ${spin.pid}, port ${spin.port}: fcntl(fd, F_SETFL, O_NONBLOCK) on lfd and cfd, then while (1) { fd = accept(lfd); if (fd >= 0) cfd = fd; n = read(cfd, …); if (n > 0) write(cfd, …); } — accept and read fail with EAGAIN and the loop goes round again at once.`,
        `1) 讲义的解决办法 1（native/labs/nonblocking.c），进程 ${spin.pid}，端口 ${spin.port}：用 fcntl(fd, F_SETFL, O_NONBLOCK) 把 lfd 和 cfd 设为非阻塞，然后 while (1) { fd = accept(lfd); if (fd >= 0) cfd = fd; n = read(cfd, …); if (n > 0) write(cfd, …); } —— accept 和 read 返回 EAGAIN，循环立刻再转一圈。`,
      );
      const spinIdle = await idleUse(spin.pid);
      say(
        `   Nobody connected for ${spinIdle.windowMs} ms: /proc/${spin.pid}/stat says it used ${spinIdle.cpuMs} ms of CPU (utime+stime); /proc/${spin.pid}/schedstat: runnable ${spinIdle.runnablePct}% of the time — it never sleeps.`,
        `   ${spinIdle.windowMs} ms 内没有任何客户端：/proc/${spin.pid}/stat 显示它用了 ${spinIdle.cpuMs} ms CPU（utime+stime）；/proc/${spin.pid}/schedstat：${spinIdle.runnablePct}% 的时间处于可运行状态 —— 它从不睡眠。`,
      );

      const a = await Client.open(spin.port);
      clients.push(a);
      const firstBefore = await a.echoes('A: hello\n');
      const b = await Client.open(spin.port);
      clients.push(b);
      // B is taken by accept() within a turn of the loop: its socket shows up in the server's fds.
      await waitFor(() => clientSockets(spin!.pid, spin!.port) >= 2, 2000, 'the server to accept the second client');
      a.sock.write('A: still there?\n');
      const firstAfter = !(await a.silentFor(SILENCE_MS));
      const secondServed = await b.echoes('B: hello\n');
      const held = clientSockets(spin.pid, spin.port);
      say(
        `   Client A connected and was echoed: ${firstBefore ? 'yes' : 'no'}. Client B connected: cfd now holds B's descriptor. A sent again: ${firstAfter ? 'echoed' : `no echo within ${SILENCE_MS} ms`}; B: ${secondServed ? 'echoed' : 'no echo'}. /proc/${spin.pid}/fd still holds ${held} client sockets: A's is open but nobody will ever read it.`,
        `   客户端 A 连接并收到回显：${firstBefore ? '是' : '否'}。客户端 B 连接：cfd 现在保存的是 B 的描述符。A 再次发送：${firstAfter ? '收到回显' : `${SILENCE_MS} ms 内没有回显`}；B：${secondServed ? '收到回显' : '没有回显'}。/proc/${spin.pid}/fd 里仍有 ${held} 个客户端套接字：A 的还开着，但再也没人读它。`,
      );
      destroyAll(clients.splice(0));
      await spin.close();

      // ---- 2. the blocking iterative server ----
      const before = new Set(tasksOf('self').map((x) => x.tid));
      iterative = await startServer({ model: 'iterative' });
      const serverThread = tasksOf('self').find((x) => !before.has(x.tid) && x.name === native.constants.threadNames.server);
      if (!serverThread) throw new Error(`no new ${native.constants.threadNames.server} thread in /proc/self/task`);
      const iterIdle = await idleUse('self', serverThread.tid);
      say(
        `2) The blocking iterative server (model 'iterative', thread ${serverThread.tid} of Node's process ${process.pid}), idle for ${iterIdle.windowMs} ms: ${iterIdle.cpuMs} ms of CPU, runnable ${iterIdle.runnablePct}% — it sleeps in accept() until the kernel has a client for it.`,
        `2) 阻塞的迭代服务器（模型 'iterative'，Node 进程 ${process.pid} 的线程 ${serverThread.tid}），空闲 ${iterIdle.windowMs} ms：CPU ${iterIdle.cpuMs} ms，可运行 ${iterIdle.runnablePct}% —— 它在 accept() 里睡眠，直到内核交给它一个客户端。`,
      );
      await closeAll([iterative]);

      // ---- 3. the fork server ----
      fork = await startServer({ model: 'fork' });
      const forkIdle = await idleUse(fork.pid);
      const fa = await Client.open(portOf(fork));
      clients.push(fa);
      const forkFirst = await fa.echoes('A: hello\n');
      const fb = await Client.open(portOf(fork));
      clients.push(fb);
      const forkSecond = await fb.echoes('B: hello\n');
      const forkFirstAgain = await fa.echoes('A: still there?\n');
      say(
        `3) The fork server (master pid ${fork.pid}): idle for ${forkIdle.windowMs} ms it used ${forkIdle.cpuMs} ms of CPU. A: ${forkFirst ? 'echoed' : 'no echo'}; B: ${forkSecond ? 'echoed' : 'no echo'}; A again after B came: ${forkFirstAgain ? 'echoed' : 'no echo'} — each client has a process, and each process its own cfd.`,
        `3) 多进程服务器（master 进程 ${fork.pid}）：空闲 ${forkIdle.windowMs} ms，CPU ${forkIdle.cpuMs} ms。A：${forkFirst ? '收到回显' : '没有回显'}；B：${forkSecond ? '收到回显' : '没有回显'}；B 来了之后 A 再发送：${forkFirstAgain ? '收到回显' : '没有回显'} —— 每个客户端一个进程，每个进程有自己的 cfd。`,
      );

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
        forkBothServed: forkFirst && forkSecond && forkFirstAgain,
      };
      say('Measured:', '测量结果：');
      say(
        `  idle CPU in ${spinIdle.windowMs} ms: non-blocking loop ${spinIdle.cpuMs} ms (runnable ${spinIdle.runnablePct}%), blocking iterative ${iterIdle.cpuMs} ms (runnable ${iterIdle.runnablePct}%), fork master ${forkIdle.cpuMs} ms. Non-blocking with two clients: first served ${firstAfter ? 'yes' : 'no'}, second served ${secondServed ? 'yes' : 'no'}; fork: both served ${measured.forkBothServed ? 'yes' : 'no'}.`,
        `  空闲 ${spinIdle.windowMs} ms 的 CPU：非阻塞循环 ${spinIdle.cpuMs} ms（可运行 ${spinIdle.runnablePct}%），阻塞的迭代服务器 ${iterIdle.cpuMs} ms（可运行 ${iterIdle.runnablePct}%），fork 的 master ${forkIdle.cpuMs} ms。非阻塞服务器有两个客户端时：第一个得到服务 ${firstAfter ? '是' : '否'}，第二个得到服务 ${secondServed ? '是' : '否'}；fork：两个都得到服务 ${measured.forkBothServed ? '是' : '否'}。`,
      );
      say(
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
    } finally {
      destroyAll(clients);
      await spin?.close();
      await closeAll([iterative, fork]);
    }
  },
};
