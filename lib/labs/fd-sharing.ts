// Lab: what is shared (lecture points 8 and 10). A forked child has a COPY of the descriptor
// table: closing lfd there leaves the parent's listener alive. Threads share ONE table: close() on
// any thread closes the descriptor for all of them — so a worker must never close lfd. The thread
// half is shown safely, on a descriptor of our own, never on a live server's lfd.
import { closeSync, openSync } from 'node:fs';
import { defineLab, type LabContext, type TracedServer } from './context';
import { fdLinks, holdsSocket, listenInode, socketInode, tasks, type Client } from './kit';
import type { LabResult } from './types';

export const fdSharingLab = defineLab({
  name: 'fd-sharing',
  summary: {
    en: "a child's close(lfd) closes only its copy; a thread's close() is process-wide, so a worker must not close lfd",
    zh: '子进程 close(lfd) 只关闭自己的副本；线程的 close() 作用于整个进程，所以子线程不能关闭 lfd',
  },
  async run(lab) {
    const forked = await aForkedChildClosesItsLfd(lab);
    const processes = await theMastersListenerLivesOn(lab, forked);
    await lab.closeAll();
    const worker = await aWorkerSharesTheDescriptorTable(lab);
    const ownFd = closeOnOneThreadClosesForAll(lab, worker.threads.workerTid);
    const threadServerStillServes = await worker.client.echoes('still here\n');
    return verdict(lab, { ...processes, ...worker.threads, ...ownFd, threadServerStillServes });
  },
});

// The facts are types, not interfaces: a LabResult's `measured` is a record of them.
/** The fork half, measured. */
type Processes = {
  forkMasterPid: number;
  forkChildPid: number;
  forkLfd: number;
  childClosedLfd: boolean;
  childHoldsListener: boolean;
  masterStillHoldsListener: boolean;
  newClientServedAfterChildClosedLfd: boolean;
};

/** The thread half, measured: what a worker and the main thread see of one table. */
type Threads = {
  threadLfd: number;
  workerTid: number;
  workerTidInTask: boolean;
  lfdVisibleToWorker: boolean;
  workerCfdVisibleToMain: boolean;
};

/** A descriptor of our own, opened and closed by Node's main thread, as a worker sees it. */
type OwnFd = {
  ownFd: number;
  ownFdSeenByWorker: boolean;
  ownFdGoneForWorkerAfterClose: boolean;
};

type Measured = Processes & Threads & OwnFd & { threadServerStillServes: boolean };

/** A fork server; client 1 connects and stays; its child closes its copy of lfd. */
async function aForkedChildClosesItsLfd(lab: LabContext): Promise<{ server: TracedServer; child: number }> {
  const server = await lab.tracedServer({ model: 'fork' });
  lab.say(
    `1) Processes. Fork server on 127.0.0.1:${server.port}, master pid ${server.pid}, lfd ${server.lfd}. Client 1 connects and stays.`,
    `1) 进程。多进程服务器 127.0.0.1:${server.port}，master 进程 ${server.pid}，lfd ${server.lfd}。客户端 1 连接并保持。`,
  );
  const c1 = await lab.client(server.port);
  await c1.echo('one\n');
  const child = (await server.first('fork', 'the fork trace')).result;
  const closeLfd = await server.first('close-lfd', "the child's close(lfd)", (e) => e.pid === child);
  server.print([closeLfd], '   ');
  return { server, child };
}

