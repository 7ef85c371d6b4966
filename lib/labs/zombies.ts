// Lab: reaping (lecture point 7, homework 1). A child that has exited stays a zombie (state Z in
// /proc) until its parent waits for it. Without a SIGCHLD handler nobody does.
import type { PosixServer, ServerStats } from '../server/server';
import { childrenOf } from '../util/proc';
import { defineLab, type LabContext } from './context';
import { eventually, exchange, portOf } from './kit';
import type { LabResult } from './types';

const N = 3;

export const zombiesLab = defineLab({
  name: 'zombies',
  summary: {
    en: `without reaping, ${N} finished children stay zombies (Z); with the SIGCHLD handler none do`,
    zh: `不回收时 ${N} 个结束的子进程都成为僵尸（Z）；有 SIGCHLD 处理函数时一个也没有`,
  },
  async run(lab) {
    const withoutReaping = await childrenStayZombiesWithoutReaping(lab);
    const leftAfterClose = await closeReapsThemAtLast(lab, withoutReaping.server);
    const withSigchld = await theSigchldHandlerReapsEachChild(lab);
    return verdict(lab, withoutReaping, leftAfterClose, withSigchld);
  },
});

/** A fork server after N clients came and left: its counters and its children's states in /proc. */
interface AfterN {
  server: PosixServer;
  stats: ServerStats;
  /** Children of the master in state Z. */
  procZombies: number;
}

function procStates(master: number): string {
  const kids = childrenOf(master);
  return kids.length === 0 ? '-' : kids.map((k) => `${k.pid} ${k.state}`).join(', ');
}

/** Prints what /proc and stats() say of the master's children. */
function afterTheClientsLeft(lab: LabContext, server: PosixServer): AfterN {
  const master = server.pid;
  const stats = server.stats();
  const procZombies = childrenOf(master).filter((k) => k.state === 'Z').length;
  lab.say(`   /proc: children of ${master}: ${procStates(master)}`, `   /proc：${master} 的子进程：${procStates(master)}`);
  lab.say(
    `   stats(): zombies ${stats.zombies}, reaped ${stats.reaped}, active ${stats.active}`,
    `   stats()：zombies ${stats.zombies}，reaped ${stats.reaped}，active ${stats.active}`,
  );
  return { server, stats, procZombies };
}

/** reap: 'none' — the lecture's server before homework 1: every finished child stays a zombie. */
async function childrenStayZombiesWithoutReaping(lab: LabContext): Promise<AfterN> {
  const noReap = await lab.server({ model: 'fork', reap: 'none' });
  lab.say(
    `1) Fork server with reap: 'none' (no SIGCHLD handler), master pid ${noReap.pid}. ${N} clients connect, echo, and leave.`,
    `1) 多进程服务器，reap: 'none'（没有 SIGCHLD 处理函数），master 进程 ${noReap.pid}。${N} 个客户端连接、回显、离开。`,
  );
  for (let i = 0; i < N; i++) await exchange(portOf(noReap), `z${i}\n`);
  await eventually(() => noReap.stats().zombies >= N, 2000);
  return afterTheClientsLeft(lab, noReap);
}

/** close() waits for the zombies: none is left. Returns how many children remain. */
async function closeReapsThemAtLast(lab: LabContext, noReap: PosixServer): Promise<number> {
  await noReap.close({ timeoutMs: 0 });
  const afterClose = childrenOf(noReap.pid).length;
  lab.say(
    `   close() waited for them: ${noReap.stats().reaped} reaped, ${afterClose} left.`,
    `   close() 时才回收它们：回收 ${noReap.stats().reaped} 个，剩余 ${afterClose} 个。`,
  );
  return afterClose;
}

/** The default: waitpid(-1, WNOHANG) in a SIGCHLD handler reaps each child as it exits. */
async function theSigchldHandlerReapsEachChild(lab: LabContext): Promise<AfterN> {
  const reaping = await lab.server({ model: 'fork' });
  lab.say(
    `2) Fork server with the default reaping (SIGCHLD handler → waitpid(-1, WNOHANG)), master pid ${reaping.pid}. The same ${N} clients.`,
    `2) 默认回收方式（SIGCHLD 处理函数 → waitpid(-1, WNOHANG)）的多进程服务器，master 进程 ${reaping.pid}。同样 ${N} 个客户端。`,
  );
  for (let i = 0; i < N; i++) await exchange(portOf(reaping), `r${i}\n`);
  await eventually(() => reaping.stats().reaped >= N, 2000);
  return afterTheClientsLeft(lab, reaping);
}

function verdict(lab: LabContext, without: AfterN, afterClose: number, withSigchld: AfterN): LabResult {
  const { stats: s1, procZombies: procZ1 } = without;
  const { stats: s2, procZombies: procZ2 } = withSigchld;
  const measured = {
    zombiesWithoutReaping: s1.zombies,
    procZombiesWithoutReaping: procZ1,
    reapedWithoutReaping: s1.reaped,
    leftAfterClose: afterClose,
    zombiesWithSigchld: s2.zombies,
    procZombiesWithSigchld: procZ2,
    reapedWithSigchld: s2.reaped,
  };
  lab.say('Measured:', '测量结果：');
  lab.say(
    `  without reaping: ${s1.zombies} zombies (/proc shows ${procZ1} in state Z); with SIGCHLD reaping: ${s2.zombies} zombies, ${s2.reaped} reaped.`,
    `  不回收：${s1.zombies} 个僵尸进程（/proc 显示 ${procZ1} 个处于 Z 状态）；用 SIGCHLD 回收：${s2.zombies} 个僵尸进程，回收 ${s2.reaped} 个。`,
  );
  lab.say(
    'Lesson: a child that exits keeps its process-table entry (its exit status) until the parent calls wait/waitpid. The parent must reap: in a SIGCHLD handler, looping waitpid(-1, &status, WNOHANG), because several exits may arrive as one signal (point 7, homework 1).',
    '结论：子进程退出后仍占着进程表项（保存退出状态），直到父进程调用 wait/waitpid。父进程必须回收：在 SIGCHLD 处理函数中循环调用 waitpid(-1, &status, WNOHANG)，因为多个子进程退出可能只产生一个信号（第 7 点，作业 1）。',
  );
  const ok =
    s1.zombies === N &&
    procZ1 === N &&
    s1.reaped === 0 &&
    afterClose === 0 &&
    s2.zombies === 0 &&
    procZ2 === 0 &&
    s2.reaped === N;
  return { ok, measured };
}
