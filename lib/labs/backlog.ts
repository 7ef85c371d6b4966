// Lab: the full accept queue (UNP 4.5, listen()'s backlog). The kernel finishes handshakes without
// the server and queues them until accept(); with listen(fd, N) Linux queues N + 1. The next SYN
// finds the queue full and is dropped, counted in ListenOverflows and ListenDrops, and the client's
// kernel sends it again only after its initial retransmission timeout, 1 s: that client's
// connect() takes a second longer. A server that accepts drains the queue.
import { readFileSync } from 'node:fs';
import type { ListeningProgram } from '../bench/reference';
import { defineLab, type LabContext } from './context';
import {
  counterRise,
  now,
  pollUntil,
  showTcp,
  sleep,
  tcpExtCounters,
  tcpListeners,
  tcpTable,
  type Client,
  type TcpListener,
} from './kit';
import type { Lab, LabResult, TrapOptions } from './types';

/** listen(fd, BACKLOG): small, so that a handful of clients fill the queue. */
const BACKLOG = 4;
/** Linux's initial retransmission timeout of a SYN (TCP_TIMEOUT_INIT): the wait a dropped SYN costs. */
const SYN_RTO_MS = 1000;
/**
 * A kernel timer never fires early; its expiry is rounded to the timer wheel, which may make it
 * fire late (never by a second) but never sooner than a jiffy before. 10% below the timeout is a
 * margin no loaded machine can reach from below.
 */
const RETRANSMITTED_AT_LEAST_MS = 0.9 * SYN_RTO_MS;
/**
 * How much longer than a client of the accepting server the dropped client's connect() must take:
 * most of the timeout (the other's connect() may take tens of ms on a loaded machine).
 */
const LONGER_BY_AT_LEAST_MS = 0.8 * SYN_RTO_MS;
/** How long the full queue is watched before it is counted. */
const SETTLE_MS = 300;
/** A connect() whose SYN is dropped once; the kernel tries again at 1 s, 3 s, … (bounded here). */
const DROPPED_CONNECT_TIMEOUT_MS = 10_000;

export function backlogLabWith({ disarmed = false }: TrapOptions = {}): Lab {
  return defineLab({
    name: 'backlog',
    summary: {
      en: `listen(fd, ${BACKLOG}) and no accept(): ${BACKLOG + 1} connections queue, the next SYN is dropped (ListenOverflows) and that connect() takes a second longer; accept() drains the queue`,
      zh: `listen(fd, ${BACKLOG}) 且不调用 accept()：${BACKLOG + 1} 个连接排队，下一个 SYN 被丢弃（ListenOverflows），那次 connect() 多花一秒；accept() 清空队列`,
    },
    async run(lab) {
      const server = await aListenerThatDoesNotAccept(lab, disarmed);
      const full = await theAcceptQueueFills(lab, server);
      const dropped = await theNextSynIsDropped(lab, server);
      const drained = await acceptDrainsTheQueue(lab, server, dropped);
      const limits = theModelsBacklog(lab);
      return verdict(lab, full, dropped, drained, limits);
    },
  });
}

export const backlogLab = backlogLabWith();

/** The LISTEN row of `port`: its rx_queue is the accept queue's length. */
function listenRow(port: number) {
  return tcpTable(port).find((e) => e.local.port === port && e.state === 'LISTEN');
}

async function aListenerThatDoesNotAccept(lab: LabContext, disarmed: boolean): Promise<ListeningProgram> {
  const server = await lab.program('backlog', ['--backlog', String(BACKLOG), '--accept', disarmed ? 'now' : 'later']);
  lab.say(
    `1) native/labs/backlog.c, pid ${server.pid}, port ${server.port}: socket(), bind(), listen(fd, ${BACKLOG}), and no accept() until SIGUSR1 — a server busy elsewhere${disarmed ? ' (disarmed: it accepts from the start)' : ''}.`,
    `1) native/labs/backlog.c，进程 ${server.pid}，端口 ${server.port}：socket()、bind()、listen(fd, ${BACKLOG})，收到 SIGUSR1 之前不调用 accept() —— 一个忙于别处的服务器${disarmed ? '（已解除陷阱：它一开始就 accept）' : ''}。`,
  );
  return server;
}

interface Full {
  clients: Client[];
  /** The slowest of their connect() calls, in ms. */
  slowestConnectMs: number;
  acceptQueue: number;
  /** The listener as the kernel's sock_diag reports it (what `ss -lnt` shows): queue and limit. */
  diag: TcpListener | null;
}

