// One trace event → one line a person can read next to the lecture: when (relative to the first
// call), who (which process, or which thread), what (the call with its real descriptors, pids and
// result) and why (a short note that names the lecture point it makes visible), in English or
// Chinese. Used by `posix-servers serve --trace` and by the labs.
import type { Peer, TraceCall, TraceEvent } from '../server/events';
import { TRACE_CALLS } from '../server/events';
import type { Lang } from '../util/i18n';
import { errnoName, signalName } from '../util/os-names';
import { readStat } from '../util/proc';

/**
 * Who made a call. Node's own process makes socket/bind/listen and runs the thread and iterative
 * servers; the fork model's master accepts and forks; a child serves one connection. A pool
 * worker (prefork, reuseport) is a child of the master too; its records carry `worker`.
 */
type TraceRole = 'in-process' | 'master' | 'child';

/** What formatTrace may be told about the server, to name the actor without guessing. */
interface TraceContext {
  /** The master of a process model (PosixServer.pid). Any other pid but Node's is then a child. */
  masterPid?: number;
  /** The process that started the server. Default: this process. */
  nodePid?: number;
}

/**
 * Variants of a call whose meaning depends on who made it or on its arguments; every TRACE_CALLS
 * entry has a note of its own as well.
 */
type NoteKey =
  | TraceCall
  | 'close-lfd:stop'
  | 'shutdown:conn'
  | 'slots-full:fork'
  | 'close-conn:thread'
  | 'close-conn:iterative'
  | 'listen:reuseport'
  | 'mutex-lock:ownerdead'
  | 'waitpid:pool'
  | 'pthread_create:pool'
  | 'worker-accept:thread'
  | 'mutex-lock:thread'
  | 'mutex-unlock:thread'
  | 'close-conn:pool'
  | 'close-conn:epoll'
  | 'close-conn:uring'
  | 'epoll_wait:thread';

