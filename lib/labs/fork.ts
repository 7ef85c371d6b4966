// Lab: the multi-process server (lecture point 5). After fork() both processes hold both
// descriptors; the parent closes cfd and the child closes lfd. The trace shows the calls with the
// real pids and descriptors, and /proc/<pid>/fd shows what each process holds afterwards.
import type { TraceEvent } from '../server/events';
import type { PosixServer } from '../server/server';
import { formatTrace } from '../trace/format';
import { sayer } from '../util/i18n';
import { closeAll, destroyAll, fdLinks, Client, listenInode, portOf, showFds, socketInode, waitFor, startServer } from './kit';
import type { Lab } from './types';

export const forkLab: Lab = {
  name: 'fork',
  summary: {
    en: 'after fork() the parent closes cfd and the child closes lfd: see the pids, the fds and /proc/<pid>/fd',
    zh: 'fork() 之后父进程关闭 cfd、子进程关闭 lfd：查看进程号、描述符和 /proc/<pid>/fd',
  },
  async run(out, lang) {
    const say = sayer(out, lang);
    let server: PosixServer | undefined;
    let client: Client | undefined;
    try {
      server = await startServer({ model: 'fork', trace: true });
      const trace: TraceEvent[] = [];
      server.on('trace', (e) => trace.push(e));
      const master = server.pid;
      const port = portOf(server);
      const t0 = server.startupTrace[0]?.timeMs ?? 0;
      // The listening socket as the master knows it: Node made it, the exec'd master has it at fd 3.
      const lfd = server.startupTrace.find((e) => e.call === 'exec')?.result ?? -1;
      const fmt = (e: TraceEvent) => `  ${formatTrace(e, t0, lang, { masterPid: master })}`;
      say(
        `Started a fork server on 127.0.0.1:${port}: Node (pid ${process.pid}) made the listening socket, the master (pid ${master}) accepts and forks.`,
        `启动多进程服务器 127.0.0.1:${port}：Node（进程 ${process.pid}）创建监听套接字，master（进程 ${master}）负责 accept 和 fork。`,
      );
      for (const e of server.startupTrace) out(fmt(e));

      client = await Client.open(port);
      const echoed = (await client.echo('hello\n', 2000)).toString();
      await waitFor(() => trace.some((e) => e.call === 'fork'), 2000, 'the fork trace');
      const fork = trace.find((e) => e.call === 'fork')!;
      const child = fork.result;
      const cfd = fork.fd;
      await waitFor(
        () =>
          trace.some((e) => e.call === 'close-cfd' && e.id === fork.id) &&
          trace.some((e) => e.call === 'close-lfd' && e.pid === child),
        2000,
        'both closes',
      );
      const accept = trace.find((e) => e.call === 'accept' && e.id === fork.id);
      const closeCfd = trace.find((e) => e.call === 'close-cfd' && e.id === fork.id)!;
      const closeLfd = trace.find((e) => e.call === 'close-lfd' && e.pid === child)!;
      say(
        `A client (port ${client.localPort}) connected and got "${echoed.trim()}" back. The trace, in time order:`,
        `一个客户端（端口 ${client.localPort}）连接并收到回显 "${echoed.trim()}"。按时间顺序的跟踪：`,
      );
      for (const e of [accept, fork, closeCfd, closeLfd]
        .filter((x): x is TraceEvent => x !== undefined)
        .sort((x, y) => x.timeMs - y.timeMs)) {
        out(fmt(e));
      }

      // While the child still serves the client: what each process holds.
      const inode = listenInode(port);
      const masterFds = fdLinks(master) ?? new Map<number, string>();
      const childFds = fdLinks(child) ?? new Map<number, string>();
      const holdsListener = (fds: Map<number, string>) =>
        [...fds.values()].some((l) => inode !== null && socketInode(l) === inode);
      const masterHoldsListener = holdsListener(masterFds);
      const childHoldsListener = holdsListener(childFds);
      const childHoldsCfd = socketInode(childFds.get(cfd)) !== null;
      // What each descriptor is, for the reader: lfd, cfd, the event pipe to Node, the reserve fd
      // (kept to refuse a client when descriptors run out).
      const label = (en: string, zh: string) => (lang === 'en' ? en : zh);
      const marks = (fds: Map<number, string>, own: [number, string][]) => {
        const m = new Map<number, string>(own);
        for (const [fd, link] of fds) {
          if (m.has(fd)) continue;
          if (link.startsWith('pipe:')) m.set(fd, label('event pipe to Node', '通往 Node 的事件管道'));
          else if (fd > 2 && link === '/dev/null') m.set(fd, label('reserve fd', '备用描述符'));
        }
        return m;
      };
      say(
        `/proc/${master}/fd (master): ${showFds(masterFds, marks(masterFds, [[lfd, 'lfd, LISTEN']]))}`,
        `/proc/${master}/fd（master）：${showFds(masterFds, marks(masterFds, [[lfd, 'lfd，监听']]))}`,
      );
      say(
        `/proc/${child}/fd (child):  ${showFds(childFds, marks(childFds, [[cfd, 'cfd']]))}`,
        `/proc/${child}/fd（子进程）：${showFds(childFds, marks(childFds, [[cfd, 'cfd']]))}`,
      );
      say(
        `The listening socket is inode ${inode} in /proc/net/tcp (state 0A LISTEN).`,
        `监听套接字在 /proc/net/tcp 中的 inode 是 ${inode}（状态 0A LISTEN）。`,
      );

      client.end();
      await waitFor(() => trace.some((e) => e.call === 'waitpid' && e.result === child), 2000, 'the child to be reaped');
      for (const e of trace.filter(
        (x) => (x.call === 'child-exit' && x.pid === child) || (x.call === 'waitpid' && x.result === child),
      ))
        out(fmt(e));

      const measured = {
        nodePid: process.pid,
        masterPid: master,
        childPid: child,
        lfd,
        cfd,
        parentClosedCfd: closeCfd.pid === master && closeCfd.fd === cfd,
        childClosedLfd: closeLfd.pid === child && closeLfd.fd === lfd,
        masterHoldsListener,
        childHoldsListener,
        childHoldsCfd,
        masterFdCount: masterFds.size,
        childFdCount: childFds.size,
      };
      say('Measured:', '测量结果：');
      say(
        `  fork() in pid ${master} returned ${child} for cfd ${cfd}; close(${closeCfd.fd}) ran in pid ${closeCfd.pid} (the parent), close(${closeLfd.fd}) in pid ${closeLfd.pid} (the child).`,
        `  进程 ${master} 中 fork() 为 cfd ${cfd} 返回 ${child}；close(${closeCfd.fd}) 在进程 ${closeCfd.pid}（父进程）中执行，close(${closeLfd.fd}) 在进程 ${closeLfd.pid}（子进程）中执行。`,
      );
      say(
        `  master holds the listening socket: ${masterHoldsListener ? 'yes' : 'no'}; child holds it: ${childHoldsListener ? 'yes' : 'no'}; child holds the client socket as fd ${cfd}: ${childHoldsCfd ? 'yes' : 'no'}.`,
        `  master 持有监听套接字：${masterHoldsListener ? '是' : '否'}；子进程持有：${childHoldsListener ? '是' : '否'}；子进程以 fd ${cfd} 持有客户端套接字：${childHoldsCfd ? '是' : '否'}。`,
      );
      say(
        'Lesson: fork() copies the descriptor table, so right after it both processes hold lfd and cfd. Each closes the one it does not need: the parent keeps listening, the child talks to its one client and then exits (point 5).',
        '结论：fork() 复制文件描述符表，刚 fork 完父子进程都持有 lfd 和 cfd。各自关闭不需要的那个：父进程继续监听，子进程只和自己的客户端通信，然后退出（第 5 点）。',
      );
      const ok =
        measured.parentClosedCfd &&
        measured.childClosedLfd &&
        masterHoldsListener &&
        !childHoldsListener &&
        childHoldsCfd &&
        inode !== null;
      return { ok, measured };
    } finally {
      destroyAll([client]);
      await closeAll([server]);
    }
  },
};