/** BACKLOG + 1 clients connect: each connect() returns at once; nobody has accepted them. */
async function theAcceptQueueFills(lab: LabContext, server: ListeningProgram): Promise<Full> {
  const clients: Client[] = [];
  let slowestConnectMs = 0;
  for (let i = 0; i < BACKLOG + 1; i++) {
    const t0 = now();
    clients.push(await lab.client(server.port));
    slowestConnectMs = Math.max(slowestConnectMs, now() - t0);
  }
  // Until the kernel has queued them all; then a while longer, in which a server that accepts
  // would take them off the queue: what is still there is what nobody accepts.
  await pollUntil(
    () => listenRow(server.port),
    (row) => (row?.rxQueue ?? 0) >= BACKLOG + 1,
    1000,
  );
  await sleep(SETTLE_MS);
  const listener = listenRow(server.port);
  const acceptQueue = listener?.rxQueue ?? 0;
  const diag = tcpListeners(server.port)[0] ?? null;
  lab.say(
    `2) ${BACKLOG + 1} clients connect: each connect() returned within ${slowestConnectMs.toFixed(1)} ms — the kernel did the handshake. ${SETTLE_MS} ms later, the LISTEN row's rx_queue in /proc/net/tcp, the accept queue: ${acceptQueue} (Linux queues backlog + 1).`,
    `2) ${BACKLOG + 1} 个客户端连接：每次 connect() 都在 ${slowestConnectMs.toFixed(1)} ms 内返回 —— 握手由内核完成。${SETTLE_MS} ms 之后，/proc/net/tcp 中 LISTEN 行的 rx_queue，即 accept 队列：${acceptQueue}（Linux 排队 backlog + 1 个）。`,
  );
  lab.out(`     ${showTcp(listener, '-')}  rx_queue ${acceptQueue}`);
  if (diag)
    lab.say(
      `   The kernel's sock_diag (what ss -lnt shows as Recv-Q and Send-Q): accept queue ${diag.queued}, its limit, the backlog, ${diag.backlog}.`,
      `   内核的 sock_diag（即 ss -lnt 显示的 Recv-Q 和 Send-Q）：accept 队列 ${diag.queued}，它的上限即 backlog ${diag.backlog}。`,
    );
  return { clients, slowestConnectMs, acceptQueue, diag };
}

interface Dropped {
  /** The connect() still under way (resolves with the client, or rejects after its timeout). */
  connecting: Promise<Client>;
  /** How long it took, once it has returned (null until then). */
  took: { ms: number | null };
  /** Its row was seen in SYN_SENT while the queue was full. */
  synSent: boolean;
  /** Seconds to its SYN's retransmission, from the row's timer. */
  retransmitInS: number | null;
  overflows: number;
  drops: number;
  before: Map<string, number>;
}

/** One more client: its SYN finds the queue full; the kernel drops it and counts it. */
async function theNextSynIsDropped(lab: LabContext, server: ListeningProgram): Promise<Dropped> {
  const before = tcpExtCounters();
  const startedAt = now();
  const connecting = lab.client(server.port, DROPPED_CONNECT_TIMEOUT_MS);
  const took: { ms: number | null } = { ms: null };
  const done = () => (took.ms = now() - startedAt);
  connecting.then(done, done);
  // net.connect() calls connect() on the next tick: let it, before the first (slow) read of /proc.
  await new Promise((resolve) => setImmediate(resolve));
  // Seen at once (the drop is the SYN's arrival); looked for until most of the retransmission
  // timeout has passed.
  const { row, after } = await pollUntil(
    () => ({
      row: tcpTable(server.port).find((e) => e.remote.port === server.port && e.state === 'SYN_SENT'),
      after: tcpExtCounters(),
    }),
    (seen) => took.ms !== null || (seen.row !== undefined && counterRise(before, seen.after, 'ListenOverflows') > 0),
    0.8 * SYN_RTO_MS,
  );
  const overflows = counterRise(before, after, 'ListenOverflows');
  const drops = counterRise(before, after, 'ListenDrops');
  const retransmitInS = row && row.timer === 1 ? Math.round(row.timerMs / 10) / 100 : null;
  lab.say(
    `3) Client ${BACKLOG + 2} connects: /proc/net/netstat's TcpExt counters rose by ListenOverflows ${overflows}, ListenDrops ${drops} — its SYN found the queue full and was dropped, unanswered. Its side of the connection:`,
    `3) 第 ${BACKLOG + 2} 个客户端连接：/proc/net/netstat 的 TcpExt 计数器 ListenOverflows 增加 ${overflows}，ListenDrops 增加 ${drops} —— 它的 SYN 遇到满的队列，被丢弃，没有应答。它这一端的连接：`,
  );
  lab.out(`     ${showTcp(row, lab.text('(no SYN_SENT row: it was not dropped)', '（没有 SYN_SENT 行：它没有被丢弃）'))}`);
  if (retransmitInS !== null)
    lab.say(
      `     its timer (tr 1: retransmission) fires in ${retransmitInS} s: the kernel sends the SYN again after the initial timeout, ${SYN_RTO_MS / 1000} s.`,
      `     它的定时器（tr 1：重传）在 ${retransmitInS} 秒后到期：内核在初始超时 ${SYN_RTO_MS / 1000} 秒后重发 SYN。`,
    );
  return { connecting, took, synSent: row !== undefined, retransmitInS, overflows, drops, before };
}