export const TRACE_NOTES: Record<Lang, Record<NoteKey, string>> = {
  en: {
    socket: 'socket() creates the listening socket, lfd (point 6, step 1)',
    bind: 'bind() ties lfd to the IP address and port (point 6, step 2)',
    listen: 'listen() makes lfd passive; the kernel completes handshakes and queues them, up to the backlog (points 1, 6)',
    accept: 'accept() takes one finished three-way handshake off the queue: a new descriptor, cfd, for that client (points 1, 6)',
    'accept-eintr': 'a blocking call interrupted by a signal is not an error: retry (point 2)',
    fork: 'one child per connection: parent closes cfd, child closes lfd (lecture point 5)',
    'close-cfd': 'the parent closes cfd: the child has its own copy and serves the client (point 5)',
    'close-lfd': 'the child closes lfd: it only talks to its one client; the parent still listens (points 5, 8)',
    'close-lfd:stop': 'the server closes lfd at stop: no new connections, the port is free (point 6, the final close(lfd))',
    'child-exit': 'the child must exit after close(cfd), or it would return to accept() and fork children itself (point 5)',
    waitpid: 'the parent reaps the child in its SIGCHLD handler: no zombie is left behind (point 7, homework 1)',
    pthread_create:
      'one thread per connection; its argument must be its own (an INFO slot), not &cfd, which the next accept() overwrites (points 9–11)',
    pthread_detach: 'detached: nobody joins the thread; its resources are freed when it returns (point 9)',
    'worker-start':
      'the worker takes cfd from its argument; threads share one descriptor table, nothing is copied (points 9, 10)',
    'slots-full': 'every INFO slot is in use: refuse the connection, close(cfd) at once (point 11, i == 100)',
    'slots-full:fork': 'maxClients connections are being served (fork: live children): refuse the connection, close(cfd) at once',
    shutdown: 'shutdown(lfd) wakes the blocked accept() so the server can stop',
    'shutdown:conn': "close()'s timeout is over: the server ends this connection itself",
    'close-conn': 'read() returned 0 (the client closed) or failed: close(cfd) ends the connection (point 5)',
    'close-conn:thread': 'read() returned 0 or failed: the worker closes its own cfd and frees its slot (points 9, 11)',
    'close-conn:iterative': 'read() returned 0 or failed: close(cfd), and only now accept() the next client (point 3)',
    exec: "the master is a small program of its own (fork + execve, as node-pty starts a shell): each connection's fork() then copies it, not all of Node; descriptors survive execve (point 8)",
    'pool-fork':
      'the pool is forked once, at start (UNP 30.6): no fork() per connection, each worker serves client after client; a worker that dies is replaced at its index',
    'worker-accept':
      'each worker of the pool calls accept() itself: the kernel gives the connection to one sleeping worker (prefork), or to the listener its hash picks (reuseport)',
    'lock-file':
      'the lock file is made with mkstemp() and unlinked at once (UNP 30.7): every worker holds its descriptor, nothing is left on disk',
    'fcntl-lock':
      'only the lock holder sleeps in accept(), the others wait in fcntl(F_SETLKW) (UNP 30.7); a record lock belongs to its process, so the kernel releases it if the holder dies',
    'fcntl-unlock': 'the lock is released as soon as accept() returns: the next worker may accept while this one serves',
    'mutex-lock': 'a process-shared mutex in the shared page lets one worker at a time into accept() (UNP 30.8)',
    'mutex-lock:ownerdead':
      'EOWNERDEAD: the last holder died holding the mutex; a robust mutex is made usable again with pthread_mutex_consistent(), and this worker holds it',
    'mutex-unlock': 'the mutex is released as soon as accept() returns',
    sendmsg:
      'the master passes the descriptor to an idle worker over a Unix socket: sendmsg() with SCM_RIGHTS (UNP 30.9); the kernel installs a copy in the worker',
    recvmsg:
      'the worker receives the descriptor with recvmsg(): the same connection, under the number the kernel chose in this process',
    'worker-idle': 'the worker tells the master it is idle again: the master may accept the next client for it',
    'close-node-lfd':
      "Node's listener is closed: every worker listens on a socket of its own, bound to the same address with SO_REUSEPORT",
    'waitpid:pool':
      'a pool worker has exited: SIGCHLD woke the master, which reaps it, reports it and, unless the server is stopping, forks its replacement',
    'listen:reuseport':
      'each worker makes its own listener on the same address and port (SO_REUSEPORT): the kernel spreads new connections over the group by a hash',
    epoll_wait: 'one process, many clients: epoll_wait() sleeps until any of its sockets is ready (UNP 6.8, with epoll)',
    epoll_ctl:
      'epoll_ctl() registers a socket, or switches it between EPOLLIN and EPOLLOUT: what a short send() left is kept until the socket can take it',
    'epoll_wait:thread':
      'one thread, many clients: epoll_wait() returns the ready descriptors, and the thread serves each in turn, blocking on none (UNP 6.8, with epoll)',
    epoll_create: 'epoll_create1() makes the set of descriptors the event loop waits on: one thread will serve every client',
    'pthread_create:pool':
      'the pool is created once, at start (or a crashed thread is replaced): no thread is created per connection (UNP 30.11)',
    'worker-accept:thread':
      'a pool thread created at start accepts: the client is served by a thread that already existed (points 1, 6; UNP 30.11)',
    'mutex-lock:thread':
      'the pool thread takes the accept mutex: only the thread holding it sleeps in accept(), the others wait for the mutex (UNP 30.11)',
    'mutex-unlock:thread':
      'accept() returned: the mutex is released so that the next idle pool thread can accept; this thread serves the client itself',
    'queue-push':
      'the main thread accepts, puts cfd in the queue and signals the condition variable: an idle pool thread wakes up (UNP 30.12)',
    'queue-pop': 'an idle pool thread woken by the condition variable takes cfd from the queue and serves it',
    pthread_join: 'close(): the pool thread has returned and pthread_join collects it, so no thread outlives the server',
    'close-conn:pool':
      'read() returned 0 or failed: the pool thread closes cfd and goes back for the next client; the thread lives on',
    'close-conn:epoll':
      'read() returned 0 or failed: close(cfd) also takes it out of the epoll set; the loop goes on serving the others',
    'door-pass':
      "the door's rules (allow/deny, maxPerSource, maxConnectionsPerSecond) let the client in: only now is a process or thread spent on it",
    'door-refuse':
      'refused at the door, right after accept(): closed at once, before any fork() or thread (xinetd: only_from, per_source, cps)',
    dup2: "the connection becomes the program's stdin and stdout (dup2 onto 0 and 1): inetd's trick, the program never knows it talks to a socket",
    execve:
      'the child becomes the program: the same pid and descriptors (the connection at 0 and 1), a new program image (inetd, tcpserver; point 8: descriptors survive execve)',
    io_uring_setup:
      'io_uring_setup() makes the two rings this process shares with the kernel: requests go into the submission queue, results come back in the completion queue',
    io_uring_register:
      'io_uring_register() lends the kernel a ring of receive buffers (a receive takes one when bytes arrive), or makes the server thread the ring’s only submitter',
    io_uring_enter:
      'one io_uring_enter() hands the kernel every request queued this turn and comes back with every completion ready: no question about readiness, no recv() or send() of its own',
    'uring-arm':
      'a multishot request is armed once and completes again and again (accept: each client; receive: each arrival of bytes) until something ends it; then it is armed again',
    'uring-cancel':
      'IORING_OP_ASYNC_CANCEL: a request keeps its socket in use even after close(), so it is cancelled first; a client that does not read its echo is not received from meanwhile (backpressure)',
    'uring-cqe':
      'a completion: the kernel did the work (accepted, received into a lent buffer, sent) and says so in the completion queue; more: the multishot request goes on',
    'close-conn:uring':
      'the connection is over and the ring holds no request on it any more: close(cfd); the loop goes on serving the others',
  },
  zh: {
    socket: 'socket() 创建监听套接字，得到 lfd（第 6 点，步骤 1）',
    bind: 'bind() 把 lfd 和 IP、端口绑定（第 6 点，步骤 2）',
    listen: 'listen() 设置监听；三次握手由内核完成并排队，最多 backlog 个（第 1、6 点）',
    accept: 'accept() 从队列中取出一个已完成三次握手的连接，返回新的通信描述符 cfd（第 1、6 点）',
    'accept-eintr': '阻塞函数被信号打断，errno=EINTR，不应视为错误：重新调用（第 2 点）',
    fork: '每个连接一个子进程：父进程关闭 cfd，子进程关闭 lfd（讲义第 5 点）',
    'close-cfd': '父进程关闭 cfd：子进程有自己的一份副本，由它收发数据（第 5 点）',
    'close-lfd': '子进程关闭 lfd：它只和自己的客户端通信；父进程仍在监听（第 5、8 点）',
    'close-lfd:stop': '服务器停止时关闭 lfd：不再接受新连接，端口被释放（第 6 点，最后的 close(lfd)）',
    'child-exit': '子进程关闭 cfd 后必须退出，否则会回到 accept() 再去创建子进程（第 5 点）',
    waitpid: '父进程在 SIGCHLD 信号处理函数中回收子进程：不留僵尸进程（第 7 点，作业 1）',
    pthread_create:
      '每个连接一个线程；传给它的参数必须是它自己的（INFO 槽位），而不是会被下一次 accept() 覆盖的 &cfd（第 9–11 点）',
    pthread_detach: '设置分离属性：无需 pthread_join，线程返回时资源自动释放（第 9 点）',
    'worker-start': '子线程从参数中取得 cfd；线程共享同一张文件描述符表，不是复制（第 9、10 点）',
    'slots-full': 'INFO 数组的槽位全部占用：拒绝新连接，立即 close(cfd)（第 11 点，i == 100）',
    'slots-full:fork': '正在服务的连接已达 maxClients 个（fork：存活的子进程）：拒绝新连接，立即 close(cfd)',
    shutdown: 'shutdown(lfd) 唤醒阻塞的 accept()，服务器得以停止',
    'shutdown:conn': 'close() 的等待时间已到：服务器主动结束这个连接',
    'close-conn': 'read() 返回 0（客户端已关闭）或出错：close(cfd)，连接结束（第 5 点）',
    'close-conn:thread': 'read() 返回 0 或出错：子线程关闭自己的 cfd 并释放槽位（第 9、11 点）',
    'close-conn:iterative': 'read() 返回 0 或出错：close(cfd)，然后才 accept() 下一个客户端（第 3 点）',
    exec: 'master 是一个独立的小程序（fork + execve，和 node-pty 启动 shell 一样）：之后每个连接的 fork() 复制的是它，而不是整个 Node；文件描述符在 execve 之后仍然有效（第 8 点）',
    'pool-fork':
      '进程池在启动时一次性 fork（UNP 30.6）：不再每个连接 fork 一次，每个工作进程依次服务一个又一个客户端；死掉的工作进程在原编号上被替换',
    'worker-accept':
      '池中的每个工作进程自己调用 accept()：内核把连接交给一个正在睡眠的工作进程（prefork），或交给按哈希选中的那个监听套接字（reuseport）',
    'lock-file': '用 mkstemp() 创建锁文件并立即 unlink（UNP 30.7）：每个工作进程都持有它的描述符，磁盘上不留任何东西',
    'fcntl-lock':
      '只有持锁者在 accept() 中睡眠，其他工作进程在 fcntl(F_SETLKW) 中等待（UNP 30.7）；记录锁属于进程，持锁者死掉时内核会释放它',
    'fcntl-unlock': 'accept() 一返回就释放锁：这个工作进程处理客户端时，下一个就可以 accept',
    'mutex-lock': '共享页中的进程间互斥锁让工作进程一次一个地进入 accept()（UNP 30.8）',
    'mutex-lock:ownerdead':
      'EOWNERDEAD：上一个持有者持锁时死掉了；健壮互斥锁用 pthread_mutex_consistent() 恢复可用，现在由这个工作进程持有',
    'mutex-unlock': 'accept() 一返回就释放互斥锁',
    sendmsg:
      'master 通过 Unix 域套接字把描述符交给一个空闲的工作进程：sendmsg() 携带 SCM_RIGHTS（UNP 30.9）；内核在工作进程中装入一份副本',
    recvmsg: '工作进程用 recvmsg() 收到描述符：同一个连接，编号由内核在本进程中选定',
    'worker-idle': '工作进程告诉 master 它又空闲了：master 可以为它 accept 下一个客户端',
    'close-node-lfd': '关闭 Node 的监听套接字：每个工作进程都在自己的套接字上监听，它们用 SO_REUSEPORT 绑定同一个地址',
    'waitpid:pool': '池中的工作进程退出了：SIGCHLD 唤醒 master，由它回收、报告，并且（除非服务器正在停止）fork 一个替代者',
    'listen:reuseport':
      '每个工作进程在同一地址和端口上创建自己的监听套接字（SO_REUSEPORT）：内核按哈希把新连接分给组里的各个套接字',
    epoll_wait: '一个进程，多个客户端：epoll_wait() 睡眠，直到任一套接字就绪（UNP 6.8，用 epoll）',
    epoll_ctl: 'epoll_ctl() 登记套接字，或在 EPOLLIN 与 EPOLLOUT 之间切换：send() 没写完的部分先保存，等套接字可写时再发',
    'epoll_wait:thread':
      '一个线程，多个客户端：epoll_wait() 返回就绪的描述符，线程依次处理每一个，不在任何一个上阻塞（UNP 6.8，用 epoll）',
    epoll_create: 'epoll_create1() 创建事件循环所等待的描述符集合：一个线程将服务所有客户端',
    'pthread_create:pool': '线程池在启动时一次创建（或替换一个崩溃的线程）：不会为每个连接创建线程（UNP 30.11）',
    'worker-accept:thread': '启动时创建的线程池线程调用 accept()：客户端由已经存在的线程处理（第 1、6 点；UNP 30.11）',
    'mutex-lock:thread': '线程池线程获得 accept 互斥锁：只有持锁的线程阻塞在 accept() 中，其余线程等待这把锁（UNP 30.11）',
    'mutex-unlock:thread': 'accept() 已返回：释放互斥锁，下一个空闲线程才能 accept；本线程自己处理这个客户端',
    'queue-push': '主线程 accept 后把 cfd 放入队列，并通过条件变量唤醒一个空闲的线程池线程（UNP 30.12）',
    'queue-pop': '被条件变量唤醒的空闲线程从队列中取出 cfd 并处理它',
    pthread_join: 'close()：线程池线程已返回，pthread_join 回收它，服务器结束后不留下任何线程',
    'close-conn:pool': 'read() 返回 0 或出错：线程池线程关闭 cfd，回去等待下一个客户端；线程继续存在',
    'close-conn:epoll': 'read() 返回 0 或出错：close(cfd) 同时把它从 epoll 集合中移除；事件循环继续服务其他客户端',
    'door-pass': '门禁规则（allow/deny、maxPerSource、maxConnectionsPerSecond）放行了这个客户端：此后才为它创建进程或线程',
    'door-refuse':
      '在门口拒绝：accept() 之后立即 close(cfd)，不为它 fork() 或创建线程（相当于 xinetd 的 only_from、per_source、cps）',
    dup2: '连接成为程序的标准输入和标准输出（dup2 到 0 和 1）：这是 inetd 的做法，程序并不知道自己在和套接字通信',
    execve:
      '子进程变成这个程序：pid 和文件描述符都不变（连接在 0 和 1 上），换成新的程序映像（inetd、tcpserver；第 8 点：文件描述符在 execve 之后仍然有效）',
    io_uring_setup: 'io_uring_setup() 创建本进程与内核共享的两个环：请求放进提交队列，结果从完成队列返回',
    io_uring_register:
      'io_uring_register() 把一环接收缓冲区借给内核（数据到达时，接收请求取用其中一个），或让服务器线程成为这个环唯一的提交者',
    io_uring_enter:
      '一次 io_uring_enter() 把这一轮排好的所有请求交给内核，并带回所有已就绪的完成事件：不必询问谁就绪，也没有单独的 recv() 或 send()',
    'uring-arm':
      '多次触发（multishot）的请求只需提交一次，就会一次又一次地完成（accept：每个客户端；接收：每次数据到达），直到某事结束它；然后重新提交',
    'uring-cancel':
      'IORING_OP_ASYNC_CANCEL：请求在 close() 之后仍会占用套接字，所以要先取消；不读回显的客户端在此期间不再被接收（背压）',
    'uring-cqe':
      '一个完成事件：内核已经做完了工作（接受连接、接收到借出的缓冲区、发送），并写进完成队列；more：这个多次触发的请求还在继续',
    'close-conn:uring': '连接结束，环中也不再有它的请求：close(cfd)；事件循环继续服务其他客户端',
  },
};

