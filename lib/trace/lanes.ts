// A recording (recording.ts) → the lecture's board drawing, as data: one lane per process or
// thread, the marks on it, and where each lane starts (a branch from its parent: fork,
// pthread_create) and ends (exit, reaped by waitpid, or still a zombie). svg.ts draws it; the
// tests check it against the trace.
//
// Who made a call is known from the record itself: its pid (Node, the master, a child or pool
// worker), and for the in-process models the call (socket/bind/listen and close()'s shutdowns are
// made on Node's JS thread, a worker's calls carry its connection and slot, a prethread pool
// thread's its index, the rest is the server thread). What a model prepares before its server
// thread exists (prethread's pool, epoll's epoll set) is made on Node's thread too.
import type { Peer, TraceCall, TraceEvent } from '../server/events';
import type { Lang } from '../util/i18n';
import { t } from '../util/i18n';
import { decodeWaitStatus, traceCallText, traceNote, uringCompletion, uringEnter } from './format';
import type { RecordedServer } from './recording';

type LaneKind = 'node' | 'master' | 'child' | 'server-thread' | 'worker' | 'pool-thread' | 'cluster-worker';

/**
 * How a lane ends: 'running' (still alive when the recording ended), 'exited' (a thread returned),
 * 'reaped' (a child exited and its parent waited for it), 'zombie' (a child exited and nobody
 * waited: dead, not reaped), 'killed' (a child ended by a signal, then reaped), 'closed' (the
 * server process or thread ended with close()).
 */
type LaneEnd = 'running' | 'exited' | 'reaped' | 'zombie' | 'killed' | 'closed';

export interface Lane {
  /**
   * 'node', 'master', 'server-thread', 'child:<pid>', 'worker:<connection id>', 'pool:<index>'
   * (prethread), 'cluster-worker:<pid>'.
   */
  id: string;
  kind: LaneKind;
  pid: number;
  /** Threads: the kernel's thread id, once the thread said it (worker-start; a pool thread's queue-pop). */
  tid?: number;
  slot?: number;
  /** prethread's pool threads: the index in the pool; a replacement keeps its lane. */
  worker?: number;
  /** The connection it serves (children and workers). */
  connection?: number;
  peer?: Peer;
  /** The lane it branched from (fork, pthread_create), none for Node's. */
  parent?: string;
  /** Row of the branch (its first mark). */
  startRow: number;
  /** Row where it exited (child-exit, the worker's close), if it did. */
  exitRow?: number;
  /** Row where it was reaped (waitpid), if it was. */
  reapedRow?: number;
  /** Row where its line stops. */
  endRow: number;
  end: LaneEnd;
}

type MarkKind =
  | 'call' // socket, bind, listen, pthread_detach …: a call on the lane
  | 'accept'
  | 'eintr'
  | 'fork'
  | 'exec'
  | 'thread' // pthread_create (the branch), worker-start
  | 'close'
  | 'refuse'
  | 'sigchld' // the signal arriving at the parent; the waitpid that follows is its own mark
  | 'waitpid'
  | 'exit'
  | 'shutdown'
  | 'event'; // connection/disconnect/reject/reap of a model without a trace

export interface Mark {
  row: number;
  lane: string;
  kind: MarkKind;
  /** The trace call it shows; absent for 'sigchld' and for events of untraced models. */
  call?: TraceCall;
  /** connection / disconnect / reject / reap, for 'event' marks. */
  event?: string;
  timeMs: number;
  pid: number;
  fd?: number;
  result?: number;
  errno?: string | null;
  id?: number;
  slot?: number;
  /** Pool models: the member that made the call, or that pthread_create/pthread_join made or joined. */
  worker?: number;
  /** A lane this mark points to: the new lane of a fork/pthread_create, the child a SIGCHLD came from. */
  target?: string;
  /** Short label drawn at the mark. */
  label: string;
  /** The whole line: the call with its real arguments (format.ts), for the text column. */
  text: string;
  /** The lecture's note for it (format.ts). */
  note: string;
  /** Something the lesson wants seen: a worker that read another client's cfd (the &cfd race). */
  wrong?: boolean;
}

