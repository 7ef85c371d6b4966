// Lab: the thundering herd (UNP 30.6, and what came after). N preforked children wait for a
// connection on one shared listener. Blocked in accept(), the kernel wakes one of them per
// connection: the herd UNP saw in accept() is gone from Linux. Each in its own epoll_wait() on the
// listener, every one of them is woken per connection and all but one find nothing: the herd is
// back. EPOLLEXCLUSIVE wakes one. A lock around accept() (UNP 30.7–30.8) keeps one child in
// accept() but adds wake-ups: two per connection with a process-shared mutex (the holder, and the
// waiter its unlock wakes), about one per child with UNP's fcntl lock (its unlock wakes every
// child blocked on it). Wake-ups are counted, not timed: each child's voluntary context switches
// in /proc, around connections made one at a time.
import { defineLab, type LabContext } from './context';
import type { LabResult } from './types';
import { Waiters, type WaitersRun, type WaitKind } from './waiters';

const CHILDREN = 4;
const CONNECTIONS = 20;

export const thunderingHerdLab = defineLab({
  name: 'thundering-herd',
  summary: {
    en: `${CHILDREN} children wait on one listener: blocked in accept() one is woken per connection; each in epoll_wait() all ${CHILDREN} are (the herd); EPOLLEXCLUSIVE wakes one; a lock around accept() wakes two (mutex) or more (fcntl)`,
    zh: `${CHILDREN} 个子进程等待同一个监听套接字：阻塞在 accept() 里，每个连接只唤醒一个；各自在 epoll_wait() 里，${CHILDREN} 个全被唤醒（惊群）；EPOLLEXCLUSIVE 只唤醒一个；accept() 外加锁唤醒两个（互斥锁）或更多（fcntl 锁）`,
  },
  async run(lab) {
    const accept = await arrangement(lab, 'accept');
    const epoll = await arrangement(lab, 'epoll');
    const exclusive = await arrangement(lab, 'exclusive');
    const mutex = await arrangement(lab, 'mutex');
    const lock = await arrangement(lab, 'lock');
    return verdict(lab, { accept, epoll, exclusive, mutex, lock });
  },
});

const HOW: Record<WaitKind, { en: string; zh: string }> = {
  accept: {
    en: 'a) every child blocked in accept() on the shared listener, no lock (UNP 30.6)',
    zh: 'a) 每个子进程都阻塞在共享监听套接字的 accept() 里，不加锁（UNP 30.6）',
  },
  epoll: {
    en: 'b) the listener non-blocking; each child has its own epoll instance with the listener in it, and loops on epoll_wait() then accept()',
    zh: 'b) 监听套接字设为非阻塞；每个子进程有自己的 epoll 实例，把监听套接字加进去，循环 epoll_wait() 然后 accept()',
  },
  exclusive: {
    en: 'c) as b), but the listener registered with EPOLLEXCLUSIVE (Linux 4.5)',
    zh: 'c) 同 b)，但注册监听套接字时带 EPOLLEXCLUSIVE（Linux 4.5）',
  },
  mutex: {
    en: "d) a process-shared mutex around a blocking accept() (UNP 30.8, prefork's acceptLock 'mutex'): one child in accept(), the others wait for the mutex",
    zh: "d) 在阻塞的 accept() 外加进程间共享的互斥锁（UNP 30.8，prefork 的 acceptLock 'mutex'）：一个子进程在 accept() 里，其余的等锁",
  },
  lock: {
    en: "e) a file lock around a blocking accept() (fcntl F_SETLKW, UNP 30.7, prefork's acceptLock 'flock'): one child in accept(), the others wait for the lock",
    zh: "e) 在阻塞的 accept() 外加文件锁（fcntl F_SETLKW，UNP 30.7，prefork 的 acceptLock 'flock'）：一个子进程在 accept() 里，其余的等锁",
  },
};

/** One arrangement: lab-herd --wait `kind`, CONNECTIONS connections one at a time, counted. */
async function arrangement(lab: LabContext, kind: WaitKind): Promise<WaitersRun> {
  const waiters = await Waiters.start(lab, kind, CHILDREN);
  const run = await waiters.connectOneAtATime(lab, CONNECTIONS);
  await lab.closeAll();
  const woken = run.children.map((c) => c.wakeups).join(', ');
  const accepted = run.children.map((c) => c.accepted).join(', ');
  lab.say(
    `${HOW[kind].en} — lab-herd --wait ${kind}, children ${waiters.pids.join(', ')}:`,
    `${HOW[kind].zh} —— lab-herd --wait ${kind}，子进程 ${waiters.pids.join('、')}：`,
  );
  lab.say(
    `   ${CONNECTIONS} connections, one at a time: the children were woken [${woken}] times (voluntary_ctxt_switches in /proc/<pid>/status), ${run.wakeupsPerConnection} per connection; they accepted [${accepted}]; accept() failed with EAGAIN ${run.eagain} times.`,
    `   ${CONNECTIONS} 个连接，一次一个：子进程分别被唤醒 [${woken}] 次（/proc/<pid>/status 中的 voluntary_ctxt_switches），平均每个连接 ${run.wakeupsPerConnection} 次；各自 accept 了 [${accepted}] 个；accept() 因 EAGAIN 失败 ${run.eagain} 次。`,
  );
  return run;
}