/** A raw wait status, decoded as WIFEXITED/WEXITSTATUS/WIFSIGNALED/WTERMSIG do. */
interface WaitStatus {
  exitCode: number | null;
  signal: string | null;
  coreDumped: boolean;
}

export function decodeWaitStatus(status: number): WaitStatus {
  const low = status & 0x7f;
  if (low === 0) return { exitCode: (status >> 8) & 0xff, signal: null, coreDumped: false };
  if (low !== 0x7f) {
    return { exitCode: null, signal: signalName(low) ?? `signal ${low}`, coreDumped: (status & 0x80) !== 0 };
  }
  // Stopped (WIFSTOPPED): waitpid without WUNTRACED never reports it; shown for completeness.
  return { exitCode: null, signal: signalName((status >> 8) & 0xff), coreDumped: false };
}

// Pids seen making calls only a fork master makes (accept, fork, waitpid, shutdown…), so that a
// later close(lfd) by the same pid is known to be the master's at stop, not a child's. Bounded.
const knownMasters: number[] = [];
const KNOWN_MASTERS_MAX = 64;
const MASTER_ONLY: ReadonlySet<TraceCall> = new Set<TraceCall>([
  'exec',
  'accept',
  'accept-eintr',
  'fork',
  'close-cfd',
  'waitpid',
  'shutdown',
  'pool-fork',
  'lock-file',
  'sendmsg',
  'close-node-lfd',
]);

