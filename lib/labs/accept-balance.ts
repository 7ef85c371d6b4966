// Lab: who gets the connection (after the lecture: the pools of UNP ch. 30). Connections come one
// at a time, each done before the next, to a pool of workers that are all idle. Blocked in
// accept() on one shared listener, the workers take them in turn: the kernel wakes the one that
// has waited longest (FIFO), so the counts come out even. Waiting in epoll_wait() with
// EPOLLEXCLUSIVE on one shared listener, the first worker to register is woken every time it is
// free: one worker takes almost all. With SO_REUSEPORT every worker has its own listener and the kernel
// picks one by a hash of the connection's addresses and ports: every worker gets some, unevenly.
import type { PosixServer } from '../server/server';
import { childrenOf } from '../util/proc';
import { defineLab, type LabContext } from './context';
import { allAsleep, portOf, waitFor } from './kit';
import type { LabResult } from './types';
import { Waiters } from './waiters';

const WORKERS = 4;
const CONNECTIONS = 40;
const SETTLE_TIMEOUT_MS = 3000;

export const acceptBalanceLab = defineLab({
  name: 'accept-balance',
  summary: {
    en: `${CONNECTIONS} connections one at a time to ${WORKERS} idle workers: blocking accept() takes turns (even counts), epoll_wait() with EPOLLEXCLUSIVE wakes the same worker (one takes nearly all), SO_REUSEPORT hashes (every worker some)`,
    zh: `${CONNECTIONS} 个连接一次一个地来到 ${WORKERS} 个空闲 worker：阻塞的 accept() 轮流接（数目均匀），带 EPOLLEXCLUSIVE 的 epoll_wait() 总是唤醒同一个 worker（一个几乎包揽），SO_REUSEPORT 按哈希分（每个都有一些）`,
  },
  async run(lab) {
    const fifo = await preforkWorkersTakeTurnsInAccept(lab);
    await lab.closeAll();
    const epoll = await epollWakesTheSameWorker(lab);
    await lab.closeAll();
    const reuseport = await reuseportHashesEachConnection(lab);
    return verdict(lab, fifo, epoll, reuseport);
  },
});

/** Connections accepted by each worker, by its index. */
type PerWorker = number[];

/**
 * CONNECTIONS clients, one at a time, to a pool server: each is echoed, closed by the client, and
 * its disconnect seen; then every worker is let go back to sleep (in accept() or epoll_wait())
 * before the next, so that all are idle when it comes.
 */
async function oneAtATime(lab: LabContext, server: PosixServer): Promise<PerWorker> {
  let disconnected = 0;
  server.on('disconnect', () => disconnected++);
  const workers = childrenOf(server.pid).map((c) => c.pid);
  if (workers.length !== WORKERS)
    throw new Error(`${server.model} server ${server.pid} has ${workers.length} workers, not ${WORKERS}`);
  await allAsleep(workers, SETTLE_TIMEOUT_MS, `the ${server.model} workers to wait`);
  for (let i = 0; i < CONNECTIONS; i++) {
    const client = await lab.client(portOf(server));
    if (!(await client.echoes(`hello ${i}\n`)))
      throw new Error(`connection ${i + 1} to the ${server.model} server was not echoed`);
    client.end();
    await client.closedByPeer();
    client.destroy();
    await waitFor(() => disconnected === i + 1, SETTLE_TIMEOUT_MS, `the disconnect of connection ${i + 1}`);
    await allAsleep(workers, SETTLE_TIMEOUT_MS, `the ${server.model} workers to wait again`);
  }
  return server.stats().perWorker;
}

/** prefork, acceptLock 'none': every idle worker blocked in accept() on the shared listener. */
async function preforkWorkersTakeTurnsInAccept(lab: LabContext): Promise<PerWorker> {
  const server = await lab.server({ model: 'prefork', acceptLock: 'none', workers: WORKERS });
  const counts = await oneAtATime(lab, server);
  lab.say(
    `1) prefork, acceptLock 'none' (master ${server.pid}, ${WORKERS} workers blocked in accept() on the one listener): ${CONNECTIONS} connections one at a time, each echoed and closed before the next. Accepted per worker (stats().perWorker): [${counts.join(', ')}].`,
    `1) prefork，acceptLock 'none'（master ${server.pid}，${WORKERS} 个 worker 阻塞在同一个监听套接字的 accept() 里）：${CONNECTIONS} 个连接一次一个，每个回显并关闭后才来下一个。每个 worker accept 的连接数（stats().perWorker）：[${counts.join(', ')}]。`,
  );
  return counts;
}

/** lab-herd --wait exclusive: each worker in its own epoll_wait() on the shared listener. */
async function epollWakesTheSameWorker(lab: LabContext): Promise<PerWorker> {
  const waiters = await Waiters.start(lab, 'exclusive', WORKERS);
  const run = await waiters.connectOneAtATime(lab, CONNECTIONS);
  const counts = run.children.map((c) => c.accepted);
  lab.say(
    `2) ${WORKERS} workers, each in epoll_wait() on its own epoll instance holding the shared listener with EPOLLEXCLUSIVE, as nginx's workers (native/labs/herd.c, lab-herd --wait exclusive, parent ${waiters.program.pid}; worker 0 registered first, worker ${WORKERS - 1} last); each connection is accepted and closed. Accepted per worker: [${counts.join(', ')}].`,
    `2) ${WORKERS} 个 worker，各自在自己的 epoll 实例上 epoll_wait()，实例里以 EPOLLEXCLUSIVE 注册了共享的监听套接字，如同 nginx 的 worker（native/labs/herd.c，lab-herd --wait exclusive，父进程 ${waiters.program.pid}；worker 0 最先注册，worker ${WORKERS - 1} 最后）；每个连接被 accept 后即关闭。每个 worker accept 的连接数：[${counts.join(', ')}]。`,
  );
  return counts;
}

