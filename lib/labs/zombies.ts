// Lab: reaping (lecture point 7, homework 1). A child that has exited stays a zombie (state Z in
// /proc) until its parent waits for it. Without a SIGCHLD handler nobody does.
import { childrenOf } from '../util/proc';
import type { PosixServer } from '../server/server';
import { sayer } from '../util/i18n';
import { closeAll, eventually, exchange, portOf, startServer } from './kit';
import type { Lab } from './types';

const N = 3;

function procStates(master: number): string {
  const kids = childrenOf(master);
  return kids.length === 0 ? '-' : kids.map((k) => `${k.pid} ${k.state}`).join(', ');
}

export const zombiesLab: Lab = {
  name: 'zombies',
  summary: {
    en: `without reaping, ${N} finished children stay zombies (Z); with the SIGCHLD handler none do`,
    zh: `不回收时 ${N} 个结束的子进程都成为僵尸（Z）；有 SIGCHLD 处理函数时一个也没有`,
  },
  async run(out, lang) {
    const say = sayer(out, lang);
    let noReap: PosixServer | undefined;
    let reaping: PosixServer | undefined;
    try {
      // 1. reap: 'none' — the lecture's server before homework 1.
      noReap = await startServer({ model: 'fork', reap: 'none' });
      const master1 = noReap.pid;
      say(
        `1) Fork server with reap: 'none' (no SIGCHLD handler), master pid ${master1}. ${N} clients connect, echo, and leave.`,
        `1) 多进程服务器，reap: 'none'（没有 SIGCHLD 处理函数），master 进程 ${master1}。${N} 个客户端连接、回显、离开。`,
      );
      for (let i = 0; i < N; i++) await exchange(portOf(noReap), `z${i}\n`);
      await eventually(() => noReap!.stats().zombies >= N, 2000);
      const s1 = noReap.stats();
      const procZ1 = childrenOf(master1).filter((k) => k.state === 'Z').length;
      say(`   /proc: children of ${master1}: ${procStates(master1)}`, `   /proc：${master1} 的子进程：${procStates(master1)}`);
      say(
        `   stats(): zombies ${s1.zombies}, reaped ${s1.reaped}, active ${s1.active}`,
        `   stats()：zombies ${s1.zombies}，reaped ${s1.reaped}，active ${s1.active}`,
      );
      await noReap.close({ timeoutMs: 0 });
      const afterClose = childrenOf(master1).length;
      say(
        `   close() waited for them: ${noReap.stats().reaped} reaped, ${afterClose} left.`,
        `   close() 时才回收它们：回收 ${noReap.stats().reaped} 个，剩余 ${afterClose} 个。`,
      );

      // 2. the default: waitpid(-1, WNOHANG) in a SIGCHLD handler.
      reaping = await startServer({ model: 'fork' });
      const master2 = reaping.pid;
      say(
        `2) Fork server with the default reaping (SIGCHLD handler → waitpid(-1, WNOHANG)), master pid ${master2}. The same ${N} clients.`,
        `2) 默认回收方式（SIGCHLD 处理函数 → waitpid(-1, WNOHANG)）的多进程服务器，master 进程 ${master2}。同样 ${N} 个客户端。`,
      );
      for (let i = 0; i < N; i++) await exchange(portOf(reaping), `r${i}\n`);
      await eventually(() => reaping!.stats().reaped >= N, 2000);
      const s2 = reaping.stats();
      const procZ2 = childrenOf(master2).filter((k) => k.state === 'Z').length;
      say(`   /proc: children of ${master2}: ${procStates(master2)}`, `   /proc：${master2} 的子进程：${procStates(master2)}`);
      say(
        `   stats(): zombies ${s2.zombies}, reaped ${s2.reaped}, active ${s2.active}`,
        `   stats()：zombies ${s2.zombies}，reaped ${s2.reaped}，active ${s2.active}`,
      );

      const measured = {
        zombiesWithoutReaping: s1.zombies,
        procZombiesWithoutReaping: procZ1,
        reapedWithoutReaping: s1.reaped,
        leftAfterClose: afterClose,
        zombiesWithSigchld: s2.zombies,
        procZombiesWithSigchld: procZ2,
        reapedWithSigchld: s2.reaped,
      };
      say('Measured:', '测量结果：');
      say(
        `  without reaping: ${s1.zombies} zombies (/proc shows ${procZ1} in state Z); with SIGCHLD reaping: ${s2.zombies} zombies, ${s2.reaped} reaped.`,
        `  不回收：${s1.zombies} 个僵尸进程（/proc 显示 ${procZ1} 个处于 Z 状态）；用 SIGCHLD 回收：${s2.zombies} 个僵尸进程，回收 ${s2.reaped} 个。`,
      );
      say(
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
    } finally {
      await closeAll([noReap, reaping]);
    }
  },
};