function rememberMaster(pid: number): void {
  if (knownMasters.includes(pid)) return;
  knownMasters.push(pid);
  if (knownMasters.length > KNOWN_MASTERS_MAX) knownMasters.shift();
}

/**
 * Who made the call: Node's process, the master or a child (a pool worker is one). With
 * ctx.masterPid this is exact. Without it only close-lfd is ambiguous (a child's, or the master's at stop: the same
 * record); it is resolved by a pid already seen making master-only calls (events are formatted in
 * order, and the master always traces shutdown before its final close), else by /proc (the master
 * is Node's child, a connection's child is the master's), else it is taken to be a child's.
 */
function traceRole(e: TraceEvent, ctx: TraceContext = {}): TraceRole {
  const nodePid = ctx.nodePid ?? process.pid;
  if (e.pid === nodePid) return 'in-process';
  if (ctx.masterPid !== undefined) return e.pid === ctx.masterPid ? 'master' : 'child';
  if (MASTER_ONLY.has(e.call)) {
    rememberMaster(e.pid);
    return 'master';
  }
  switch (e.call) {
    case 'door-pass':
    case 'door-refuse':
      // The fork master's door; a pool worker's carries its index.
      if (e.worker !== undefined) return 'child';
      rememberMaster(e.pid);
      return 'master';
    case 'close-lfd': {
      if (knownMasters.includes(e.pid)) return 'master';
      const st = readStat(e.pid);
      return st !== null && st.ppid === nodePid ? 'master' : 'child';
    }
    case 'slots-full':
      return 'master';
    default:
      return 'child';
  }
}

