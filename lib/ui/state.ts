// What the live view shows of each server, kept up to date from the recorder's events (connection,
// disconnect, reap, trace) and from /proc (a child in state Z, the threads of Node's process):
// the process/thread tree with each connection's peer and state, the child table or slot table,
// the counters, and the trace timeline. Plain JSON, sent to the page as it changes.
import { native } from '../addon';
import type { Peer, TraceEvent } from '../server/events';
import type { ServerStats } from '../server/server';
import { formatTrace } from '../trace/format';
import type { RecordedEvent, RecordedServer, Recorder } from '../trace/recording';
import type { Lang } from '../util/i18n';
import { t } from '../util/i18n';
import { childrenOf, readStat, tasksOf } from '../util/proc';

/** 'serving': connected and served; 'zombie': the child exited and nobody has reaped it yet. */
type RowState = 'serving' | 'zombie';

/** One connection, and who serves it: a row of the child table or slot table, a leaf of the tree. */
interface ViewRow {
  key: string;
  /** The connection's id (1, 2, … in accept order). */
  id: number;
  peer: string;
  state: RowState;
  /** fork: the child; cluster: the worker. */
  pid?: number;
  /** thread: the worker's thread id, once it has started. */
  tid?: number;
  /** thread: the INFO slot. */
  slot?: number;
  /** prethread, and the process pools: the pool member serving it. */
  worker?: number;
  /** The descriptor accept() returned (traced models). */
  cfd?: number;
  /** The descriptor the worker took from its argument; differs from cfd in the &cfd race. */
  workerFd?: number;
}

/** A node of the process/thread tree. */
interface ViewNode {
  key: string;
  parent: string | null;
  kind: 'node' | 'master' | 'server-thread' | 'cluster-worker' | 'connection';
  label: string;
  pid: number;
  tid?: number;
  /** /proc state letter of the process or thread (R, S, Z…), or the row's state for connections. */
  state: string;
  /** For 'connection' nodes: the row's key. */
  row?: string;
}

interface ViewServer {
  index: number;
  model: string;
  pid: number;
  nodePid: number;
  port: number;
  reap: string;
  threadArg: string;
  maxClients: number;
  status: 'listening' | 'closed';
  /**
   * 'children' (fork), 'slots' (thread: INFO[maxClients]), 'current' (iterative), 'connections'
   * (the others).
   */
  tableKind: 'children' | 'slots' | 'current' | 'connections';
  /** Entries the table has (maxClients); the iterative model serves one at a time. */
  capacity: number;
  rows: ViewRow[];
  tree: ViewNode[];
  counters: ServerStats | null;
}

export interface ViewLine {
  server: number;
  /** The trace call, or the event type for models without a trace. */
  call: string;
  text: string;
}

const at = (p: Peer) => (p.family === 'IPv6' ? `[${p.address}]:${p.port}` : `${p.address}:${p.port}`);

/** The live state of one recorded server. */
class ServerState {
  readonly rows = new Map<string, ViewRow>();
  readonly cfdOf = new Map<number, number>();
  // What a child or worker said before its connection was reported: the records of different
  // processes reach Node in the order they were written, and a child may well serve a short
  // connection and exit before its parent, just back from fork(), has reported the connection.
  readonly early = new Map<number, { exited?: boolean; tid?: number; workerFd?: number }>();
  status: 'listening' | 'closed' = 'listening';
  counters: ServerStats | null = null;

  constructor(readonly rec: RecordedServer) {}

  keyFor(e: { id: number; pid?: number; slot?: number }): string {
    // fork: one child per connection. A pool worker serves many: its connections go by id.
    if (this.rec.model === 'fork' && e.pid !== undefined) return `pid:${e.pid}`;
    if (this.rec.model === 'thread' && e.slot !== undefined) return `slot:${e.slot}`;
    return `conn:${e.id}`;
  }

  rowById(id: number): ViewRow | undefined {
    for (const r of this.rows.values()) if (r.id === id) return r;
    return undefined;
  }