export interface Diagram {
  server: RecordedServer;
  lanes: Lane[];
  /** In time order; row = index. */
  marks: Mark[];
  t0Ms: number;
  /** Rows in the diagram: marks, plus one for lanes that are still running at the end. */
  rows: number;
}

const NODE = 'node';
const MASTER = 'master';
const SERVER_THREAD = 'server-thread';

function shortLabel(e: TraceEvent, lang: Lang): string {
  switch (e.call) {
    case 'socket':
      return `socket → ${e.result}`;
    case 'bind':
      return 'bind';
    case 'listen':
      return 'listen';
    case 'accept':
      return `accept → cfd ${e.result}`;
    case 'accept-eintr':
      return 'EINTR';
    case 'fork':
      return `fork → ${e.result}`;
    case 'exec':
      return 'fork + execve';
    case 'close-cfd':
    case 'close-lfd':
    case 'close-conn':
      return `close(${e.fd})`;
    case 'child-exit':
      return `exit(${e.result})`;
    case 'waitpid':
      return `waitpid → ${e.result}`;
    case 'pthread_create':
      return 'pthread_create';
    case 'pthread_detach':
      return 'pthread_detach';
    case 'worker-start':
      return t(lang, { en: `tid ${e.result}: cfd ${e.fd}`, zh: `线程 ${e.result}：cfd ${e.fd}` });
    case 'slots-full':
      return t(lang, { en: `full → close(${e.fd})`, zh: `已满 → close(${e.fd})` });
    case 'shutdown':
      return `shutdown(${e.fd})`;
    case 'pool-fork':
      return t(lang, { en: `fork → worker ${e.worker ?? '?'}`, zh: `fork → 工作进程 ${e.worker ?? '?'}` });
    case 'worker-accept':
      return `accept → cfd ${e.result}`;
    case 'lock-file':
      return 'mkstemp + unlink';
    case 'fcntl-lock':
      return 'fcntl lock';
    case 'fcntl-unlock':
      return 'fcntl unlock';
    case 'mutex-lock':
      return e.errno === 'EOWNERDEAD' ? 'lock: EOWNERDEAD' : 'mutex lock';
    case 'mutex-unlock':
      return 'mutex unlock';
    case 'sendmsg':
      return `sendmsg(cfd ${e.result})`;
    case 'recvmsg':
      return `recvmsg → cfd ${e.result}`;
    case 'worker-idle':
      return t(lang, { en: 'idle', zh: '空闲' });
    case 'close-node-lfd':
      return `close(${e.fd})`;
    case 'epoll_wait':
      return `epoll_wait → ${e.result}`;
    case 'epoll_ctl':
      return 'epoll_ctl';
    case 'epoll_create':
      return `epoll_create → ${e.result}`;
    case 'queue-push':
      return t(lang, { en: `queue ← ${e.fd}`, zh: `入队 ${e.fd}` });
    case 'queue-pop':
      return t(lang, { en: `queue → ${e.fd}`, zh: `出队 ${e.fd}` });
    case 'pthread_join':
      return `pthread_join #${e.worker ?? '?'}`;
    case 'door-pass':
      return t(lang, { en: 'door: in', zh: '门禁：放行' });
    case 'door-refuse':
      return t(lang, { en: `door: ${e.reason ?? 'refused'}`, zh: `门禁：拒绝（${e.reason ?? e.result}）` });
    case 'dup2':
      return `dup2(${e.fd}, ${e.result})`;
    case 'execve':
      return `execve(${(e.program ?? '?').split('/').pop()})`;
    case 'io_uring_setup':
      return `io_uring_setup → ${e.result}`;
    case 'io_uring_register':
      return e.result % 256 === 22 ? t(lang, { en: 'register buffers', zh: '登记缓冲区' }) : 'enable ring';
    case 'io_uring_enter': {
      const { submitted, completions } = uringEnter(e);
      return t(lang, { en: `enter: ${submitted} in, ${completions} out`, zh: `enter：提交 ${submitted}，完成 ${completions}` });
    }
    case 'uring-arm': {
      const what = ({ 1: 'accept', 4: 'poll', 5: 'accept', 6: 'poll' } as Record<number, string>)[e.result % 256] ?? 'recv';
      return t(lang, {
        en: `${e.result >= 256 ? 're-arm' : 'arm'} ${what}`,
        zh: `${e.result >= 256 ? '重新提交' : '提交'} ${what}`,
      });
    }
    case 'uring-cancel':
      return `cancel(${e.fd})`;
    case 'uring-cqe': {
      const { op, res } = uringCompletion(e);
      return `cqe ${op} ${res}`;
    }
  }
}