function at(p: Peer | undefined): string {
  if (!p) return '?';
  return p.family === 'IPv6' ? `[${p.address}]:${p.port}` : `${p.address}:${p.port}`;
}

/** The note for this event: which lecture point it shows. */
export function traceNote(e: TraceEvent, lang: Lang, ctx: TraceContext = {}): string {
  return TRACE_NOTES[lang][noteKey(e, traceRole(e, ctx))];
}

function noteKey(e: TraceEvent, role: TraceRole): NoteKey {
  // prethread: a pool thread's calls (in Node's process, with its index).
  const poolThread = role === 'in-process' && e.worker !== undefined;
  switch (e.call) {
    case 'pthread_create':
      return poolThread ? 'pthread_create:pool' : 'pthread_create';
    case 'worker-accept':
      return poolThread ? 'worker-accept:thread' : 'worker-accept';
    case 'mutex-unlock':
      return poolThread ? 'mutex-unlock:thread' : 'mutex-unlock';
    case 'epoll_wait':
      return role === 'in-process' ? 'epoll_wait:thread' : 'epoll_wait';
    case 'close-lfd':
      // A pool worker closes a listener only when the server stops (reuseport: its own).
      return role === 'child' && e.worker === undefined ? 'close-lfd' : 'close-lfd:stop';
    case 'listen':
      return e.worker !== undefined ? 'listen:reuseport' : 'listen';
    case 'waitpid':
      return e.worker !== undefined ? 'waitpid:pool' : 'waitpid';
    case 'mutex-lock':
      if (poolThread) return 'mutex-lock:thread';
      return e.errno === 'EOWNERDEAD' ? 'mutex-lock:ownerdead' : 'mutex-lock';
    case 'shutdown':
      return e.id !== 0 || e.slot !== undefined ? 'shutdown:conn' : 'shutdown';
    case 'slots-full':
      return role === 'master' ? 'slots-full:fork' : 'slots-full';
    case 'close-conn':
      if (role !== 'in-process') return 'close-conn';
      if (e.slot !== undefined) return 'close-conn:thread';
      if (e.worker !== undefined) return 'close-conn:pool';
      if (e.result >= TWO_32) return 'close-conn:uring';
      return e.result > 0 ? 'close-conn:epoll' : 'close-conn:iterative';
    default:
      return e.call;
  }
}

function waitText(status: number, lang: Lang): string {
  const w = decodeWaitStatus(status);
  if (w.exitCode !== null) return lang === 'en' ? `exit ${w.exitCode}` : `退出码 ${w.exitCode}`;
  const core = w.coreDumped ? (lang === 'en' ? ', core dumped' : '，产生 core') : '';
  return lang === 'en' ? `killed by ${w.signal}${core}` : `被信号 ${w.signal} 终止${core}`;
}

function failed(e: TraceEvent, lang: Lang): string {
  return lang === 'en' ? ` failed: ${e.errno}` : ` 失败：${e.errno}`;
}

const EPOLL_OPS: Record<number, string> = { 1: 'EPOLL_CTL_ADD', 2: 'EPOLL_CTL_DEL', 3: 'EPOLL_CTL_MOD' };

const TWO_32 = 2 ** 32;

/** A packed uring result (event_record.h): the number above bit 32, and the 32 bits below. */
export function splitResult(result: number): { high: number; low: number } {
  const high = Math.floor(result / TWO_32);
  return { high, low: result - high * TWO_32 };
}

/** What a uring-cqe record says: op (accept, recv, send, cancel), the kernel's result, MORE. */
export function uringCompletion(e: TraceEvent): { op: string; res: number; more: boolean } {
  const { high, low } = splitResult(e.result);
  const ops: Record<number, string> = { 1: 'accept', 2: 'recv', 3: 'send', 4: 'cancel', 5: 'poll' };
  return { op: ops[high >> 8] ?? String(high >> 8), res: low | 0, more: (high & 1) !== 0 };
}

/** io_uring_enter's record: requests submitted, completions ready. */
export function uringEnter(e: TraceEvent): { submitted: number; completions: number } {
  const { high, low } = splitResult(e.result);
  return { submitted: low, completions: high };
}

