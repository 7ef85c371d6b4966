// One trace event → one line a person can read next to the lecture: when (relative to the first
// call), who (which process, or which thread), what (the call with its real descriptors, pids and
// result) and why (a short note that names the lecture point it makes visible), in English or
// Chinese. Used by `posix-servers serve --trace` and by the labs.
import type { Peer, TraceCall, TraceEvent } from '../server/events';
import { TRACE_CALLS } from '../server/events';
import type { Lang } from '../util/i18n';
import { signalName } from '../util/os-names';
import { readStat } from '../util/proc';

export type { Lang } from '../util/i18n';

/**
 * Who made a call. Node's own process makes socket/bind/listen and runs the in-process servers
 * (thread, iterative, prethread, epoll); the fork model's master accepts and forks; a child serves
 * one connection.
 */
export type TraceRole = 'in-process' | 'master' | 'child';

/** What formatTrace may be told about the server, to name the actor without guessing. */
export interface TraceContext {
  /** The fork model's master (PosixServer.pid). Any other pid but Node's is then a child. */
  masterPid?: number;
  /** The process that started the server. Default: this process. */
  nodePid?: number;
}

/**
 * Variants of a call whose meaning depends on who made it or on its arguments; every TRACE_CALLS
 * entry has a note of its own as well.
 */