type Runs = Record<WaitKind, WaitersRun>;

function verdict(lab: LabContext, runs: Runs): LabResult {
  const { accept, epoll, exclusive, mutex, lock } = runs;
  const all = Object.values(runs);
  const measured = {
    children: CHILDREN,
    connections: CONNECTIONS,
    acceptWakeupsPerConnection: accept.wakeupsPerConnection,
    epollWakeupsPerConnection: epoll.wakeupsPerConnection,
    exclusiveWakeupsPerConnection: exclusive.wakeupsPerConnection,
    mutexWakeupsPerConnection: mutex.wakeupsPerConnection,
    lockWakeupsPerConnection: lock.wakeupsPerConnection,
    accepted: all.map((r) => r.accepted).join(','),
    acceptEagain: accept.eagain,
    epollEagain: epoll.eagain,
    exclusiveEagain: exclusive.eagain,
  };
  lab.say('Measured:', '测量结果：');
  lab.say(
    `  wake-ups per connection with ${CHILDREN} children waiting: blocking accept() ${accept.wakeupsPerConnection}, epoll_wait() ${epoll.wakeupsPerConnection}, epoll_wait() with EPOLLEXCLUSIVE ${exclusive.wakeupsPerConnection}, mutex around accept() ${mutex.wakeupsPerConnection}, fcntl lock around accept() ${lock.wakeupsPerConnection}. Connections accepted: ${measured.accepted} of ${CONNECTIONS} each; EAGAIN from accept() (woken for nothing, and back in user space): ${epoll.eagain} with epoll_wait(), ${exclusive.eagain} with EPOLLEXCLUSIVE.`,
    `  ${CHILDREN} 个子进程等待时，每个连接的唤醒次数：阻塞 accept() ${accept.wakeupsPerConnection}，epoll_wait() ${epoll.wakeupsPerConnection}，带 EPOLLEXCLUSIVE 的 epoll_wait() ${exclusive.wakeupsPerConnection}，accept() 外加互斥锁 ${mutex.wakeupsPerConnection}，accept() 外加 fcntl 锁 ${lock.wakeupsPerConnection}。被 accept 的连接：依次 ${measured.accepted} 个（每种 ${CONNECTIONS} 个）；accept() 返回 EAGAIN（白白被唤醒并回到用户态）：epoll_wait() ${epoll.eagain} 次，EPOLLEXCLUSIVE ${exclusive.eagain} 次。`,
  );
  lab.say(
    "Lesson: the thundering herd is about how sleepers are queued, not about accept() itself. Linux queues the sleepers of accept() exclusively: one connection, one child woken — the herd UNP measured in accept() is gone, and prefork with no lock (acceptLock 'none') pays nothing for it. An epoll instance per child puts one entry per child on the listener's wait queue, and every connection wakes every entry: all N wake, one wins accept(), the others find nothing (in the kernel, or as accept()'s EAGAIN) — the herd is back for event loops sharing a listener; EPOLLEXCLUSIVE (or one listener per worker, SO_REUSEPORT) sends it away. A lock around accept() was UNP's cure for the herd; here it only adds wake-ups: the holder wakes for the connection and the lock wakes the next child — two per connection with a process-shared mutex (a futex wakes one), and about one per child with the fcntl lock, whose unlock wakes the children blocked on it.",
    "结论：惊群取决于睡眠者如何排队，而不在于 accept() 本身。Linux 把 accept() 的睡眠者以独占方式排队：一个连接只唤醒一个子进程 —— UNP 在 accept() 上测到的惊群已经消失，不加锁的 prefork（acceptLock 'none'）不为此付出任何代价。每个子进程一个 epoll 实例，就在监听套接字的等待队列上为每个子进程挂一项，每个连接都唤醒每一项：N 个全醒，一个赢得 accept()，其余一无所获（在内核里，或是 accept() 返回 EAGAIN）—— 共享监听套接字的事件循环又遇到了惊群；EPOLLEXCLUSIVE（或每个 worker 一个监听套接字，SO_REUSEPORT）可以消除它。在 accept() 外加锁是 UNP 治惊群的办法；在这里它只会增加唤醒：持锁者为连接醒来，锁再唤醒下一个子进程 —— 进程间共享的互斥锁每个连接两次（futex 只唤醒一个），fcntl 锁则差不多每个子进程一次，因为它解锁时会唤醒所有阻塞在锁上的子进程。",
  );
  // Counted, not timed: a child asleep adds exactly one switch per wake-up, and each connection
  // is waited for until every child is asleep again. The thresholds leave room for a stray
  // wake-up either way; the fcntl lock wakes 2 or N per connection (Linux queues some lock
  // waiters behind others), the mutex exactly 2.
  const ok =
    all.every((r) => r.accepted === CONNECTIONS) &&
    accept.wakeupsPerConnection <= 1.5 &&
    accept.eagain === 0 &&
    epoll.wakeupsPerConnection >= CHILDREN - 1 &&
    exclusive.wakeupsPerConnection <= 1.5 &&
    mutex.wakeupsPerConnection >= 1.5 &&
    mutex.wakeupsPerConnection <= 2.5 &&
    lock.wakeupsPerConnection >= 2.5;
  return { ok, measured };
}