const URING_ARMS: Record<number, { en: string; zh: string }> = {
  1: { en: 'multishot accept', zh: '多次触发的 accept' },
  2: { en: 'multishot receive', zh: '多次触发的接收' },
  3: { en: 'receive (single-shot)', zh: '接收（单次）' },
  4: { en: 'poll until a client is pending (out of descriptors)', zh: '轮询，直到有客户端等待（描述符已用完）' },
  5: { en: 'accept (single-shot: whenFull wait)', zh: 'accept（单次：whenFull wait）' },
  6: {
    en: 'poll for the listener’s hang-up only (full, whenFull wait: close() is still seen)',
    zh: '只轮询监听套接字的挂断（已满，whenFull wait：仍能察觉 close()）',
  },
};

const SETUP_FLAGS: Array<[number, string]> = [
  [1 << 3, 'CQSIZE'],
  [1 << 6, 'R_DISABLED'],
  [1 << 7, 'SUBMIT_ALL'],
  [1 << 8, 'COOP_TASKRUN'],
  [1 << 12, 'SINGLE_ISSUER'],
  [1 << 13, 'DEFER_TASKRUN'],
];

function uringText(e: TraceEvent, lang: Lang, conn: string): string {
  const en = lang === 'en';
  switch (e.call) {
    case 'io_uring_setup': {
      if (e.errno) return `io_uring_setup()${failed(e, lang)}`;
      const flags = SETUP_FLAGS.filter(([bit]) => (e.fd & bit) !== 0)
        .map(([, name]) => name)
        .join('|');
      return en ? `io_uring_setup(${flags}) → ring ${e.result}` : `io_uring_setup(${flags}) → 环 ${e.result}`;
    }
    case 'io_uring_register': {
      const op = e.result % 256;
      const count = Math.floor(e.result / 256);
      const what =
        op === 22
          ? en
            ? `IORING_REGISTER_PBUF_RING, ${count} receive buffers`
            : `IORING_REGISTER_PBUF_RING，${count} 个接收缓冲区`
          : op === 12
            ? 'IORING_REGISTER_ENABLE_RINGS'
            : `${op}`;
      return `io_uring_register(${e.fd}, ${what})${e.errno ? failed(e, lang) : ''}`;
    }
    case 'io_uring_enter': {
      if (e.errno) return `io_uring_enter(${e.fd})${failed(e, lang)}`;
      const { submitted, completions } = uringEnter(e);
      return en
        ? `io_uring_enter(${e.fd}) → ${submitted} submitted, ${completions} completions`
        : `io_uring_enter(${e.fd}) → 提交 ${submitted} 个，完成 ${completions} 个`;
    }
    case 'uring-arm': {
      const kind = URING_ARMS[e.result % 256] ?? { en: `kind ${e.result % 256}`, zh: `类型 ${e.result % 256}` };
      const again = e.result >= 256;
      const before = again && e.errno ? (en ? ` (the last one ended: ${e.errno})` : `（上一个结束于 ${e.errno}）`) : '';
      return en
        ? `${kind.en} ${again ? 're-armed' : 'armed'} on ${e.fd}${conn}${before}`
        : `在 ${e.fd} 上${again ? '重新' : ''}提交${kind.zh}${conn}${before}`;
    }
    case 'uring-cancel':
      return e.result === 1
        ? en
          ? `cancel the receive on ${e.fd}: backpressure${conn}`
          : `取消 ${e.fd} 上的接收：背压${conn}`
        : en
          ? `cancel every request on ${e.fd}: the connection ends${conn}`
          : `取消 ${e.fd} 上的所有请求：连接即将结束${conn}`;
    default: {
      const { op, res, more } = uringCompletion(e);
      const value =
        res < 0
          ? errnoName(-res)
          : op === 'accept'
            ? `cfd ${res}`
            : op === 'poll'
              ? `revents 0x${res.toString(16)}`
              : en
                ? `${res} bytes`
                : `${res} 字节`;
      const goes = more ? (en ? ', more' : '，more') : '';
      return en ? `completion: ${op} on ${e.fd} → ${value}${goes}${conn}` : `完成：${e.fd} 上的 ${op} → ${value}${goes}${conn}`;
    }
  }
}

/** epoll_ctl's record: result = (op << 16) | events. */
function epollCtlText(e: TraceEvent, lang: Lang): string {
  const number = Math.floor(e.result / 65536);
  const op = EPOLL_OPS[number] ?? (lang === 'en' ? `op ${number}` : `操作 ${number}`);
  const mask = e.result % 65536;
  const events = [mask & 1 ? 'EPOLLIN' : '', mask & 4 ? 'EPOLLOUT' : ''].filter((x) => x).join('|') || String(mask);
  return `epoll_ctl(${op}, ${e.fd}, ${events})`;
}

/** The call with its real arguments and result, without the note. */
export function traceCallText(e: TraceEvent, lang: Lang, ctx: TraceContext = {}): string {
  const text = callText(e, lang, ctx);
  if (e.worker === undefined) return text;
  // Pool models: which worker made the call (pool-fork, sendmsg, pthread_create/join: which one it
  // concerns). prethread's pool is of threads, in Node's process.
  if (traceRole(e, ctx) === 'in-process') {
    return lang === 'en' ? `${text} (pool thread ${e.worker})` : `${text}（线程池线程 ${e.worker}）`;
  }
  return lang === 'en' ? `${text} (worker ${e.worker})` : `${text}（工作进程 ${e.worker}）`;
}