// A prethread pool thread's own calls (its index is the record's worker). pthread_create and
// pthread_join carry the index of the thread created or joined instead: see poolLanes().
const POOL_THREAD_CALLS: ReadonlySet<TraceCall> = new Set<TraceCall>([
  'mutex-lock',
  'mutex-unlock',
  'worker-accept',
  'queue-pop',
  'slots-full',
  'close-conn',
]);

/**
 * prethread: who made each pthread_create and pthread_join of the pool. The first creation of an
 * index is the pool's, at start (Node's thread); a later one is a crashed thread making its
 * replacement (its own lane). The last join of an index is close()'s (the server thread); an
 * earlier one is a replacement joining the thread it replaced (the index's lane).
 */
function poolLanes(rec: RecordedServer): Map<TraceEvent, string> {
  const out = new Map<TraceEvent, string>();
  if (rec.model !== 'prethread') return out;
  const created = new Set<number>();
  const lastJoin = new Map<number, TraceEvent>();
  for (const e of rec.trace) {
    if (e.worker === undefined) continue;
    if (e.call === 'pthread_create') {
      out.set(e, created.has(e.worker) ? `pool:${e.worker}` : NODE);
      created.add(e.worker);
    } else if (e.call === 'pthread_join') {
      out.set(e, `pool:${e.worker}`);
      lastJoin.set(e.worker, e);
    }
  }
  for (const e of lastJoin.values()) out.set(e, SERVER_THREAD);
  return out;
}

function kindOf(call: TraceCall): MarkKind {
  switch (call) {
    case 'accept':
    case 'worker-accept':
      return 'accept';
    case 'accept-eintr':
      return 'eintr';
    case 'fork':
    case 'pool-fork':
      return 'fork';
    case 'exec':
      return 'exec';
    case 'pthread_create':
    case 'worker-start':
      return 'thread';
    case 'close-cfd':
    case 'close-lfd':
    case 'close-conn':
    case 'close-node-lfd':
      return 'close';
    case 'slots-full':
    case 'door-refuse':
      return 'refuse';
    case 'execve':
      return 'exec';
    case 'waitpid':
    case 'pthread_join': // the parent collects what is left of a finished thread, as waitpid does of a child
      return 'waitpid';
    case 'child-exit':
      return 'exit';
    case 'shutdown':
      return 'shutdown';
    default:
      return 'call';
  }
}

/** The models whose server runs in a master program: fork, and the pools (whose workers are its children). */
const hasMaster = (rec: RecordedServer) => rec.model === 'fork' || rec.model === 'prefork' || rec.model === 'reuseport';

/** Which lane made this call (see the header comment). */
function laneOf(rec: RecordedServer, e: TraceEvent, pool: Map<TraceEvent, string>): string {
  if (hasMaster(rec)) {
    if (e.pid === rec.nodePid) return NODE;
    if (e.pid === rec.pid) return MASTER;
    return `child:${e.pid}`;
  }
  const known = pool.get(e);
  if (known !== undefined) return known;
  if (e.worker !== undefined && POOL_THREAD_CALLS.has(e.call)) return `pool:${e.worker}`;
  // epoll's prepare(): the epoll set and its listener, on Node's thread before the server thread;
  // uring's: the ring and its receive buffers (the server thread enables the ring itself).
  if (e.call === 'epoll_create' || (e.call === 'epoll_ctl' && e.id === 0)) return NODE;
  if (e.call === 'io_uring_setup' || (e.call === 'io_uring_register' && e.result % 256 === 22)) return NODE;
  switch (e.call) {
    case 'socket':
    case 'bind':
    case 'listen':
    case 'shutdown': // close(): stop, and its timeout's shutdown of each connection, from JS
      return NODE;
    case 'worker-start':
      return `worker:${e.id}`;
    case 'close-conn':
      return rec.model === 'thread' ? `worker:${e.id}` : SERVER_THREAD;
    default:
      return SERVER_THREAD;
  }
}

