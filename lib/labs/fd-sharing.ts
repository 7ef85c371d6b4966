// Lab: what is shared (lecture points 8 and 10). A forked child has a COPY of the descriptor
// table: closing lfd there leaves the parent's listener alive. Threads share ONE table: close() on
// any thread closes the descriptor for all of them — so a worker must never close lfd. The thread
// half is shown safely, on a descriptor of our own, never on a live server's lfd.
import { closeSync, openSync } from 'node:fs';
import type { TraceEvent } from '../server/events';
import type { PosixServer } from '../server/server';
import { formatTrace } from '../trace/format';
import { sayer } from '../util/i18n';
import { closeAll, destroyAll, fdLinks, Client, listenInode, portOf, socketInode, tasks, waitFor, startServer } from './kit';
import type { Lab } from './types';

export const fdSharingLab: Lab = {
  name: 'fd-sharing',
  summary: {
    en: "a child's close(lfd) closes only its copy; a thread's close() is process-wide, so a worker must not close lfd",
    zh: '子进程 close(lfd) 只关闭自己的副本；线程的 close() 作用于整个进程，所以子线程不能关闭 lfd',
  },
  async run(out, lang) {
    const say = sayer(out, lang);
    let forkServer: PosixServer | undefined;
    let threadServer: PosixServer | undefined;
    const clients: Client[] = [];
    let ownFd: number | undefined;
    try {
      // ---- fork: copies ----
      forkServer = await startServer({ model: 'fork', trace: true });
      const ftrace: TraceEvent[] = [];
      forkServer.on('trace', (e) => ftrace.push(e));
      const master = forkServer.pid;
      const fport = portOf(forkServer);
      const flfd = forkServer.startupTrace.find((e) => e.call === 'exec')?.result ?? -1; // lfd in the master
      const ft0 = forkServer.startupTrace[0]?.timeMs ?? 0;
      say(
        `1) Processes. Fork server on 127.0.0.1:${fport}, master pid ${master}, lfd ${flfd}. Client 1 connects and stays.`,
        `1) 进程。多进程服务器 127.0.0.1:${fport}，master 进程 ${master}，lfd ${flfd}。客户端 1 连接并保持。`,
      );
      const c1 = await Client.open(fport);
      clients.push(c1);
      await c1.echo('one\n');
      await waitFor(() => ftrace.some((e) => e.call === 'fork'), 2000, 'the fork trace');
      const child1 = ftrace.find((e) => e.call === 'fork')!.result;
      await waitFor(() => ftrace.some((e) => e.call === 'close-lfd' && e.pid === child1), 2000, "the child's close(lfd)");
      out(
        `   ${formatTrace(
          ftrace.find((e) => e.call === 'close-lfd' && e.pid === child1)!,
          ft0,
          lang,
          { masterPid: master },
        )}`,
      );
      const inode = listenInode(fport);
      const masterFds = fdLinks(master) ?? new Map<number, string>();
      const childFds = fdLinks(child1) ?? new Map<number, string>();
      const masterStillHoldsListener = inode !== null && socketInode(masterFds.get(flfd)) === inode;
      const childHoldsListener = [...childFds.values()].some((l) => inode !== null && socketInode(l) === inode);
      const c2 = await Client.open(fport);
      clients.push(c2);
      const newClientServed = await c2.echoes('two\n');
      say(
        `   After child ${child1} closed its lfd: /proc/${master}/fd/${flfd} → ${masterFds.get(flfd) ?? '-'} (the listener, inode ${inode}); the child holds it: ${childHoldsListener ? 'yes' : 'no'}. Client 2 connected and was ${newClientServed ? 'echoed' : 'NOT served'}: the listener is alive.`,
        `   子进程 ${child1} 关闭自己的 lfd 之后：/proc/${master}/fd/${flfd} → ${masterFds.get(flfd) ?? '-'}（监听套接字，inode ${inode}）；子进程仍持有它：${childHoldsListener ? '是' : '否'}。客户端 2 连接并${newClientServed ? '收到回显' : '没有得到服务'}：监听套接字仍然有效。`,
      );
      destroyAll(clients.splice(0));
      await closeAll([forkServer]);

      // ---- threads: one table ----
      threadServer = await startServer({ model: 'thread', trace: true });
      const ttrace: TraceEvent[] = [];
      threadServer.on('trace', (e) => ttrace.push(e));
      const tport = portOf(threadServer);
      const tlfd = threadServer.startupTrace[0]?.result ?? -1;
      const tt0 = threadServer.startupTrace[0]?.timeMs ?? 0;
      const c3 = await Client.open(tport);
      clients.push(c3);
      await c3.echo('three\n');
      await waitFor(() => ttrace.some((e) => e.call === 'worker-start'), 2000, 'the worker to start');
      const start = ttrace.find((e) => e.call === 'worker-start')!;
      const tid = start.result;
      say(
        `2) Threads. Thread server on 127.0.0.1:${tport} in this process (pid ${process.pid}), lfd ${tlfd}. A client connects; its worker:`,
        `2) 线程。线程服务器 127.0.0.1:${tport}，就在本进程中（进程 ${process.pid}），lfd ${tlfd}。一个客户端连接；它的子线程：`,
      );
      out(`   ${formatTrace(start, tt0, lang)}`);
      const workerInTask = tasks().includes(tid);
      const mainView = fdLinks('self') ?? new Map<number, string>();
      const workerView = fdLinks('self', tid) ?? new Map<number, string>();
      const lfdVisibleToWorker = socketInode(workerView.get(tlfd)) !== null && workerView.get(tlfd) === mainView.get(tlfd);
      const cfdVisibleToMain =
        socketInode(mainView.get(start.fd)) !== null && mainView.get(start.fd) === workerView.get(start.fd);
      say(
        `   /proc/self/task lists tid ${tid}: ${workerInTask ? 'yes' : 'no'}. /proc/self/task/${tid}/fd/${tlfd} → ${workerView.get(tlfd) ?? '-'} and /proc/self/fd/${tlfd} → ${mainView.get(tlfd) ?? '-'}: the worker "has" lfd. /proc/self/fd/${start.fd} → ${mainView.get(start.fd) ?? '-'}: the main thread "has" the worker's cfd.`,
        `   /proc/self/task 中有线程 ${tid}：${workerInTask ? '是' : '否'}。/proc/self/task/${tid}/fd/${tlfd} → ${workerView.get(tlfd) ?? '-'}，/proc/self/fd/${tlfd} → ${mainView.get(tlfd) ?? '-'}：子线程“拥有” lfd。/proc/self/fd/${start.fd} → ${mainView.get(start.fd) ?? '-'}：主线程“拥有”子线程的 cfd。`,
      );

      // close() is process-wide: shown on a descriptor of our own, never on the server's lfd.
      ownFd = openSync('/dev/null', 'r');
      const seenByWorker = fdLinks('self', tid)?.get(ownFd) === '/dev/null';
      closeSync(ownFd);
      const closedFd = ownFd;
      ownFd = undefined;
      const goneForWorker = fdLinks('self', tid)?.get(closedFd) !== '/dev/null';
      const workerStillAlive = tasks().includes(tid);
      say(
        `   Node's main thread opened /dev/null as fd ${closedFd}: the worker's /proc/self/task/${tid}/fd shows it at once: ${seenByWorker ? 'yes' : 'no'}. The main thread closed it: gone for the worker too: ${goneForWorker ? 'yes' : 'no'} (worker still running: ${workerStillAlive ? 'yes' : 'no'}).`,
        `   Node 主线程打开 /dev/null，得到 fd ${closedFd}：子线程的 /proc/self/task/${tid}/fd 立刻就能看到：${seenByWorker ? '是' : '否'}。主线程关闭它：子线程那边也消失了：${goneForWorker ? '是' : '否'}（子线程仍在运行：${workerStillAlive ? '是' : '否'}）。`,
      );
      const echoAfter = await c3.echoes('still here\n');

      const measured = {
        forkMasterPid: master,
        forkChildPid: child1,
        forkLfd: flfd,
        childClosedLfd: ftrace.some((e) => e.call === 'close-lfd' && e.pid === child1 && e.fd === flfd),
        childHoldsListener,
        masterStillHoldsListener,
        newClientServedAfterChildClosedLfd: newClientServed,
        threadLfd: tlfd,
        workerTid: tid,
        workerTidInTask: workerInTask,
        lfdVisibleToWorker,
        workerCfdVisibleToMain: cfdVisibleToMain,
        ownFd: closedFd,
        ownFdSeenByWorker: seenByWorker,
        ownFdGoneForWorkerAfterClose: goneForWorker,
        threadServerStillServes: echoAfter,
      };
      say('Measured:', '测量结果：');
      say(
        `  fork: child closed lfd ${flfd}, master still holds it: ${masterStillHoldsListener ? 'yes' : 'no'}, new client served: ${newClientServed ? 'yes' : 'no'}. threads: worker ${tid} sees lfd ${tlfd}: ${lfdVisibleToWorker ? 'yes' : 'no'}; fd ${closedFd} closed by the main thread vanished for the worker: ${goneForWorker ? 'yes' : 'no'}.`,
        `  fork：子进程关闭 lfd ${flfd}，master 仍持有它：${masterStillHoldsListener ? '是' : '否'}，新客户端得到服务：${newClientServed ? '是' : '否'}。线程：子线程 ${tid} 能看到 lfd ${tlfd}：${lfdVisibleToWorker ? '是' : '否'}；主线程关闭的 fd ${closedFd} 在子线程那边也消失了：${goneForWorker ? '是' : '否'}。`,
      );
      say(
        "Lesson: fork() gives the child copies of the descriptors (point 8): its close(lfd) drops only its copy. Threads share one descriptor table (point 10): a close() on any thread closes it for every thread. A worker that closed lfd would close the server's listener; a main thread that closed cfd would cut off the worker's client. So only the worker closes its cfd, and only the main thread closes lfd.",
        '结论：fork() 让子进程得到描述符的副本（第 8 点）：它 close(lfd) 只关掉自己的副本。线程共享同一张描述符表（第 10 点）：任何线程 close() 都会对所有线程关闭。子线程若关闭 lfd，就关掉了服务器的监听套接字；主线程若关闭 cfd，就切断了子线程的客户端。所以只有子线程关闭自己的 cfd，只有主线程关闭 lfd。',
      );
      const ok =
        measured.childClosedLfd &&
        masterStillHoldsListener &&
        !childHoldsListener &&
        newClientServed &&
        workerInTask &&
        lfdVisibleToWorker &&
        cfdVisibleToMain &&
        seenByWorker &&
        goneForWorker &&
        echoAfter;
      return { ok, measured };
    } finally {
      if (ownFd !== undefined) closeSync(ownFd);
      destroyAll(clients);
      await closeAll([forkServer, threadServer]);
    }
  },
};
