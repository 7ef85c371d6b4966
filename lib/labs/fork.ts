// Lab: the multi-process server (lecture point 5). After fork() both processes hold both
// descriptors; the parent closes cfd and the child closes lfd. The trace shows the calls with the
// real pids and descriptors, and /proc/<pid>/fd shows what each process holds afterwards.
import type { TraceEvent } from '../server/events';
import { defineLab, type LabContext, type TracedServer } from './context';
import { fdLinks, holdsSocket, listenInode, showFds, socketInode, waitFor, type Client } from './kit';
import type { LabResult } from './types';

export const forkLab = defineLab({
  name: 'fork',
  summary: {
    en: 'after fork() the parent closes cfd and the child closes lfd: see the pids, the fds and /proc/<pid>/fd',
    zh: 'fork() 之后父进程关闭 cfd、子进程关闭 lfd：查看进程号、描述符和 /proc/<pid>/fd',
  },
  async run(lab) {
    const server = await startForkServer(lab);
    const forked = await aClientConnectsAndTheMasterForks(lab, server);
    const held = whatEachProcessHolds(lab, server, forked);
    await theClientLeavesAndTheChildIsReaped(server, forked);
    return verdict(lab, server, forked, held);
  },
});

/** The child the master forked for one client, and the two closes that follow the fork. */
interface Forked {
  client: Client;
  child: number;
  cfd: number;
  closeCfd: TraceEvent;
  closeLfd: TraceEvent;
}

/** What /proc/<pid>/fd shows while the child still serves its client. */
interface Held {
  /** The listening socket's inode in /proc/net/tcp. */
  inode: number | null;
  masterFds: Map<number, string>;
  childFds: Map<number, string>;
  masterHoldsListener: boolean;
  childHoldsListener: boolean;
  childHoldsCfd: boolean;
}

/** Node makes the listening socket; the exec'd master has it at fd 3, accepts and forks. */
async function startForkServer(lab: LabContext): Promise<TracedServer> {
  const server = await lab.tracedServer({ model: 'fork' });
  lab.say(
    `Started a fork server on 127.0.0.1:${server.port}: Node (pid ${process.pid}) made the listening socket, the master (pid ${server.pid}) accepts and forks.`,
    `启动多进程服务器 127.0.0.1:${server.port}：Node（进程 ${process.pid}）创建监听套接字，master（进程 ${server.pid}）负责 accept 和 fork。`,
  );
  server.print(server.startupTrace, '  ');
  return server;
}

/** A client is echoed; the master accepted it and forked; the parent closed cfd, the child lfd. */
async function aClientConnectsAndTheMasterForks(lab: LabContext, server: TracedServer): Promise<Forked> {
  const client = await lab.client(server.port);
  const echoed = (await client.echo('hello\n', 2000)).toString();
  const fork = await server.first('fork', 'the fork trace');
  const child = fork.result;
  const parentClosesCfd = (e: TraceEvent) => e.call === 'close-cfd' && e.id === fork.id;
  const childClosesLfd = (e: TraceEvent) => e.call === 'close-lfd' && e.pid === child;
  await waitFor(() => server.trace.some(parentClosesCfd) && server.trace.some(childClosesLfd), 2000, 'both closes');
  const accept = server.trace.find((e) => e.call === 'accept' && e.id === fork.id);
  const closeCfd = server.trace.find(parentClosesCfd)!;
  const closeLfd = server.trace.find(childClosesLfd)!;
  lab.say(
    `A client (port ${client.localPort}) connected and got "${echoed.trim()}" back. The trace, in time order:`,
    `一个客户端（端口 ${client.localPort}）连接并收到回显 "${echoed.trim()}"。按时间顺序的跟踪：`,
  );
  const inTimeOrder = [accept, fork, closeCfd, closeLfd]
    .filter((x): x is TraceEvent => x !== undefined)
    .sort((x, y) => x.timeMs - y.timeMs);
  server.print(inTimeOrder, '  ');
  return { client, child, cfd: fork.fd, closeCfd, closeLfd };
}