function callText(e: TraceEvent, lang: Lang, ctx: TraceContext): string {
  const en = lang === 'en';
  const role = traceRole(e, ctx);
  const conn = e.id > 0 ? (en ? `, connection #${e.id}` : `，连接 #${e.id}`) : '';
  const slot = e.slot ?? '?';
  switch (e.call) {
    case 'socket':
      return e.errno ? `socket()${failed(e, lang)}` : `socket() → lfd ${e.result}`;
    case 'bind':
      return `bind(${e.fd}, ${at(e.address)})${e.errno ? failed(e, lang) : ''}`;
    case 'listen':
      return `listen(${e.fd}, ${e.result})`;
    case 'accept':
      return en
        ? `accept(${e.fd}) → cfd ${e.result} from ${at(e.address)}${conn}`
        : `accept(${e.fd}) → cfd ${e.result}，客户端 ${at(e.address)}${conn}`;
    case 'accept-eintr':
      return en
        ? `accept(${e.fd}) interrupted: ${e.errno ?? 'EINTR'}, retried`
        : `accept(${e.fd}) 被信号中断：${e.errno ?? 'EINTR'}，重试`;
    case 'fork':
      return en
        ? `fork() → child ${e.result} (serves cfd ${e.fd}${conn})`
        : `fork() → 子进程 ${e.result}（处理 cfd ${e.fd}${conn}）`;
    case 'close-cfd':
      return en ? `close(${e.fd}) in parent${conn}` : `父进程 close(${e.fd})${conn}`;
    case 'close-lfd':
      if (role === 'child' && e.worker === undefined)
        return en ? `close(${e.fd}) in child ${e.pid}` : `子进程 ${e.pid} close(${e.fd})`;
      return en ? `close(${e.fd}): listening socket closed` : `close(${e.fd})：监听套接字已关闭`;
    case 'child-exit':
      return en ? `exit(${e.result}) in child ${e.pid}${conn}` : `子进程 ${e.pid} exit(${e.result})${conn}`;
    case 'waitpid':
      return en ? `waitpid → reaped ${e.result}, ${waitText(e.fd, lang)}` : `waitpid → 回收 ${e.result}，${waitText(e.fd, lang)}`;
    case 'pthread_create':
      if (e.result !== 0) return `pthread_create${failed(e, lang)}`;
      if (e.worker !== undefined) return 'pthread_create';
      return en ? `pthread_create → slot ${slot} (cfd ${e.fd}${conn})` : `pthread_create → 槽位 ${slot}（cfd ${e.fd}${conn}）`;
    case 'pthread_detach':
      return en ? `pthread_detach(slot ${slot})` : `pthread_detach(槽位 ${slot})`;
    case 'worker-start':
      return en
        ? `worker tid ${e.result} in slot ${slot} reads cfd ${e.fd}`
        : `槽位 ${slot} 的子线程 tid ${e.result} 读出 cfd ${e.fd}`;
    case 'slots-full':
      if (role === 'master') return en ? `maxClients reached → close(${e.fd})${conn}` : `已达 maxClients → close(${e.fd})${conn}`;
      return en ? `slot table full → close(${e.fd})${conn}` : `槽位表已满 → close(${e.fd})${conn}`;
    case 'shutdown':
      if (e.id !== 0 || e.slot !== undefined) {
        return `shutdown(${e.fd}, SHUT_RDWR)${conn}`;
      }
      return `shutdown(${e.fd}, SHUT_RDWR)`;
    case 'exec':
      return en
        ? `execve(posix-servers-master): lfd ${e.fd} is fd ${e.result} in the master`
        : `execve(posix-servers-master)：lfd ${e.fd} 在 master 中的描述符编号是 ${e.result}`;
    case 'pool-fork':
      return en ? `fork() → pid ${e.result}` : `fork() → 进程 ${e.result}`;
    case 'worker-accept':
      return en
        ? `accept(${e.fd}) → cfd ${e.result} from ${at(e.address)}${conn}`
        : `accept(${e.fd}) → cfd ${e.result}，客户端 ${at(e.address)}${conn}`;
    case 'lock-file':
      return en ? `mkstemp() → ${e.fd}, unlink()ed at once` : `mkstemp() → ${e.fd}，随即 unlink()`;
    case 'fcntl-lock':
      return `fcntl(${e.fd}, F_SETLKW, F_WRLCK)${e.errno ? failed(e, lang) : ''}`;
    case 'fcntl-unlock':
      return `fcntl(${e.fd}, F_SETLK, F_UNLCK)${e.errno ? failed(e, lang) : ''}`;
    case 'mutex-lock':
      if (e.errno === 'EOWNERDEAD') {
        return en
          ? 'pthread_mutex_lock(&accept_mutex) → EOWNERDEAD, made consistent'
          : 'pthread_mutex_lock(&accept_mutex) → EOWNERDEAD，已恢复一致';
      }
      return `pthread_mutex_lock(&accept_mutex)${e.errno ? failed(e, lang) : ''}`;
    case 'mutex-unlock':
      return `pthread_mutex_unlock(&accept_mutex)${e.errno ? failed(e, lang) : ''}`;
    case 'sendmsg':
      return `sendmsg(${e.fd}, SCM_RIGHTS cfd ${e.result})${conn}${e.errno ? failed(e, lang) : ''}`;
    case 'recvmsg':
      return `recvmsg(${e.fd}) → cfd ${e.result}${conn}`;
    case 'worker-idle':
      return en ? `write(${e.fd}): idle again${conn}` : `write(${e.fd})：又空闲了${conn}`;
    case 'close-node-lfd':
      return en
        ? `close(${e.fd}): Node's listener, handed over to the workers`
        : `close(${e.fd})：Node 的监听套接字，交给各工作进程`;
    case 'epoll_wait':
      return en ? `epoll_wait(${e.fd}) → ${e.result} ready` : `epoll_wait(${e.fd}) → ${e.result} 个就绪`;
    case 'epoll_ctl':
      return `${epollCtlText(e, lang)}${conn}${e.errno ? failed(e, lang) : ''}`;
    case 'epoll_create':
      return e.errno ? `epoll_create1()${failed(e, lang)}` : `epoll_create1() → epfd ${e.result}`;
    case 'queue-push':
      return en
        ? `queue ← cfd ${e.fd}${conn} (${e.result} waiting), pthread_cond_signal`
        : `cfd ${e.fd} 放入队列${conn}（队列中 ${e.result} 个），pthread_cond_signal`;
    case 'queue-pop':
      return en ? `queue → cfd ${e.fd}${conn}, tid ${e.result}` : `从队列取出 cfd ${e.fd}${conn}，线程 ${e.result}`;
    case 'pthread_join':
      return en ? `pthread_join(tid ${e.result})` : `pthread_join(线程 ${e.result})`;
    case 'door-pass': {
      const live = e.result > 0 ? (en ? `, ${e.result} live from it` : `，来自该地址的连接 ${e.result} 个`) : '';
      return en ? `door: ${at(e.address)} admitted${live}${conn}` : `门禁：放行 ${at(e.address)}${live}${conn}`;
    }
    case 'door-refuse':
      return en
        ? `door: ${at(e.address)} refused (${e.reason ?? e.result}) → close(${e.fd})${conn}`
        : `门禁：拒绝 ${at(e.address)}（${e.reason ?? e.result}）→ close(${e.fd})${conn}`;
    case 'dup2':
      if (e.errno) return `dup2(${e.fd}, ${e.result})${failed(e, lang)}`;
      return en ? `dup2(${e.fd}, ${e.result}) in child ${e.pid}${conn}` : `子进程 ${e.pid} dup2(${e.fd}, ${e.result})${conn}`;
    case 'execve': {
      const program = e.program ?? '?';
      if (e.errno) return `execve(${program})${failed(e, lang)}`;
      return en ? `execve(${program}) in child ${e.pid}${conn}` : `子进程 ${e.pid} execve(${program})${conn}`;
    }
    case 'io_uring_setup':
    case 'io_uring_register':
    case 'io_uring_enter':
    case 'uring-arm':
    case 'uring-cancel':
    case 'uring-cqe':
      return uringText(e, lang, conn);
    case 'close-conn': {
      const where =
        role === 'child' && e.worker === undefined
          ? en
            ? ` in child ${e.pid}`
            : `（子进程 ${e.pid}）`
          : e.slot !== undefined
            ? en
              ? ` in slot ${e.slot}`
              : `（槽位 ${e.slot}）`
            : '';
      return en ? `close(${e.fd})${where}: connection #${e.id} over` : `close(${e.fd})${where}：连接 #${e.id} 结束`;
    }
  }
}