interface Drained {
  droppedConnectMs: number;
  baselineConnectMs: number;
  synRetransmits: number;
  accepted: number;
  served: number;
  queueAfter: number;
}

/** SIGUSR1: the server accepts; the queue drains, and the retransmitted SYN gets in. */
async function acceptDrainsTheQueue(lab: LabContext, server: ListeningProgram, dropped: Dropped): Promise<Drained> {
  process.kill(server.pid, 'SIGUSR1');
  const late = await dropped.connecting;
  const droppedConnectMs = dropped.took.ms!;
  const synRetransmits = counterRise(dropped.before, tcpExtCounters(), 'TCPSynRetrans');
  const t0 = now();
  const baseline = await lab.client(server.port);
  const baselineConnectMs = now() - t0;
  const total = BACKLOG + 3;
  await server.waitForLine(new RegExp(`^accepted ${total}$`), 5000);
  const served = server.lines.filter((l) => /^accepted \d+$/.test(l)).length;
  const queueAfter = listenRow(server.port)?.rxQueue ?? -1;
  await baseline.closedByPeer();
  await late.closedByPeer();
  lab.say(
    `4) SIGUSR1: the server calls accept() in a loop (each client gets "served <k>" and a close). The queue drains (rx_queue now ${queueAfter}); client ${BACKLOG + 2}'s connect() returned after ${droppedConnectMs.toFixed(0)} ms — TCPSynRetrans rose by ${synRetransmits}: its SYN was sent again. Client ${BACKLOG + 3}, connecting now: ${baselineConnectMs.toFixed(1)} ms. Accepted in all: ${served}.`,
    `4) SIGUSR1：服务器循环调用 accept()（每个客户端收到 "served <k>" 后被关闭）。队列被清空（rx_queue 现在是 ${queueAfter}）；第 ${BACKLOG + 2} 个客户端的 connect() 在 ${droppedConnectMs.toFixed(0)} ms 后才返回 —— TCPSynRetrans 增加了 ${synRetransmits}：它的 SYN 被重发了。现在连接的第 ${BACKLOG + 3} 个客户端：${baselineConnectMs.toFixed(1)} ms。总共 accept 了 ${served} 个。`,
  );
  return { droppedConnectMs, baselineConnectMs, synRetransmits, accepted: total, served, queueAfter };
}

function readNumber(path: string): number | null {
  try {
    return Number(readFileSync(path, 'utf8').trim());
  } catch {
    return null;
  }
}

/** The models' backlog and the kernel's cap on it. */
function theModelsBacklog(lab: LabContext): { somaxconn: number | null } {
  const somaxconn = readNumber('/proc/sys/net/core/somaxconn');
  const cap = somaxconn === null ? 511 : Math.min(511, somaxconn);
  lab.say(
    `5) The models call listen(lfd, backlog) with the option backlog, 511 by default (as Node's net.Server; the C references' REF_LISTENQ too); the kernel takes min(backlog, net.core.somaxconn = ${somaxconn ?? '?'}) = ${cap}: ${cap + 1} finished connections can wait for accept() before SYNs are dropped.`,
    `5) 各模型以选项 backlog 调用 listen(lfd, backlog)，默认 511（与 Node 的 net.Server 相同；C 参考服务器的 REF_LISTENQ 也是）；内核取 min(backlog, net.core.somaxconn = ${somaxconn ?? '?'}) = ${cap}：${cap + 1} 个已完成的连接可以等待 accept()，之后 SYN 才会被丢弃。`,
  );
  return { somaxconn };
}