  /** Applies one event; true if something visible changed. */
  onEvent(ev: RecordedEvent): boolean {
    switch (ev.type) {
      case 'connection': {
        const e = ev.event;
        const row: ViewRow = { key: this.keyFor(e), id: e.id, peer: at(e.peer), state: 'serving' };
        if (e.pid !== undefined) row.pid = e.pid;
        if (e.slot !== undefined) row.slot = e.slot;
        if (e.worker !== undefined) row.worker = e.worker;
        if (this.cfdOf.has(e.id)) row.cfd = this.cfdOf.get(e.id);
        const early = this.early.get(e.id);
        if (early) {
          if (early.exited) row.state = 'zombie';
          if (early.tid !== undefined) row.tid = early.tid;
          if (early.workerFd !== undefined) row.workerFd = early.workerFd;
          this.early.delete(e.id);
        }
        this.rows.set(row.key, row);
        return true;
      }
      case 'disconnect': {
        const r = this.rowById(ev.event.id);
        if (r) this.rows.delete(r.key);
        return r !== undefined;
      }
      case 'reap': {
        const key = `pid:${ev.event.pid}`;
        return this.rows.delete(key);
      }
      case 'reject':
        return true; // the counters changed
    }
  }

  onTrace(e: TraceEvent): boolean {
    switch (e.call) {
      case 'accept': {
        this.cfdOf.set(e.id, e.result);
        const r = this.rowById(e.id);
        if (r) r.cfd = e.result;
        return r !== undefined;
      }
      case 'worker-start': {
        const r = this.rowById(e.id);
        if (!r) {
          this.#remember(e.id, { tid: e.result, workerFd: e.fd });
          return false;
        }
        r.tid = e.result;
        r.workerFd = e.fd;
        return true;
      }
      case 'child-exit': {
        const r = this.rowById(e.id);
        if (!r) {
          this.#remember(e.id, { exited: true });
          return false;
        }
        r.state = 'zombie'; // exited; the parent has not waited for it yet
        return true;
      }
      default:
        return false;
    }
  }

