// Lab: EINTR (lecture points 2 and 7). The master blocks in accept(); a child exits, SIGCHLD
// arrives, the handler runs, and accept() returns -1 with errno EINTR. Not an error: retry it.
// With SA_RESTART the kernel restarts accept() itself and nobody sees EINTR.
import type { TraceEvent } from '../server/events';
import type { PosixServer } from '../server/server';
import { formatTrace } from '../trace/format';
import { sayer } from '../util/i18n';
import { closeAll, eventually, exchange, portOf, startServer } from './kit';
import type { Lab } from './types';

const CONNECTIONS = 20;

async function round(restart: boolean): Promise<{ server: PosixServer; retries: number; traces: TraceEvent[]; reaped: number }> {
  const server = await startServer({ model: 'fork', trace: true, restart });
  const traces: TraceEvent[] = [];
  server.on('trace', (e) => {
    if (e.call === 'accept-eintr') traces.push(e);
  });
  try {
    for (let i = 0; i < CONNECTIONS; i++) await exchange(portOf(server), `e${i}\n`);
    await eventually(() => server.stats().reaped >= CONNECTIONS, 2000);
    // Read together: close() itself interrupts accept() once more (SIGTERM), after this point.
    const s = server.stats();
    return { server, retries: s.eintrRetries, traces: traces.slice(), reaped: s.reaped };
  } catch (e) {
    await closeAll([server]);
    throw e;
  }
}

export const eintrLab: Lab = {
  name: 'eintr',
  summary: {
    en: 'SIGCHLD interrupts the blocked accept(): EINTR, retried; with SA_RESTART the kernel restarts it (0 retries)',
    zh: 'SIGCHLD 打断阻塞中的 accept()：EINTR，重试；使用 SA_RESTART 时内核自动重启（0 次重试）',
  },
  async run(out, lang) {
    const say = sayer(out, lang);
    let plain: PosixServer | undefined;
    let restarting: PosixServer | undefined;
    try {
      say(
        `1) Fork server, SIGCHLD handler installed without SA_RESTART (as in the lecture). ${CONNECTIONS} short connections, one after another: each child exits while the master is blocked in accept().`,
        `1) 多进程服务器，SIGCHLD 处理函数不带 SA_RESTART（与讲义相同）。依次建立 ${CONNECTIONS} 个短连接：每个子进程都在 master 阻塞于 accept() 时退出。`,
      );
      const r1 = await round(false);
      plain = r1.server;
      const t0 = plain.startupTrace[0]?.timeMs ?? 0;
      for (const e of r1.traces.slice(0, 2)) out(`   ${formatTrace(e, t0, lang, { masterPid: plain.pid })}`);
      say(
        `   stats().eintrRetries = ${r1.retries}; accept-eintr trace lines: ${r1.traces.length}; children reaped: ${r1.reaped}`,
        `   stats().eintrRetries = ${r1.retries}；accept-eintr 跟踪行：${r1.traces.length}；回收的子进程：${r1.reaped}`,
      );
      await closeAll([plain]);

      say(
        `2) The same, with restart: true (the SIGCHLD handler has SA_RESTART). ${CONNECTIONS} connections.`,
        `2) 同样的实验，restart: true（SIGCHLD 处理函数带 SA_RESTART）。${CONNECTIONS} 个连接。`,
      );
      const r2 = await round(true);
      restarting = r2.server;
      say(
        `   stats().eintrRetries = ${r2.retries}; accept-eintr trace lines: ${r2.traces.length}; children reaped: ${r2.reaped}`,
        `   stats().eintrRetries = ${r2.retries}；accept-eintr 跟踪行：${r2.traces.length}；回收的子进程：${r2.reaped}`,
      );

      const measured = {
        connections: CONNECTIONS,
        eintrRetries: r1.retries,
        eintrTraceLines: r1.traces.length,
        reaped: r1.reaped,
        eintrRetriesWithRestart: r2.retries,
        eintrTraceLinesWithRestart: r2.traces.length,
        reapedWithRestart: r2.reaped,
      };
      say('Measured:', '测量结果：');
      say(
        `  without SA_RESTART: accept() interrupted ${r1.retries} times in ${CONNECTIONS} connections, each retried (all ${r1.reaped} served and reaped); with SA_RESTART: ${r2.retries}.`,
        `  不带 SA_RESTART：${CONNECTIONS} 个连接中 accept() 被打断 ${r1.retries} 次，每次都重试（${r1.reaped} 个全部服务完并回收）；带 SA_RESTART：${r2.retries} 次。`,
      );
      say(
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
    } finally {
      await closeAll([plain, restarting]);
    }
  },
};