function verdict(
  lab: LabContext,
  full: Full,
  dropped: Dropped,
  drained: Drained,
  limits: { somaxconn: number | null },
): LabResult {
  const measured = {
    backlog: BACKLOG,
    acceptQueueFull: full.acceptQueue,
    backlogInKernel: full.diag?.backlog ?? '-',
    listenOverflows: dropped.overflows,
    listenDrops: dropped.drops,
    droppedClientSynSent: dropped.synSent,
    synRetransmitInS: dropped.retransmitInS ?? '-',
    droppedConnectMs: Math.round(drained.droppedConnectMs),
    baselineConnectMs: Math.round(drained.baselineConnectMs * 10) / 10,
    tcpSynRetrans: drained.synRetransmits,
    acceptedAfterDrain: drained.served,
    acceptQueueAfterDrain: drained.queueAfter,
    somaxconn: limits.somaxconn ?? '?',
  };
  lab.say('Measured:', '测量结果：');
  lab.say(
    `  accept queue with ${BACKLOG + 1} clients unaccepted: ${full.acceptQueue} (backlog ${BACKLOG}); the next SYN: ListenOverflows +${dropped.overflows}, client in SYN_SENT ${dropped.synSent ? 'yes' : 'no'}; its connect() ${Math.round(drained.droppedConnectMs)} ms against ${measured.baselineConnectMs} ms for a client of the draining server; accepted after SIGUSR1: ${drained.served}.`,
    `  ${BACKLOG + 1} 个客户端未被 accept 时的 accept 队列：${full.acceptQueue}（backlog ${BACKLOG}）；下一个 SYN：ListenOverflows +${dropped.overflows}，客户端处于 SYN_SENT ${dropped.synSent ? '是' : '否'}；它的 connect() 用了 ${Math.round(drained.droppedConnectMs)} ms，而服务器开始 accept 之后的客户端只用 ${measured.baselineConnectMs} ms；SIGUSR1 之后 accept 了 ${drained.served} 个。`,
  );
  lab.say(
    "Lesson: listen()'s backlog is the length of the queue of connections the kernel has finished and the server has not yet accepted (Linux: backlog + 1, the backlog capped at net.core.somaxconn). A full queue refuses nobody: it drops the SYN, and the client only learns by waiting for its retransmission, a second later (and as long again or longer for each further drop). A server that falls behind on accept() shows up as clients' connect() times in whole seconds and as ListenOverflows; the cure is accepting faster (or a larger backlog for bursts), not a longer timeout.",
    '结论：listen() 的 backlog 是内核已完成握手、服务器尚未 accept 的连接队列的长度（Linux：backlog + 1，backlog 不超过 net.core.somaxconn）。队列满时不会拒绝任何人：它丢弃 SYN，客户端只能等重传才知道 —— 一秒之后（每再被丢弃一次，又要等同样长或更久）。accept() 跟不上的服务器表现为客户端 connect() 耗时以整秒计，以及 ListenOverflows 上升；办法是更快地 accept（或为突发流量设更大的 backlog），而不是更长的超时。',
  );
  const trapSeen =
    full.acceptQueue === BACKLOG + 1 &&
    dropped.synSent &&
    dropped.overflows > 0 &&
    drained.droppedConnectMs >= RETRANSMITTED_AT_LEAST_MS;
  if (!trapSeen) {
    lab.say(
      `The trap did not happen: accept queue ${full.acceptQueue} (not ${BACKLOG + 1}), SYN_SENT seen ${dropped.synSent ? 'yes' : 'no'}, ListenOverflows +${dropped.overflows}, connect() ${Math.round(drained.droppedConnectMs)} ms (a dropped SYN costs ≥ ${RETRANSMITTED_AT_LEAST_MS} ms).`,
      `陷阱没有出现：accept 队列 ${full.acceptQueue}（不是 ${BACKLOG + 1}），看到 SYN_SENT ${dropped.synSent ? '是' : '否'}，ListenOverflows +${dropped.overflows}，connect() ${Math.round(drained.droppedConnectMs)} ms（被丢弃的 SYN 至少要 ${RETRANSMITTED_AT_LEAST_MS} ms）。`,
    );
  }
  const ok =
    trapSeen &&
    drained.droppedConnectMs - drained.baselineConnectMs >= LONGER_BY_AT_LEAST_MS &&
    drained.synRetransmits > 0 &&
    drained.served === BACKLOG + 3 &&
    drained.queueAfter === 0;
  return { ok, measured };
}