export type NoteKey =
  | TraceCall
  | 'close-lfd:stop'
  | 'shutdown:conn'
  | 'slots-full:fork'
  | 'close-conn:thread'
  | 'close-conn:iterative'
  | 'close-conn:pool'
  | 'close-conn:epoll'
  | 'accept:pool'
  | 'pthread_create:pool'
  | 'epoll_ctl-add:lfd'
  | 'epoll_ctl-mod:resume'
  | 'epoll_ctl-mod:lfd';

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
    'slots-full:fork': 'maxClients children are alive: refuse the connection, close(cfd) at once',
    shutdown: 'shutdown(lfd) wakes the blocked accept() so the server can stop',
    'shutdown:conn': "close()'s timeout is over: the server ends this connection itself",
    'close-conn': 'read() returned 0 (the client closed) or failed: close(cfd) ends the connection (point 5)',
    'close-conn:thread': 'read() returned 0 or failed: the worker closes its own cfd and frees its slot (points 9, 11)',
    'close-conn:iterative': 'read() returned 0 or failed: close(cfd), and only now accept() the next client (point 3)',
    exec: "the master is a small program of its own (fork + execve, as node-pty starts a shell): each connection's fork() then copies it, not all of Node; descriptors survive execve (point 8)",
    'accept:pool':
      'a pool thread created at start accepts: the client is served by a thread that already existed, none is created for it (points 1, 6; UNP 30.11)',
    'pthread_create:pool':
      'the pool is created once, at start (or a crashed thread is replaced): no thread is created per connection (UNP 30.11)',
    'close-conn:pool':
      'read() returned 0 or failed: the pool thread closes cfd and goes back for the next client; the thread lives on',
    'close-conn:epoll':
      'read() returned 0 or failed: close(cfd) also takes it out of the epoll set; the loop goes on serving the others',
    pthread_mutex_lock:
      'the pool thread takes the accept mutex: only the thread holding it sleeps in accept(), the others wait for the mutex (UNP 30.11)',
    pthread_mutex_unlock:
      'accept() returned: the mutex is released so that the next idle pool thread can accept; this thread serves the client itself',
    'queue-push':
      'the main thread accepts, puts cfd in the queue and signals the condition variable: an idle pool thread wakes up (UNP 30.12)',
    'queue-pop': 'an idle pool thread woken by the condition variable takes cfd from the queue and serves it',
    pthread_join: 'close(): the pool thread has returned and pthread_join collects it, so no thread outlives the server',
    epoll_create: 'epoll_create1() makes the set of descriptors the event loop waits on: one thread will serve every client',
    'epoll_ctl-add': 'epoll_ctl(ADD): the new connection joins the set; epoll_wait reports it when it has data (EPOLLIN)',
    'epoll_ctl-add:lfd':
      'epoll_ctl(ADD, lfd): a readable listener means a client is waiting; lfd is non-blocking, so accept() never blocks the loop',
    'epoll_ctl-mod':
      'the client does not take its echo (send() came up short): the rest is kept, and the loop waits for EPOLLOUT instead of reading more (backpressure)',
    'epoll_ctl-mod:resume': 'the pending echo is out: watch for EPOLLIN again and read',
    'epoll_ctl-mod:lfd':
      'out of descriptors or memory: the listener is watched for nothing for a moment, rather than reported again and again',
    epoll_wait: 'epoll_wait() returns the ready descriptors: one thread serves each in turn, blocking on none of them',
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
    'slots-full:fork': '存活的子进程已达 maxClients 个：拒绝新连接，立即 close(cfd)',
    shutdown: 'shutdown(lfd) 唤醒阻塞的 accept()，服务器得以停止',
    'shutdown:conn': 'close() 的等待时间已到：服务器主动结束这个连接',
    'close-conn': 'read() 返回 0（客户端已关闭）或出错：close(cfd)，连接结束（第 5 点）',
    'close-conn:thread': 'read() 返回 0 或出错：子线程关闭自己的 cfd 并释放槽位（第 9、11 点）',
    'close-conn:iterative': 'read() 返回 0 或出错：close(cfd)，然后才 accept() 下一个客户端（第 3 点）',
    exec: 'master 是一个独立的小程序（fork + execve，和 node-pty 启动 shell 一样）：之后每个连接的 fork() 复制的是它，而不是整个 Node；文件描述符在 execve 之后仍然有效（第 8 点）',
    'accept:pool': '启动时创建的线程池线程调用 accept()：客户端由已经存在的线程处理，不为它新建线程（第 1、6 点；UNP 30.11）',
    'pthread_create:pool': '线程池在启动时一次创建（或替换一个崩溃的线程）：不会为每个连接创建线程（UNP 30.11）',
    'close-conn:pool': 'read() 返回 0 或出错：线程池线程关闭 cfd，回去等待下一个客户端；线程继续存在',
    'close-conn:epoll': 'read() 返回 0 或出错：close(cfd) 同时把它从 epoll 集合中移除；事件循环继续服务其他客户端',
    pthread_mutex_lock: '线程池线程获得 accept 互斥锁：只有持锁的线程阻塞在 accept() 中，其余线程等待这把锁（UNP 30.11）',
    pthread_mutex_unlock: 'accept() 已返回：释放互斥锁，下一个空闲线程才能 accept；本线程自己处理这个客户端',
    'queue-push': '主线程 accept 后把 cfd 放入队列，并通过条件变量唤醒一个空闲的线程池线程（UNP 30.12）',
    'queue-pop': '被条件变量唤醒的空闲线程从队列中取出 cfd 并处理它',
    pthread_join: 'close()：线程池线程已返回，pthread_join 回收它，服务器结束后不留下任何线程',
    epoll_create: 'epoll_create1() 创建事件循环所等待的描述符集合：一个线程将服务所有客户端',
    'epoll_ctl-add': 'epoll_ctl(ADD)：新连接加入集合；有数据可读时 epoll_wait 报告它（EPOLLIN）',
    'epoll_ctl-add:lfd': 'epoll_ctl(ADD, lfd)：监听套接字可读表示有客户端在等待；lfd 是非阻塞的，accept() 不会阻塞事件循环',
    'epoll_ctl-mod': '客户端不读取回显（send() 只写出一部分）：剩余部分先保存，循环改为等待 EPOLLOUT，不再继续读取（背压）',
    'epoll_ctl-mod:resume': '待发送的回显已全部写出：重新等待 EPOLLIN 并读取',
    'epoll_ctl-mod:lfd': '描述符或内存不足：暂时不再监视监听套接字，而不是让它被一次又一次地报告',
    epoll_wait: 'epoll_wait() 返回就绪的描述符：一个线程依次处理每一个，不在任何一个上阻塞',
  },
};

/** A raw wait status, decoded as WIFEXITED/WEXITSTATUS/WIFSIGNALED/WTERMSIG do. */
export interface WaitStatus {
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
]);