  #remember(id: number, what: { exited?: boolean; tid?: number; workerFd?: number }): void {
    this.early.set(id, { ...this.early.get(id), ...what });
    // Bounded: a record whose connection never comes (its record dropped) is forgotten.
    if (this.early.size > 1024) this.early.delete(this.early.keys().next().value!);
  }

  /** What /proc says now: a child in state Z is a zombie even without a trace. True if changed. */
  poll(): boolean {
    let changed = false;
    if (this.rec.model === 'fork') {
      for (const r of this.rows.values()) {
        if (r.state !== 'zombie' && r.pid !== undefined && readStat(r.pid)?.state === 'Z') {
          r.state = 'zombie';
          changed = true;
        }
      }
    }
    return changed;
  }

  view(lang: Lang): ViewServer {
    const rec = this.rec;
    const rows = [...this.rows.values()].sort((a, b) => (a.slot ?? a.id) - (b.slot ?? b.id));
    const tableKind =
      rec.model === 'fork'
        ? 'children'
        : rec.model === 'thread'
          ? 'slots'
          : rec.model === 'iterative'
            ? 'current'
            : 'connections';
    const open = this.status === 'listening';
    const stateOf = (pid: number, tid?: number): string => {
      if (!open) return '-';
      if (tid === undefined) return readStat(pid)?.state ?? '-';
      return tasksOf(pid).find((x) => x.tid === tid)?.state ?? '-';
    };
    const tree: ViewNode[] = [
      {
        key: 'node',
        parent: null,
        kind: 'node',
        label: t(lang, { en: `Node, pid ${rec.nodePid}`, zh: `Node，进程 ${rec.nodePid}` }),
        pid: rec.nodePid,
        state: stateOf(rec.nodePid),
      },
    ];
    let connParent = 'node';
    const pool = rec.model === 'prefork' || rec.model === 'reuseport';
    if (rec.model === 'fork' || pool) {
      tree.push({
        key: 'master',
        parent: 'node',
        kind: 'master',
        label: t(lang, { en: `master, pid ${rec.pid}`, zh: `master，进程 ${rec.pid}` }),
        pid: rec.pid,
        state: stateOf(rec.pid),
      });
      connParent = 'master';
      // A pool's workers, forked once: each connection under the worker serving it.
      if (pool && open) {
        for (const w of childrenOf(rec.pid)) {
          tree.push({
            key: `w:${w.pid}`,
            parent: 'master',
            kind: 'cluster-worker',
            label: t(lang, { en: `worker, pid ${w.pid}`, zh: `工作进程，进程 ${w.pid}` }),
            pid: w.pid,
            state: w.state,
          });
        }
      }
    } else if (
      rec.model === 'thread' ||
      rec.model === 'iterative' ||
      rec.model === 'prethread' ||
      rec.model === 'epoll' ||
      rec.model === 'uring'
    ) {
      const serverThread = open ? tasksOf(rec.nodePid).find((x) => x.name === native.constants.threadNames.server) : undefined;
      tree.push({
        key: 'server-thread',
        parent: 'node',
        kind: 'server-thread',
        label: t(lang, {
          en: `server thread${serverThread ? `, tid ${serverThread.tid}` : ''}`,
          zh: `服务器线程${serverThread ? `，线程 ${serverThread.tid}` : ''}`,
        }),
        pid: rec.nodePid,
        ...(serverThread ? { tid: serverThread.tid } : {}),
        state: serverThread?.state ?? '-',
      });
      connParent = 'server-thread';
    } else if (rec.model === 'cluster' && open) {
      for (const w of childrenOf(rec.pid)) {
        tree.push({
          key: `w:${w.pid}`,
          parent: 'node',
          kind: 'cluster-worker',
          label: t(lang, { en: `worker, pid ${w.pid}`, zh: `工作进程，进程 ${w.pid}` }),
          pid: w.pid,
          state: w.state,
        });
      }
    }
    for (const r of rows) {
      const who =
        rec.model === 'fork'
          ? t(lang, { en: `child ${r.pid}`, zh: `子进程 ${r.pid}` })
          : rec.model === 'thread'
            ? t(lang, { en: `worker${r.tid ? ` tid ${r.tid}` : ''}`, zh: `子线程${r.tid ? ` ${r.tid}` : ''}` })
            : rec.model === 'prethread' && r.worker !== undefined
              ? t(lang, { en: `pool thread #${r.worker}`, zh: `线程池线程 #${r.worker}` })
              : t(lang, { en: 'connection', zh: '连接' });
      const parent = (rec.model === 'cluster' || pool) && r.pid !== undefined ? `w:${r.pid}` : connParent;
      tree.push({
        key: `c:${r.key}`,
        parent: tree.some((n) => n.key === parent) ? parent : connParent,
        kind: 'connection',
        label: `${who} · #${r.id} ${r.peer}`,
        pid: r.pid ?? rec.nodePid,
        ...(r.tid !== undefined ? { tid: r.tid } : {}),
        state: r.state,
        row: r.key,
      });
    }
    return {
      index: rec.index,
      model: rec.model,
      pid: rec.pid,
      nodePid: rec.nodePid,
      port: rec.port,
      reap: rec.reap,
      threadArg: rec.threadArg,
      maxClients: rec.maxClients,
      status: this.status,
      tableKind,
      capacity: rec.model === 'iterative' ? 1 : rec.maxClients,
      rows,
      tree,
      counters: this.counters,
    };
  }
}

/**
 * Every recorded server's live state. `onChange` hears which server changed, and whether a row
 * changed (`rows`: a connection came or went, a child turned zombie) or only what is polled (the
 * counters, /proc states); `onLine` hears each new timeline line.
 */
export class LiveState {
  #states = new Map<RecordedServer, ServerState>();
  #lines: ViewLine[] = [];
  #timer: NodeJS.Timeout;
  #unsubscribe: () => void;