/** The master still holds the listener in /proc/<pid>/fd, and client 2 is served. */
async function theMastersListenerLivesOn(
  lab: LabContext,
  { server, child }: { server: TracedServer; child: number },
): Promise<Processes> {
  const master = server.pid;
  const lfd = server.lfd;
  const inode = listenInode(server.port, server.server.address()!.address);
  const masterFds = fdLinks(master) ?? new Map<number, string>();
  const childFds = fdLinks(child) ?? new Map<number, string>();
  const masterStillHoldsListener = inode !== null && socketInode(masterFds.get(lfd)) === inode;
  const childHoldsListener = holdsSocket(childFds, inode);
  const c2 = await lab.client(server.port);
  const newClientServed = await c2.echoes('two\n');
  lab.say(
    `   After child ${child} closed its lfd: /proc/${master}/fd/${lfd} → ${masterFds.get(lfd) ?? '-'} (the listener, inode ${inode}); the child holds it: ${childHoldsListener ? 'yes' : 'no'}. Client 2 connected and was ${newClientServed ? 'echoed' : 'NOT served'}: the listener is alive.`,
    `   子进程 ${child} 关闭自己的 lfd 之后：/proc/${master}/fd/${lfd} → ${masterFds.get(lfd) ?? '-'}（监听套接字，inode ${inode}）；子进程仍持有它：${childHoldsListener ? '是' : '否'}。客户端 2 连接并${newClientServed ? '收到回显' : '没有得到服务'}：监听套接字仍然有效。`,
  );
  return {
    forkMasterPid: master,
    forkChildPid: child,
    forkLfd: lfd,
    childClosedLfd: server.trace.some((e) => e.call === 'close-lfd' && e.pid === child && e.fd === lfd),
    childHoldsListener,
    masterStillHoldsListener,
    newClientServedAfterChildClosedLfd: newClientServed,
  };
}

/** A thread server in this process: its worker's /proc/self/task/<tid>/fd is the main thread's table. */
async function aWorkerSharesTheDescriptorTable(lab: LabContext): Promise<{ client: Client; threads: Threads }> {
  const server = await lab.tracedServer({ model: 'thread' });
  const tport = server.port;
  const tlfd = server.lfd;
  const client = await lab.client(tport);
  await client.echo('three\n');
  const start = await server.first('worker-start', 'the worker to start');
  const tid = start.result;
  lab.say(
    `2) Threads. Thread server on 127.0.0.1:${tport} in this process (pid ${process.pid}), lfd ${tlfd}. A client connects; its worker:`,
    `2) 线程。线程服务器 127.0.0.1:${tport}，就在本进程中（进程 ${process.pid}），lfd ${tlfd}。一个客户端连接；它的子线程：`,
  );
  server.print([start], '   ');
  const workerInTask = tasks().includes(tid);
  const mainView = fdLinks('self') ?? new Map<number, string>();
  const workerView = fdLinks('self', tid) ?? new Map<number, string>();
  const lfdVisibleToWorker = socketInode(workerView.get(tlfd)) !== null && workerView.get(tlfd) === mainView.get(tlfd);
  const cfdVisibleToMain = socketInode(mainView.get(start.fd)) !== null && mainView.get(start.fd) === workerView.get(start.fd);
  lab.say(
    `   /proc/self/task lists tid ${tid}: ${workerInTask ? 'yes' : 'no'}. /proc/self/task/${tid}/fd/${tlfd} → ${workerView.get(tlfd) ?? '-'} and /proc/self/fd/${tlfd} → ${mainView.get(tlfd) ?? '-'}: the worker "has" lfd. /proc/self/fd/${start.fd} → ${mainView.get(start.fd) ?? '-'}: the main thread "has" the worker's cfd.`,
    `   /proc/self/task 中有线程 ${tid}：${workerInTask ? '是' : '否'}。/proc/self/task/${tid}/fd/${tlfd} → ${workerView.get(tlfd) ?? '-'}，/proc/self/fd/${tlfd} → ${mainView.get(tlfd) ?? '-'}：子线程“拥有” lfd。/proc/self/fd/${start.fd} → ${mainView.get(start.fd) ?? '-'}：主线程“拥有”子线程的 cfd。`,
  );
  const threads = {
    threadLfd: tlfd,
    workerTid: tid,
    workerTidInTask: workerInTask,
    lfdVisibleToWorker,
    workerCfdVisibleToMain: cfdVisibleToMain,
  };
  return { client, threads };
}