/** `[pid 4711]`, or `[pid 4711 tid 4805]` when the thread is known (worker-start). */
function traceActor(e: TraceEvent, lang: Lang): string {
  const tid = e.call === 'worker-start' ? e.result : undefined;
  if (lang === 'en') return tid !== undefined ? `[pid ${e.pid} tid ${tid}]` : `[pid ${e.pid}]`;
  return tid !== undefined ? `[进程 ${e.pid} 线程 ${tid}]` : `[进程 ${e.pid}]`;
}

/** `+12.345 ms`, right-aligned so that lines line up. */
function traceTime(e: TraceEvent, t0Ms: number): string {
  return `+${(e.timeMs - t0Ms).toFixed(3)} ms`.padStart(13);
}

/**
 * One line: `+12.345 ms [pid 4711] fork() → child 4712 (serves cfd 22, connection #1) — note`.
 * `t0Ms` is the time to count from (e.g. the first startupTrace event's timeMs). `ctx.masterPid`
 * (the fork server's pid) lets the actor be named without reading /proc.
 */
export function formatTrace(e: TraceEvent, t0Ms: number, lang: Lang, ctx: TraceContext = {}): string {
  const sep = lang === 'en' ? ' — ' : ' —— ';
  return `${traceTime(e, t0Ms)} ${traceActor(e, lang)} ${traceCallText(e, lang, ctx)}${sep}${traceNote(e, lang, ctx)}`;
}

/** Every TRACE_CALLS entry has a note in every language (checked by the tests). */
export function missingNotes(): string[] {
  const out: string[] = [];
  for (const lang of ['en', 'zh'] as const) {
    for (const call of TRACE_CALLS) if (!TRACE_NOTES[lang][call]) out.push(`${lang}:${call}`);
  }
  return out;
}