  constructor(
    readonly recorder: Recorder,
    readonly lang: Lang,
    private readonly onChange: (index: number, rows: boolean) => void,
    private readonly onLine: (line: ViewLine) => void,
    pollMs = 250,
  ) {
    for (const rec of recorder.servers) this.#add(rec);
    const onServer = (rec: RecordedServer) => this.#add(rec);
    const onEvent = (rec: RecordedServer, ev: RecordedEvent) => {
      const st = this.#states.get(rec);
      if (!st) return;
      if (st.onEvent(ev)) this.#refresh(st);
      if (rec.trace.length === 0) this.#line(rec, ev.type, this.#eventText(ev));
    };
    const onTrace = (rec: RecordedServer, e: TraceEvent) => {
      const st = this.#states.get(rec);
      if (!st) return;
      if (st.onTrace(e)) this.#refresh(st);
      this.#traceLine(rec, e);
    };
    const onClosed = (rec: RecordedServer) => {
      const st = this.#states.get(rec);
      if (!st) return;
      st.counters = recorder.serverOf(rec)?.stats() ?? st.counters;
      st.status = 'closed';
      this.onChange(rec.index, true);
    };
    recorder.on('server', onServer);
    recorder.on('event', onEvent);
    recorder.on('trace', onTrace);
    recorder.on('closed', onClosed);
    this.#unsubscribe = () => {
      recorder.off('server', onServer);
      recorder.off('event', onEvent);
      recorder.off('trace', onTrace);
      recorder.off('closed', onClosed);
    };
    // /proc and the counters change without an event (a child turns Z; bytes flow): look again.
    this.#timer = setInterval(() => {
      for (const st of this.#states.values()) {
        if (st.status !== 'listening') continue;
        const before = JSON.stringify(st.counters);
        this.#refresh(st, false);
        const rows = st.poll();
        if (rows || JSON.stringify(st.counters) !== before) this.onChange(st.rec.index, rows);
      }
    }, pollMs);
    this.#timer.unref();
  }

  #add(rec: RecordedServer): void {
    if (this.#states.has(rec)) return;
    const st = new ServerState(rec);
    this.#states.set(rec, st);
    for (const e of rec.trace) {
      st.onTrace(e);
      this.#traceLine(rec, e);
    }
    for (const ev of rec.events) st.onEvent(ev);
    if (rec.closedMs !== null) st.status = 'closed';
    this.#refresh(st);
  }

  #refresh(st: ServerState, notify = true): void {
    const server = this.recorder.serverOf(st.rec);
    if (server && st.status === 'listening') st.counters = server.stats();
    if (notify) this.onChange(st.rec.index, true);
  }

  #eventText(ev: RecordedEvent): string {
    const L = this.lang;
    switch (ev.type) {
      case 'connection':
        return t(L, {
          en: `connection #${ev.event.id} from ${at(ev.event.peer)}${ev.event.pid ? ` → pid ${ev.event.pid}` : ''}`,
          zh: `连接 #${ev.event.id}，来自 ${at(ev.event.peer)}${ev.event.pid ? ` → 进程 ${ev.event.pid}` : ''}`,
        });
      case 'disconnect':
        return t(L, {
          en: `disconnect #${ev.event.id}: ${ev.event.bytesIn} bytes in, ${ev.event.bytesOut} out (${ev.event.reason})`,
          zh: `断开 #${ev.event.id}：收 ${ev.event.bytesIn} 字节，发 ${ev.event.bytesOut} 字节（${ev.event.reason}）`,
        });
      case 'reject':
        return t(L, {
          en: `refused #${ev.event.id} from ${at(ev.event.peer)}: ${ev.event.reason}`,
          zh: `拒绝 #${ev.event.id}，来自 ${at(ev.event.peer)}：${ev.event.reason}`,
        });
      case 'reap':
        return t(L, { en: `reaped pid ${ev.event.pid}`, zh: `回收进程 ${ev.event.pid}` });
    }
  }

  #traceLine(rec: RecordedServer, e: TraceEvent): void {
    const t0 = rec.trace[0]?.timeMs ?? e.timeMs;
    const master = rec.model === 'fork' || rec.model === 'prefork' || rec.model === 'reuseport';
    const ctx = master ? { masterPid: rec.pid, nodePid: rec.nodePid } : { nodePid: rec.nodePid };
    this.#line(rec, e.call, formatTrace(e, t0, this.lang, ctx));
  }

  #line(rec: RecordedServer, call: string, text: string): void {
    const line = { server: rec.index, call, text };
    this.#lines.push(line);
    if (this.#lines.length > MAX_LINES) this.#lines.shift();
    this.onLine(line);
  }

  /** Every server's view, and the timeline so far. */
  snapshot(): { lang: Lang; servers: ViewServer[]; lines: ViewLine[] } {
    return { lang: this.lang, servers: [...this.#states.values()].map((s) => s.view(this.lang)), lines: [...this.#lines] };
  }

  view(index: number): ViewServer | undefined {
    for (const s of this.#states.values()) if (s.rec.index === index) return s.view(this.lang);
    return undefined;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#unsubscribe();
  }
}

/** Timeline lines kept for a page that opens late. */
const MAX_LINES = 2000;