/** close() is process-wide: shown on a descriptor of our own, never on the server's lfd. */
function closeOnOneThreadClosesForAll(lab: LabContext, tid: number): OwnFd {
  const ownFd = openSync('/dev/null', 'r');
  let seenByWorker: boolean;
  try {
    seenByWorker = fdLinks('self', tid)?.get(ownFd) === '/dev/null';
  } finally {
    closeSync(ownFd);
  }
  const goneForWorker = fdLinks('self', tid)?.get(ownFd) !== '/dev/null';
  const workerStillAlive = tasks().includes(tid);
  lab.say(
    `   Node's main thread opened /dev/null as fd ${ownFd}: the worker's /proc/self/task/${tid}/fd shows it at once: ${seenByWorker ? 'yes' : 'no'}. The main thread closed it: gone for the worker too: ${goneForWorker ? 'yes' : 'no'} (worker still running: ${workerStillAlive ? 'yes' : 'no'}).`,
    `   Node 主线程打开 /dev/null，得到 fd ${ownFd}：子线程的 /proc/self/task/${tid}/fd 立刻就能看到：${seenByWorker ? '是' : '否'}。主线程关闭它：子线程那边也消失了：${goneForWorker ? '是' : '否'}（子线程仍在运行：${workerStillAlive ? '是' : '否'}）。`,
  );
  return { ownFd, ownFdSeenByWorker: seenByWorker, ownFdGoneForWorkerAfterClose: goneForWorker };
}

function verdict(lab: LabContext, measured: Measured): LabResult {
  const m = measured;
  lab.say('Measured:', '测量结果：');
  lab.say(
    `  fork: child closed lfd ${m.forkLfd}, master still holds it: ${m.masterStillHoldsListener ? 'yes' : 'no'}, new client served: ${m.newClientServedAfterChildClosedLfd ? 'yes' : 'no'}. threads: worker ${m.workerTid} sees lfd ${m.threadLfd}: ${m.lfdVisibleToWorker ? 'yes' : 'no'}; fd ${m.ownFd} closed by the main thread vanished for the worker: ${m.ownFdGoneForWorkerAfterClose ? 'yes' : 'no'}.`,
    `  fork：子进程关闭 lfd ${m.forkLfd}，master 仍持有它：${m.masterStillHoldsListener ? '是' : '否'}，新客户端得到服务：${m.newClientServedAfterChildClosedLfd ? '是' : '否'}。线程：子线程 ${m.workerTid} 能看到 lfd ${m.threadLfd}：${m.lfdVisibleToWorker ? '是' : '否'}；主线程关闭的 fd ${m.ownFd} 在子线程那边也消失了：${m.ownFdGoneForWorkerAfterClose ? '是' : '否'}。`,
  );
  lab.say(
    "Lesson: fork() gives the child copies of the descriptors (point 8): its close(lfd) drops only its copy. Threads share one descriptor table (point 10): a close() on any thread closes it for every thread. A worker that closed lfd would close the server's listener; a main thread that closed cfd would cut off the worker's client. So only the worker closes its cfd, and only the main thread closes lfd.",
    '结论：fork() 让子进程得到描述符的副本（第 8 点）：它 close(lfd) 只关掉自己的副本。线程共享同一张描述符表（第 10 点）：任何线程 close() 都会对所有线程关闭。子线程若关闭 lfd，就关掉了服务器的监听套接字；主线程若关闭 cfd，就切断了子线程的客户端。所以只有子线程关闭自己的 cfd，只有主线程关闭 lfd。',
  );
  const ok =
    m.childClosedLfd &&
    m.masterStillHoldsListener &&
    !m.childHoldsListener &&
    m.newClientServedAfterChildClosedLfd &&
    m.workerTidInTask &&
    m.lfdVisibleToWorker &&
    m.workerCfdVisibleToMain &&
    m.ownFdSeenByWorker &&
    m.ownFdGoneForWorkerAfterClose &&
    m.threadServerStillServes;
  return { ok, measured };
}