function rememberMaster(pid: number): void {
  if (knownMasters.includes(pid)) return;
  knownMasters.push(pid);
  if (knownMasters.length > KNOWN_MASTERS_MAX) knownMasters.shift();
}

/**
 * Who made the call: Node's process, the fork master or a child. With ctx.masterPid this is
 * exact. Without it only close-lfd is ambiguous (a child's, or the master's at stop: the same
 * record); it is resolved by a pid already seen making master-only calls (events are formatted in
 * order, and the master always traces shutdown before its final close), else by /proc (the master
 * is Node's child, a connection's child is the master's), else it is taken to be a child's.
 */
export function traceRole(e: TraceEvent, ctx: TraceContext = {}): TraceRole {
  const nodePid = ctx.nodePid ?? process.pid;
  if (e.pid === nodePid) return 'in-process';
  if (ctx.masterPid !== undefined) return e.pid === ctx.masterPid ? 'master' : 'child';
  if (MASTER_ONLY.has(e.call)) {
    rememberMaster(e.pid);
    return 'master';
  }
  switch (e.call) {
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

/** The events of an epoll_ctl record's interest mask, by name. */
function epollEvents(mask: number): string {
  const names = [
    [1, 'EPOLLIN'],
    [4, 'EPOLLOUT'],
  ] as const;
  const on = names.filter(([bit]) => (mask & bit) !== 0).map(([, name]) => name);
  return on.length > 0 ? on.join('|') : String(mask);
}

function noteKey(e: TraceEvent, role: TraceRole): NoteKey {
  switch (e.call) {
    case 'accept':
      return e.worker !== undefined ? 'accept:pool' : 'accept';
    case 'pthread_create':
      return e.worker !== undefined ? 'pthread_create:pool' : 'pthread_create';
    case 'epoll_ctl-add':
      return e.id === 0 ? 'epoll_ctl-add:lfd' : 'epoll_ctl-add';
    case 'epoll_ctl-mod':
      if (e.id === 0) return 'epoll_ctl-mod:lfd';
      return (e.result & 4) !== 0 ? 'epoll_ctl-mod' : 'epoll_ctl-mod:resume';
    case 'close-lfd':
      return role === 'child' ? 'close-lfd' : 'close-lfd:stop';
    case 'shutdown':
      return e.id !== 0 || e.slot !== undefined ? 'shutdown:conn' : 'shutdown';
    case 'slots-full':
      return role === 'master' ? 'slots-full:fork' : 'slots-full';
    case 'close-conn':
      if (role !== 'in-process') return 'close-conn';
      if (e.slot !== undefined) return 'close-conn:thread';
      if (e.worker !== undefined) return 'close-conn:pool';
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

/** The call with its real arguments and result, without the note. */
export function traceCallText(e: TraceEvent, lang: Lang, ctx: TraceContext = {}): string {
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
      if (role === 'child') return en ? `close(${e.fd}) in child ${e.pid}` : `子进程 ${e.pid} close(${e.fd})`;
      return en ? `close(${e.fd}): listening socket closed` : `close(${e.fd})：监听套接字已关闭`;
    case 'child-exit':
      return en ? `exit(${e.result}) in child ${e.pid}${conn}` : `子进程 ${e.pid} exit(${e.result})${conn}`;
    case 'waitpid':
      return en ? `waitpid → reaped ${e.result}, ${waitText(e.fd, lang)}` : `waitpid → 回收 ${e.result}，${waitText(e.fd, lang)}`;
    case 'pthread_create':
      if (e.result !== 0) return `pthread_create${failed(e, lang)}`;
      if (e.worker !== undefined)
        return en ? `pthread_create → pool thread #${e.worker}` : `pthread_create → 线程池线程 #${e.worker}`;
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
        ? `execve(posix-servers-fork-master): lfd ${e.fd} is fd ${e.result} in the master`
        : `execve(posix-servers-fork-master)：lfd ${e.fd} 在 master 中的描述符编号是 ${e.result}`;
    case 'close-conn': {
      const where =
        role === 'child'
          ? en
            ? ` in child ${e.pid}`
            : `（子进程 ${e.pid}）`
          : e.slot !== undefined
            ? en
              ? ` in slot ${e.slot}`
              : `（槽位 ${e.slot}）`
            : e.worker !== undefined
              ? en
                ? ` by pool thread #${e.worker}`
                : `（线程池线程 #${e.worker}）`
              : '';
      return en ? `close(${e.fd})${where}: connection #${e.id} over` : `close(${e.fd})${where}：连接 #${e.id} 结束`;
    }
    case 'pthread_mutex_lock':
      return en
        ? `pthread_mutex_lock → pool thread #${e.worker ?? '?'} (tid ${e.result}) may accept(${e.fd})`
        : `pthread_mutex_lock → 线程池线程 #${e.worker ?? '?'}（tid ${e.result}）可以 accept(${e.fd})`;
    case 'pthread_mutex_unlock':
      return en
        ? `pthread_mutex_unlock by pool thread #${e.worker ?? '?'}${conn}`
        : `线程池线程 #${e.worker ?? '?'} pthread_mutex_unlock${conn}`;
    case 'queue-push':
      return en
        ? `queue ← cfd ${e.fd}${conn} (${e.result} waiting), pthread_cond_signal`
        : `cfd ${e.fd} 放入队列${conn}（队列中 ${e.result} 个），pthread_cond_signal`;
    case 'queue-pop':
      return en
        ? `pool thread #${e.worker ?? '?'} (tid ${e.result}) takes cfd ${e.fd} from the queue${conn}`
        : `线程池线程 #${e.worker ?? '?'}（tid ${e.result}）从队列取出 cfd ${e.fd}${conn}`;
    case 'pthread_join':
      return en
        ? `pthread_join(pool thread #${e.worker ?? '?'}, tid ${e.result})`
        : `pthread_join(线程池线程 #${e.worker ?? '?'}，tid ${e.result})`;
    case 'epoll_create':
      return e.errno ? `epoll_create1()${failed(e, lang)}` : `epoll_create1() → epfd ${e.result}`;
    case 'epoll_ctl-add':
    case 'epoll_ctl-mod': {
      const op = e.call === 'epoll_ctl-add' ? 'ADD' : 'MOD';
      return `epoll_ctl(${op}, ${e.fd}, ${epollEvents(e.result)})${conn}${e.errno ? failed(e, lang) : ''}`;
    }
    case 'epoll_wait':
      return en ? `epoll_wait(${e.fd}) → ${e.result} ready` : `epoll_wait(${e.fd}) → ${e.result} 个就绪`;
  }
}

// Calls a pool thread makes itself: its line names it. (pthread_create and pthread_join carry
// the index of the thread created or joined, not of the caller.)
const POOL_ACTOR_CALLS: ReadonlySet<TraceCall> = new Set<TraceCall>([
  'pthread_mutex_lock',
  'pthread_mutex_unlock',
  'accept',
  'queue-pop',
  'slots-full',
  'close-conn',
]);

/**
 * `[pid 4711]`, `[pid 4711 tid 4805]` when the thread is known (worker-start), or
 * `[pid 4711 worker #2]` for a pool thread's own calls.
 */
export function traceActor(e: TraceEvent, lang: Lang): string {
  const tid = e.call === 'worker-start' ? e.result : undefined;
  const worker = e.worker !== undefined && POOL_ACTOR_CALLS.has(e.call) ? e.worker : undefined;
  if (lang === 'en') {
    if (tid !== undefined) return `[pid ${e.pid} tid ${tid}]`;
    return worker !== undefined ? `[pid ${e.pid} worker #${worker}]` : `[pid ${e.pid}]`;
  }
  if (tid !== undefined) return `[进程 ${e.pid} 线程 ${tid}]`;
  return worker !== undefined ? `[进程 ${e.pid} 线程池 #${worker}]` : `[进程 ${e.pid}]`;
}

/** `+12.345 ms`, right-aligned so that lines line up. */
export function traceTime(e: TraceEvent, t0Ms: number): string {
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