interface Timed {
  timeMs: number;
  seq: number;
  make: (row: number) => Mark;
}

/** Builds the lanes and marks of one recorded server, labels in `lang`. */
export function buildDiagram(rec: RecordedServer, lang: Lang): Diagram {
  const ctx = hasMaster(rec) ? { masterPid: rec.pid, nodePid: rec.nodePid } : { nodePid: rec.nodePid };
  const items: Timed[] = [];
  let seq = 0;
  const cfdOf = new Map<number, number>(); // connection id → the cfd accept() returned for it
  for (const e of rec.trace) if (e.call === 'accept') cfdOf.set(e.id, e.result);
  const pool = poolLanes(rec);

  for (const e of rec.trace) {
    const lane = laneOf(rec, e, pool);
    const base = {
      lane,
      kind: kindOf(e.call),
      call: e.call,
      timeMs: e.timeMs,
      pid: e.pid,
      fd: e.fd,
      result: e.result,
      errno: e.errno,
      id: e.id,
      ...(e.slot !== undefined ? { slot: e.slot } : {}),
      ...(e.worker !== undefined ? { worker: e.worker } : {}),
      label: shortLabel(e, lang),
      text: traceCallText(e, lang, ctx),
      note: traceNote(e, lang, ctx),
    };
    // The signal comes first: the kernel sends SIGCHLD, the handler's waitpid reaps.
    if (e.call === 'waitpid' && rec.reap === 'sigchld') {
      const child = `child:${e.result}`;
      const w = decodeWaitStatus(e.fd);
      items.push({
        timeMs: e.timeMs,
        seq: seq++,
        make: (row) => ({
          row,
          lane,
          kind: 'sigchld',
          timeMs: e.timeMs,
          pid: e.pid,
          target: child,
          label: 'SIGCHLD',
          text: t(lang, {
            en: `SIGCHLD: child ${e.result} ${w.exitCode !== null ? 'exited' : `was killed by ${w.signal}`}; the handler runs`,
            zh: `SIGCHLD：子进程 ${e.result} ${w.exitCode !== null ? '已退出' : `被信号 ${w.signal} 终止`}；信号处理函数运行`,
          }),
          note: t(lang, {
            en: 'the kernel tells the parent that a child ended (point 7)',
            zh: '内核通知父进程：有子进程结束了（第 7 点）',
          }),
        }),
      });
    }
    const target =
      e.call === 'fork' || e.call === 'pool-fork'
        ? `child:${e.result}`
        : e.call === 'pthread_create' && e.result === 0 && rec.model === 'thread'
          ? `worker:${e.id}`
          : e.call === 'pthread_create' && e.result === 0 && e.worker !== undefined && pool.get(e) === NODE
            ? `pool:${e.worker}`
            : e.call === 'exec'
              ? MASTER
              : undefined;
    const wrong = e.call === 'worker-start' && cfdOf.has(e.id) && cfdOf.get(e.id) !== e.fd;
    items.push({
      timeMs: e.timeMs,
      seq: seq++,
      make: (row) => ({ row, ...base, ...(target ? { target } : {}), ...(wrong ? { wrong: true } : {}) }),
    });
  }

  // Models without a trace (node, cluster): the events, on Node's lane or the worker's.
  if (rec.trace.length === 0) {
    for (const ev of rec.events) {
      const pid = ev.type === 'reject' ? undefined : ev.event.pid;
      const lane = rec.model === 'cluster' && pid !== undefined ? `cluster-worker:${pid}` : NODE;
      const id = ev.event.id;
      const label =
        ev.type === 'connection'
          ? `#${id} ${t(lang, { en: 'connected', zh: '连接' })}`
          : ev.type === 'disconnect'
            ? `#${id} ${ev.event.reason}`
            : ev.type === 'reject'
              ? `#${id} ${t(lang, { en: 'refused', zh: '拒绝' })}`
              : t(lang, { en: `worker ${ev.event.pid} reaped`, zh: `回收工作进程 ${ev.event.pid}` });
      items.push({
        timeMs: ev.timeMs,
        seq: seq++,
        make: (row) => ({
          row,
          lane,
          kind: 'event',
          event: ev.type,
          timeMs: ev.timeMs,
          pid: pid ?? rec.pid,
          id,
          label,
          text: label,
          note: '',
        }),
      });
    }
  }

  items.sort((a, b) => a.timeMs - b.timeMs || a.seq - b.seq);
  const marks = items.map((it, row) => it.make(row));
  const rows = marks.length + 1;
  const lastRow = rows - 1;

  // ---- lanes ----
  const lanes = new Map<string, Lane>();
  const ensure = (id: string, make: () => Lane): Lane => {
    let l = lanes.get(id);
    if (!l) {
      l = make();
      lanes.set(id, l);
    }
    return l;
  };
  const node = ensure(NODE, () => ({ id: NODE, kind: 'node', pid: rec.nodePid, startRow: 0, endRow: lastRow, end: 'running' }));
  const peerOf = new Map<number, Peer>();
  for (const e of rec.trace) if (e.call === 'accept' && e.address) peerOf.set(e.id, e.address);
  for (const ev of rec.events) if (ev.type === 'connection') peerOf.set(ev.event.id, ev.event.peer);

  // The server thread is created right after listen() (in_process_server.cc): it branches there.
  const listenRow = marks.find((m) => m.call === 'listen')?.row;
  for (const m of marks) {
    if (m.lane === MASTER || m.target === MASTER) {
      ensure(MASTER, () => ({
        id: MASTER,
        kind: 'master',
        pid: rec.pid,
        parent: NODE,
        startRow: m.row,
        endRow: lastRow,
        end: 'running',
      }));
    } else if (m.lane === SERVER_THREAD) {
      ensure(SERVER_THREAD, () => ({
        id: SERVER_THREAD,
        kind: 'server-thread',
        pid: rec.nodePid,
        parent: NODE,
        startRow: listenRow !== undefined && listenRow < m.row ? listenRow : m.row,
        endRow: lastRow,
        end: 'running',
      }));
    }
    if (m.target?.startsWith('child:') && m.kind === 'fork') {
      const pid = Number(m.target.slice('child:'.length));
      ensure(m.target, () => ({
        id: m.target!,
        kind: 'child',
        pid,
        // A pool worker (pool-fork) serves many connections, none when it is forked.
        ...(m.id ? { connection: m.id } : {}),
        ...(m.id !== undefined && peerOf.has(m.id) ? { peer: peerOf.get(m.id) } : {}),
        parent: MASTER,
        startRow: m.row,
        endRow: lastRow,
        end: 'running',
      }));
    }
    if (m.target?.startsWith('worker:')) {
      const id = Number(m.target.slice('worker:'.length));
      ensure(m.target, () => ({
        id: m.target!,
        kind: 'worker',
        pid: rec.nodePid,
        connection: id,
        ...(m.slot !== undefined ? { slot: m.slot } : {}),
        ...(peerOf.has(id) ? { peer: peerOf.get(id) } : {}),
        parent: SERVER_THREAD,
        startRow: m.row,
        endRow: lastRow,
        end: 'running',
      }));
    }
    if (m.target?.startsWith('pool:')) {
      const worker = Number(m.target.slice('pool:'.length));
      ensure(m.target, () => ({
        id: m.target!,
        kind: 'pool-thread',
        pid: rec.nodePid,
        worker,
        parent: NODE,
        startRow: m.row,
        endRow: lastRow,
        end: 'running',
      }));
    }
    if (m.lane.startsWith('cluster-worker:')) {
      ensure(m.lane, () => ({
        id: m.lane,
        kind: 'cluster-worker',
        pid: m.pid,
        parent: NODE,
        startRow: m.row,
        endRow: lastRow,
        end: 'running',
      }));
    }
  }
  // A child whose fork record was lost (the pipe was full) still gets its lane, from its first mark.
  for (const m of marks) {
    if (m.lane.startsWith('child:') && !lanes.has(m.lane)) {
      ensure(m.lane, () => ({
        id: m.lane,
        kind: 'child',
        pid: m.pid,
        parent: MASTER,
        startRow: m.row,
        endRow: lastRow,
        end: 'running',
      }));
    }
    if (m.lane.startsWith('pool:') && !lanes.has(m.lane)) {
      ensure(m.lane, () => ({
        id: m.lane,
        kind: 'pool-thread',
        pid: m.pid,
        worker: Number(m.lane.slice('pool:'.length)),
        parent: NODE,
        startRow: m.row,
        endRow: lastRow,
        end: 'running',
      }));
    }
    if (m.lane.startsWith('worker:') && !lanes.has(m.lane)) {
      ensure(m.lane, () => ({
        id: m.lane,
        kind: 'worker',
        pid: m.pid,
        connection: m.id,
        parent: SERVER_THREAD,
        startRow: m.row,
        endRow: lastRow,
        end: 'running',
      }));
    }
  }

  // Ends: a child exits (child-exit), is reaped (waitpid), or both; a worker ends with its close.
  for (const m of marks) {
    const lane = lanes.get(m.lane);
    if (m.call === 'worker-start' && lane) lane.tid = m.result;
    if (m.call === 'queue-pop' && lane?.kind === 'pool-thread') lane.tid = m.result;
    if (m.call === 'pthread_join' && m.lane === SERVER_THREAD) {
      // close(): the pool thread has returned, and the server thread collects it.
      const joined = lanes.get(`pool:${m.worker}`);
      if (joined) {
        joined.tid ??= m.result;
        joined.exitRow = m.row;
        joined.endRow = m.row;
        joined.end = 'exited';
      }
    }
    if (m.call === 'child-exit' && lane) {
      lane.exitRow = m.row;
      lane.endRow = m.row;
      lane.end = 'zombie'; // until a waitpid says otherwise
    }
    if (m.call === 'close-conn' && lane?.kind === 'worker') {
      lane.exitRow = m.row;
      lane.endRow = m.row;
      lane.end = 'exited';
    }
    if (m.call === 'waitpid') {
      const child = lanes.get(`child:${m.result}`);
      if (child) {
        child.reapedRow = m.row;
        child.endRow = m.row;
        child.end = decodeWaitStatus(m.fd ?? 0).exitCode === null && child.exitRow === undefined ? 'killed' : 'reaped';
      }
    }
    if (m.kind === 'event' && m.event === 'reap') {
      const worker = lanes.get(`cluster-worker:${m.pid}`);
      if (worker) {
        worker.reapedRow = m.row;
        worker.endRow = m.row;
        worker.end = 'reaped';
      }
    }
  }
  // A zombie stays drawn until the parent reaps it, or to the end: it is still in the process table.
  for (const lane of lanes.values()) if (lane.end === 'zombie') lane.endRow = lastRow;
  if (rec.closedMs !== null) {
    for (const lane of lanes.values()) {
      if (lane.end === 'running' && lane.kind !== 'node') lane.end = 'closed';
    }
    node.end = 'running';
  }

  const order: LaneKind[] = ['node', 'master', 'server-thread', 'child', 'worker', 'pool-thread', 'cluster-worker'];
  const sorted = [...lanes.values()].sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind) || a.startRow - b.startRow);
  const t0Ms = Math.min(rec.trace[0]?.timeMs ?? Infinity, marks[0]?.timeMs ?? Infinity, rec.startedMs);
  return { server: rec, lanes: sorted, marks, t0Ms, rows };
}