/** reuseport: each worker its own SO_REUSEPORT listener and epoll loop. */
async function reuseportHashesEachConnection(lab: LabContext): Promise<PerWorker> {
  const server = await lab.server({ model: 'reuseport', workers: WORKERS });
  const counts = await oneAtATime(lab, server);
  lab.say(
    `3) reuseport (master ${server.pid}, ${WORKERS} workers, each with its own SO_REUSEPORT listener on the same port and its own epoll loop): ${CONNECTIONS} connections one at a time, from a new client port each. Accepted per worker: [${counts.join(', ')}].`,
    `3) reuseport（master ${server.pid}，${WORKERS} 个 worker，各有一个绑定同一端口的 SO_REUSEPORT 监听套接字和自己的 epoll 循环）：${CONNECTIONS} 个连接一次一个，每个来自新的客户端端口。每个 worker accept 的连接数：[${counts.join(', ')}]。`,
  );
  return counts;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const spread = (xs: number[]) => Math.max(...xs) - Math.min(...xs);

function verdict(lab: LabContext, fifo: PerWorker, epoll: PerWorker, reuseport: PerWorker): LabResult {
  const topShare = Math.round((100 * Math.max(...epoll)) / CONNECTIONS);
  const topWorker = epoll.indexOf(Math.max(...epoll));
  const measured = {
    workers: WORKERS,
    connections: CONNECTIONS,
    acceptPerWorker: fifo.join(','),
    acceptSpread: spread(fifo),
    epollExclusivePerWorker: epoll.join(','),
    epollExclusiveTopSharePct: topShare,
    epollExclusiveTopWorker: topWorker,
    reuseportPerWorker: reuseport.join(','),
    reuseportSpread: spread(reuseport),
    reuseportIdleWorkers: reuseport.filter((n) => n === 0).length,
  };
  lab.say('Measured:', '测量结果：');
  lab.say(
    `  accepted per worker, ${CONNECTIONS} connections one at a time: blocking accept() [${fifo.join(', ')}] (max − min ${measured.acceptSpread}); epoll_wait() with EPOLLEXCLUSIVE [${epoll.join(', ')}] (the busiest, worker ${topWorker}, took ${topShare}%); SO_REUSEPORT [${reuseport.join(', ')}] (max − min ${measured.reuseportSpread}, ${measured.reuseportIdleWorkers} workers without any).`,
    `  ${CONNECTIONS} 个连接一次一个时每个 worker accept 的数目：阻塞 accept() [${fifo.join(', ')}]（最大 − 最小 ${measured.acceptSpread}）；带 EPOLLEXCLUSIVE 的 epoll_wait() [${epoll.join(', ')}]（最忙的 worker ${topWorker} 拿走 ${topShare}%）；SO_REUSEPORT [${reuseport.join(', ')}]（最大 − 最小 ${measured.reuseportSpread}，${measured.reuseportIdleWorkers} 个 worker 一个也没有）。`,
  );
  lab.say(
    "Lesson: how a pool shares connections is decided by the kernel's queue, not by the pool. Sleepers in accept() are queued at the tail and woken from the head: a worker that is done queues behind the others, so idle workers take turns (FIFO) — prefork with no lock is round-robin for free. EPOLLEXCLUSIVE entries stay on the listener's queue in the order they registered, and the first one whose worker is waiting is woken: on this kernel the first to register — not the last to wait (LIFO) — takes the connection whenever it is free, the others stay idle (warm caches, but one worker can carry the load while the others sleep: what nginx users see as one busy worker). SO_REUSEPORT gives each worker its own listener and its own accept queue, chosen by a hash of the connection's addresses and ports: no shared queue and no herd, and a spread that is even only on average — a connection hashed to a worker that is slow to accept waits in that worker's queue, even while others are idle.",
    '结论：池里的进程怎样分担连接，由内核的队列决定，而不是由池决定。accept() 的睡眠者排在队尾、从队头唤醒：忙完的 worker 排到其他人后面，空闲的 worker 轮流接（FIFO）—— 不加锁的 prefork 天然就是轮转。EPOLLEXCLUSIVE 的等待项按注册顺序留在监听套接字的队列里，唤醒的是第一个正在等待的 worker：在这个内核上，是最先注册的那个 —— 而不是最后开始等待的（LIFO）—— 只要它有空，连接总是给它，其余的一直空闲（缓存是热的，但可能一个 worker 扛下全部负载而其他人在睡：nginx 用户看到的“只有一个 worker 忙”）。SO_REUSEPORT 让每个 worker 有自己的监听套接字和自己的 accept 队列，按连接的地址和端口的哈希来选：没有共享队列也没有惊群，分布只是平均意义上均匀 —— 被哈希到一个迟迟不 accept 的 worker 的连接，只能在它的队列里等，哪怕别的 worker 闲着。',
  );
  // FIFO: with every worker idle before each connection, the turns are exact (max − min ≤ 1).
  // EPOLLEXCLUSIVE: one worker ≥ 80 %, the first registered (lab-herd starts them in order). Reuseport: a hash over 40 connections leaves a worker
  // empty with probability 4·(3/4)^40 ≈ 4·10⁻⁵.
  const ok =
    sum(fifo) === CONNECTIONS &&
    fifo.length === WORKERS &&
    spread(fifo) <= 1 &&
    sum(epoll) === CONNECTIONS &&
    topShare >= 80 &&
    topWorker === 0 &&
    sum(reuseport) === CONNECTIONS &&
    reuseport.length === WORKERS &&
    measured.reuseportIdleWorkers === 0;
  return { ok, measured };
}
