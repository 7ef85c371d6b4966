// Lab: EINTR (lecture points 2 and 7). The master blocks in accept(); a child exits, SIGCHLD
// arrives, the handler runs, and accept() returns -1 with errno EINTR. Not an error: retry it.
// With SA_RESTART the kernel restarts accept() itself and nobody sees EINTR.
import type { TraceEvent } from '../server/events';
import { defineLab, type LabContext, type TracedServer } from './context';
import { eventually, exchange } from './kit';
import type { LabResult } from './types';

const CONNECTIONS = 20;

export const eintrLab = defineLab({
  name: 'eintr',
  summary: {
    en: 'SIGCHLD interrupts the blocked accept(): EINTR, retried; with SA_RESTART the kernel restarts it (0 retries)',
    zh: 'SIGCHLD 打断阻塞中的 accept()：EINTR，重试；使用 SA_RESTART 时内核自动重启（0 次重试）',
  },
  async run(lab) {
    const plain = await acceptIsInterruptedAndRetried(lab);
    await lab.closeAll();
    const restarting = await theKernelRestartsAcceptWithSaRestart(lab);
    return verdict(lab, plain, restarting);
  },
});

/** What one round of CONNECTIONS short connections left in the counters and the trace. */
interface Round {
  server: TracedServer;
  retries: number;
  /** The accept-eintr trace events. */
  traces: TraceEvent[];
  reaped: number;
}

/** A fork server, CONNECTIONS short connections one after another, every child reaped. */
async function round(lab: LabContext, restart: boolean): Promise<Round> {
  const server = await lab.tracedServer({ model: 'fork', restart });
  for (let i = 0; i < CONNECTIONS; i++) await exchange(server.port, `e${i}\n`);
  await eventually(() => server.stats().reaped >= CONNECTIONS, 2000);
  // Read together: close() itself interrupts accept() once more (SIGTERM), after this point.
  const s = server.stats();
  return { server, retries: s.eintrRetries, traces: server.calls('accept-eintr'), reaped: s.reaped };
}

function sayCounts(lab: LabContext, r: Round): void {
  lab.say(
    `   stats().eintrRetries = ${r.retries}; accept-eintr trace lines: ${r.traces.length}; children reaped: ${r.reaped}`,
    `   stats().eintrRetries = ${r.retries}；accept-eintr 跟踪行：${r.traces.length}；回收的子进程：${r.reaped}`,
  );
}

/** Without SA_RESTART (as in the lecture): each child's SIGCHLD interrupts the master's accept(). */
async function acceptIsInterruptedAndRetried(lab: LabContext): Promise<Round> {
  lab.say(
    `1) Fork server, SIGCHLD handler installed without SA_RESTART (as in the lecture). ${CONNECTIONS} short connections, one after another: each child exits while the master is blocked in accept().`,
    `1) 多进程服务器，SIGCHLD 处理函数不带 SA_RESTART（与讲义相同）。依次建立 ${CONNECTIONS} 个短连接：每个子进程都在 master 阻塞于 accept() 时退出。`,
  );
  const r = await round(lab, false);
  r.server.print(r.traces.slice(0, 2), '   ');
  sayCounts(lab, r);
  return r;
}

/** With SA_RESTART the kernel restarts accept() itself: nobody sees EINTR. */
async function theKernelRestartsAcceptWithSaRestart(lab: LabContext): Promise<Round> {
  lab.say(
    `2) The same, with restart: true (the SIGCHLD handler has SA_RESTART). ${CONNECTIONS} connections.`,
    `2) 同样的实验，restart: true（SIGCHLD 处理函数带 SA_RESTART）。${CONNECTIONS} 个连接。`,
  );
  const r = await round(lab, true);
  sayCounts(lab, r);
  return r;
}

function verdict(lab: LabContext, r1: Round, r2: Round): LabResult {
  const measured = {
    connections: CONNECTIONS,
    eintrRetries: r1.retries,
    eintrTraceLines: r1.traces.length,
    reaped: r1.reaped,
    eintrRetriesWithRestart: r2.retries,
    eintrTraceLinesWithRestart: r2.traces.length,
    reapedWithRestart: r2.reaped,
  };
  lab.say('Measured:', '测量结果：');
  lab.say(
    `  without SA_RESTART: accept() interrupted ${r1.retries} times in ${CONNECTIONS} connections, each retried (all ${r1.reaped} served and reaped); with SA_RESTART: ${r2.retries}.`,
    `  不带 SA_RESTART：${CONNECTIONS} 个连接中 accept() 被打断 ${r1.retries} 次，每次都重试（${r1.reaped} 个全部服务完并回收）；带 SA_RESTART：${r2.retries} 次。`,
  );
  lab.say(
    'Lesson: a blocking call (accept, read) interrupted by a signal returns -1 with errno == EINTR. That is not an error: loop and call it again. Treating it as fatal would stop the server the first time a child exits (points 2, 7).',
    '结论：阻塞函数（accept、read）被信号打断时返回 -1，errno == EINTR。这不是错误：循环重新调用即可。若把它当作致命错误，第一个子进程退出时服务器就会停止（第 2、7 点）。',
  );
  const ok =
    r1.retries > 0 &&
    r1.traces.length > 0 &&
    r1.reaped === CONNECTIONS &&
    r2.retries === 0 &&
    r2.traces.length === 0 &&
    r2.reaped === CONNECTIONS;
  return { ok, measured };
}