/** While the child still serves the client: /proc/<pid>/fd of the master and of the child. */
function whatEachProcessHolds(lab: LabContext, server: TracedServer, { child, cfd }: Forked): Held {
  const master = server.pid;
  const lfd = server.lfd;
  const inode = listenInode(server.port, server.server.address()!.address);
  const masterFds = fdLinks(master) ?? new Map<number, string>();
  const childFds = fdLinks(child) ?? new Map<number, string>();
  lab.say(
    `/proc/${master}/fd (master): ${showFds(masterFds, labelled(lab, masterFds, [[lfd, 'lfd, LISTEN']]))}`,
    `/proc/${master}/fd（master）：${showFds(masterFds, labelled(lab, masterFds, [[lfd, 'lfd，监听']]))}`,
  );
  lab.say(
    `/proc/${child}/fd (child):  ${showFds(childFds, labelled(lab, childFds, [[cfd, 'cfd']]))}`,
    `/proc/${child}/fd（子进程）：${showFds(childFds, labelled(lab, childFds, [[cfd, 'cfd']]))}`,
  );
  lab.say(
    `The listening socket is inode ${inode} in /proc/net/tcp (state 0A LISTEN).`,
    `监听套接字在 /proc/net/tcp 中的 inode 是 ${inode}（状态 0A LISTEN）。`,
  );
  return {
    inode,
    masterFds,
    childFds,
    masterHoldsListener: holdsSocket(masterFds, inode),
    childHoldsListener: holdsSocket(childFds, inode),
    childHoldsCfd: socketInode(childFds.get(cfd)) !== null,
  };
}

/**
 * What each descriptor is, for the reader: `own` (lfd, cfd), the event pipe to Node, the reserve
 * fd (kept to refuse a client when descriptors run out).
 */
function labelled(lab: LabContext, fds: Map<number, string>, own: [number, string][]): Map<number, string> {
  const m = new Map<number, string>(own);
  for (const [fd, link] of fds) {
    if (m.has(fd)) continue;
    if (link.startsWith('pipe:')) m.set(fd, lab.text('event pipe to Node', '通往 Node 的事件管道'));
    else if (fd > 2 && link === '/dev/null') m.set(fd, lab.text('reserve fd', '备用描述符'));
  }
  return m;
}

/** The client leaves: the child exits and the master reaps it (its SIGCHLD handler's waitpid). */
async function theClientLeavesAndTheChildIsReaped(server: TracedServer, { client, child }: Forked): Promise<void> {
  client.end();
  await server.first('waitpid', 'the child to be reaped', (e) => e.result === child);
  server.print(
    server.trace.filter((x) => (x.call === 'child-exit' && x.pid === child) || (x.call === 'waitpid' && x.result === child)),
    '  ',
  );
}

function verdict(lab: LabContext, server: TracedServer, { child, cfd, closeCfd, closeLfd }: Forked, held: Held): LabResult {
  const master = server.pid;
  const lfd = server.lfd;
  const { masterHoldsListener, childHoldsListener, childHoldsCfd } = held;
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
    masterFdCount: held.masterFds.size,
    childFdCount: held.childFds.size,
  };
  lab.say('Measured:', '测量结果：');
  lab.say(
    `  fork() in pid ${master} returned ${child} for cfd ${cfd}; close(${closeCfd.fd}) ran in pid ${closeCfd.pid} (the parent), close(${closeLfd.fd}) in pid ${closeLfd.pid} (the child).`,
    `  进程 ${master} 中 fork() 为 cfd ${cfd} 返回 ${child}；close(${closeCfd.fd}) 在进程 ${closeCfd.pid}（父进程）中执行，close(${closeLfd.fd}) 在进程 ${closeLfd.pid}（子进程）中执行。`,
  );
  lab.say(
    `  master holds the listening socket: ${masterHoldsListener ? 'yes' : 'no'}; child holds it: ${childHoldsListener ? 'yes' : 'no'}; child holds the client socket as fd ${cfd}: ${childHoldsCfd ? 'yes' : 'no'}.`,
    `  master 持有监听套接字：${masterHoldsListener ? '是' : '否'}；子进程持有：${childHoldsListener ? '是' : '否'}；子进程以 fd ${cfd} 持有客户端套接字：${childHoldsCfd ? '是' : '否'}。`,
  );
  lab.say(
    'Lesson: fork() copies the descriptor table, so right after it both processes hold lfd and cfd. Each closes the one it does not need: the parent keeps listening, the child talks to its one client and then exits (point 5).',
    '结论：fork() 复制文件描述符表，刚 fork 完父子进程都持有 lfd 和 cfd。各自关闭不需要的那个：父进程继续监听，子进程只和自己的客户端通信，然后退出（第 5 点）。',
  );
  const ok =
    measured.parentClosedCfd &&
    measured.childClosedLfd &&
    masterHoldsListener &&
    !childHoldsListener &&
    childHoldsCfd &&
    held.inode !== null;
  return { ok, measured };
}
