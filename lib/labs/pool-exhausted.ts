// Lab: a client beyond the pool (UNP 30.6, the prefork answer to the lecture's iterative server).
// A prefork server of N workers, each an iterative server: with N clients held open every worker
// is busy, and client N+1 — whose handshake the kernel completes all the same — waits in the
// listen backlog, not accepted, until a worker is free; then exactly that worker takes it. The
// iterative server is the pool of 1 (lab iterative); fork per connection never makes a client wait.
import type { ConnectionEvent } from '../server/events';
import type { PosixServer } from '../server/server';
import { defineLab, type LabContext } from './context';
import { childrenOf } from '../util/proc';
import { allAsleep, type Client, portOf, tcpEntry, tcpTable, waitFor } from './kit';
import type { LabResult } from './types';

const WORKERS = 3;
const SILENCE_MS = 400;
const TIMEOUT_MS = 3000;
/** What the client beyond the pool sends. */
const NEXT_LINE = `client ${WORKERS + 1}\n`;

export const poolExhaustedLab = defineLab({
  name: 'pool-exhausted',
  summary: {
    en: `a prefork pool of ${WORKERS}, ${WORKERS} clients held: client ${WORKERS + 1} is connected (the kernel's handshake) but waits in the backlog until one worker is free, and that worker serves it`,
    zh: `${WORKERS} 个进程的 prefork 池，${WORKERS} 个客户端占着：第 ${WORKERS + 1} 个客户端已连上（内核完成握手），却在 backlog 里等，直到有一个 worker 空出来，由那个 worker 服务它`,
  },
  async run(lab) {
    const pool = await startThePool(lab, 'none', true);
    const held = await everyWorkerTakesAClient(lab, pool);
    const waiting = await theNextClientWaitsInTheBacklog(lab, pool);
    const freed = await oneWorkerIsFreed(lab, pool, held, waiting);
    await everyClientLeaves(pool, held, waiting);
    await lab.closeAll();
    const otherLocks = await theSameWithEveryOtherLock(lab);
    const fork = await forkNeverMakesAClientWait(lab);
    return verdict(lab, { held, waiting, freed }, otherLocks, fork);
  },
});

/** prefork's acceptLock kinds (docs/API.md): the pool's answer is the same whatever the lock. */
type Lock = 'none' | 'flock' | 'mutex' | 'pass';

interface Pool {
  server: PosixServer;
  port: number;
  connections: ConnectionEvent[];
  disconnects: number;
  /** Whether its steps print their lines (the first pool), or only the summary line (the others). */
  narrate: boolean;
}

interface Held {
  clients: Client[];
  /** The worker serving each client, by the client's order. */
  workers: number[];
  accepted: number;
}

interface Waiting {
  client: Client;
  /** connect() returned: the handshake was done by the kernel. */
  connected: boolean;
  /** Its request got no reply for SILENCE_MS. */
  silent: boolean;
  acceptedMeanwhile: number;
  /** The listener's accept queue (rx_queue of the LISTEN line in /proc/net/tcp). */
  acceptQueue: number;
  /** The server side of its connection in /proc/net/tcp. */
  serverSide: string;
}

interface Freed {
  freedWorker: number;
  servedBy: number;
  answered: boolean;
  acceptedAfter: number;
}

async function startThePool(lab: LabContext, acceptLock: Lock, narrate: boolean): Promise<Pool> {
  const server = await lab.server({ model: 'prefork', workers: WORKERS, acceptLock });
  const connections: ConnectionEvent[] = [];
  server.on('connection', (c) => connections.push(c));
  if (narrate)
    lab.say(
      `Started a prefork server (master ${server.pid}, port ${portOf(server)}): ${WORKERS} workers forked once, each an iterative server blocked in accept() — one client at a time, to the end.`,
      `启动 prefork 服务器（master ${server.pid}，端口 ${portOf(server)}）：${WORKERS} 个 worker 在启动时一次性 fork 出来，每个都是阻塞在 accept() 里的迭代服务器 —— 一次服务一个客户端，直到它结束。`,
    );
  const pool = { server, port: portOf(server), connections, disconnects: 0, narrate };
  server.on('disconnect', () => pool.disconnects++);
  return pool;
}

/** N clients, each echoed and kept open: every worker is busy with one. */
async function everyWorkerTakesAClient(lab: LabContext, pool: Pool): Promise<Held> {
  const clients: Client[] = [];
  for (let i = 0; i < WORKERS; i++) {
    const client = await lab.client(pool.port);
    if (!(await client.echoes(`client ${i + 1}\n`))) throw new Error(`client ${i + 1} was not echoed`);
    clients.push(client);
  }
  await waitFor(() => pool.connections.length === WORKERS, TIMEOUT_MS, `${WORKERS} connection events`);
  const workers = pool.connections.map((c) => c.worker ?? -1);
  const accepted = pool.server.stats().accepted;
  if (pool.narrate)
    lab.say(
      `1) ${WORKERS} clients connected, were echoed and stay open; they are served by workers [${workers.join(', ')}]; stats().accepted = ${accepted}. Every worker is busy.`,
      `1) ${WORKERS} 个客户端连上、得到回显并保持连接；服务它们的 worker 依次是 [${workers.join(', ')}]；stats().accepted = ${accepted}。每个 worker 都在忙。`,
    );
  return { clients, workers, accepted };
}

/** Client N+1: connected by the kernel, in the accept queue, not served. */
async function theNextClientWaitsInTheBacklog(lab: LabContext, pool: Pool): Promise<Waiting> {
  const client = await lab.client(pool.port);
  client.sock.write(NEXT_LINE);
  const silent = await client.silentFor(SILENCE_MS);
  const table = tcpTable(pool.port);
  const listener = table.find((e) => e.local.port === pool.port && e.state === 'LISTEN');
  const serverSide = tcpEntry(pool.port, client.localPort, table)?.state ?? 'gone';
  const waiting = {
    client,
    connected: true,
    silent,
    acceptedMeanwhile: pool.server.stats().accepted,
    acceptQueue: listener?.rxQueue ?? -1,
    serverSide,
  };
  if (pool.narrate)
    lab.say(
      `2) Client ${WORKERS + 1}: connect() returned — the kernel did the handshake — and it sent a line: ${silent ? `no reply for ${SILENCE_MS} ms` : 'it was answered'}. stats().accepted is still ${waiting.acceptedMeanwhile}; /proc/net/tcp: the listener's accept queue holds ${waiting.acceptQueue} connection(s) (rx_queue of its LISTEN line), and the server side of client ${WORKERS + 1}'s connection is ${serverSide}, not accepted by anyone.`,
      `2) 第 ${WORKERS + 1} 个客户端：connect() 已返回 —— 内核完成了握手 —— 它发了一行：${silent ? `${SILENCE_MS} ms 内没有回复` : '得到了回复'}。stats().accepted 仍是 ${waiting.acceptedMeanwhile}；/proc/net/tcp：监听套接字的 accept 队列里有 ${waiting.acceptQueue} 个连接（LISTEN 行的 rx_queue），第 ${WORKERS + 1} 个客户端连接的服务器端是 ${serverSide}，还没有被任何进程 accept。`,
    );
  return waiting;
}

/** Client 1 leaves: its worker goes back to accept() and takes client N+1 from the queue. */
async function oneWorkerIsFreed(lab: LabContext, pool: Pool, held: Held, waiting: Waiting): Promise<Freed> {
  const freedWorker = held.workers[0];
  held.clients[0].end();
  await held.clients[0].closedByPeer(TIMEOUT_MS);
  const answered = (await waiting.client.read(NEXT_LINE.length, TIMEOUT_MS).catch(() => null))?.toString() === NEXT_LINE;
  await waitFor(() => pool.connections.length === WORKERS + 1, TIMEOUT_MS, `connection event ${WORKERS + 1}`);
  const servedBy = pool.connections[WORKERS].worker ?? -1;
  const acceptedAfter = pool.server.stats().accepted;
  if (pool.narrate)
    lab.say(
      `3) Client 1 closed: worker ${freedWorker} finished with it and went back to accept(). Client ${WORKERS + 1}'s line was ${answered ? 'echoed' : 'not echoed'}, served by worker ${servedBy}; stats().accepted = ${acceptedAfter}.`,
      `3) 第 1 个客户端关闭：worker ${freedWorker} 服务完它，回到 accept()。第 ${WORKERS + 1} 个客户端的那一行${answered ? '得到了回显' : '没有回显'}，由 worker ${servedBy} 服务；stats().accepted = ${acceptedAfter}。`,
    );
  return { freedWorker, servedBy, answered, acceptedAfter };
}

/**
 * The clients leave, one by one, before the server is closed: each connection's disconnect is
 * seen, and every process of the pool is back asleep (a worker has told the master it is idle,
 * and the master has read it), so the lab ends on the picture of an idle pool.
 */
async function everyClientLeaves(pool: Pool, held: Held, waiting: Waiting): Promise<void> {
  for (const client of [...held.clients.slice(1), waiting.client]) {
    client.end();
    await client.closedByPeer(TIMEOUT_MS);
  }
  await waitFor(() => pool.disconnects === WORKERS + 1, TIMEOUT_MS, `${WORKERS + 1} disconnects`);
  const processes = [pool.server.pid, ...childrenOf(pool.server.pid).map((c) => c.pid)];
  await allAsleep(processes, TIMEOUT_MS, 'the pool to be idle');
}

/** One pool's run: N held, the next waiting, one freed. */
interface Exhausted {
  held: Held;
  waiting: Waiting;
  freed: Freed;
}

/** What the lesson says of any pool: N accepted, the next queued and unanswered, then served by the freed worker. */
function matches({ held, waiting, freed }: Exhausted): boolean {
  return (
    held.accepted === WORKERS &&
    new Set(held.workers).size === WORKERS &&
    waiting.silent &&
    waiting.acceptedMeanwhile === WORKERS &&
    waiting.acceptQueue === 1 &&
    waiting.serverSide === 'ESTABLISHED' &&
    freed.answered &&
    freed.servedBy === freed.freedWorker &&
    freed.acceptedAfter === WORKERS + 1
  );
}

/** The same three steps with flock, mutex and pass: one line each. */
async function theSameWithEveryOtherLock(lab: LabContext): Promise<Record<Exclude<Lock, 'none'>, Exhausted>> {
  const out = {} as Record<Exclude<Lock, 'none'>, Exhausted>;
  for (const lock of ['flock', 'mutex', 'pass'] as const) {
    const pool = await startThePool(lab, lock, false);
    const held = await everyWorkerTakesAClient(lab, pool);
    const waiting = await theNextClientWaitsInTheBacklog(lab, pool);
    const freed = await oneWorkerIsFreed(lab, pool, held, waiting);
    await everyClientLeaves(pool, held, waiting);
    await lab.closeAll();
    out[lock] = { held, waiting, freed };
    lab.say(
      `   The same with acceptLock '${lock}': client ${WORKERS + 1} ${waiting.silent ? 'unanswered' : 'answered'} while the pool was busy, stats().accepted ${waiting.acceptedMeanwhile}, accept queue ${waiting.acceptQueue}; after worker ${freed.freedWorker} was freed: ${freed.answered ? 'served' : 'not served'}, by worker ${freed.servedBy}.`,
      `   acceptLock '${lock}' 也一样：池忙时第 ${WORKERS + 1} 个客户端${waiting.silent ? '没有得到回复' : '得到了回复'}，stats().accepted ${waiting.acceptedMeanwhile}，accept 队列 ${waiting.acceptQueue}；worker ${freed.freedWorker} 空出来之后：${freed.answered ? '得到服务' : '没有得到服务'}，由 worker ${freed.servedBy} 服务。`,
    );
  }
  return out;
}

/** The same N+1 clients at once to the fork model: each has a process at once. */
async function forkNeverMakesAClientWait(lab: LabContext): Promise<number> {
  const server = await lab.server({ model: 'fork' });
  let served = 0;
  for (let i = 0; i < WORKERS + 1; i++) {
    const client = await lab.client(portOf(server));
    if (await client.echoes(`client ${i + 1}\n`)) served++;
  }
  lab.say(
    `4) For contrast, fork per connection (master ${server.pid}), ${WORKERS + 1} clients held open at once: ${served} echoed at once — a process is made for each client, none waits (up to maxClients). The lecture's iterative server is the pool of 1: its second client waits (lab iterative).`,
    `4) 作为对照，每连接一个进程（fork，master ${server.pid}），同时保持 ${WORKERS + 1} 个客户端：${served} 个立即得到回显 —— 每个客户端都新建一个进程，没有谁要等（直到 maxClients）。讲义的迭代服务器就是只有 1 个进程的池：第二个客户端要等（实验 iterative）。`,
  );
  return served;
}

function verdict(
  lab: LabContext,
  first: Exhausted,
  otherLocks: Record<Exclude<Lock, 'none'>, Exhausted>,
  forkServed: number,
): LabResult {
  const { held, waiting, freed } = first;
  const othersMatch = Object.entries(otherLocks)
    .filter(([, run]) => matches(run))
    .map(([lock]) => lock);
  const measured = {
    workers: WORKERS,
    acceptedWithPoolBusy: held.accepted,
    busyWorkers: new Set(held.workers).size,
    nextClientConnected: waiting.connected,
    nextClientSilent: waiting.silent,
    acceptedWhileWaiting: waiting.acceptedMeanwhile,
    acceptQueue: waiting.acceptQueue,
    waitingServerSide: waiting.serverSide,
    freedWorker: freed.freedWorker,
    servedBy: freed.servedBy,
    servedAfterFree: freed.answered,
    acceptedAfterFree: freed.acceptedAfter,
    sameWithLocks: othersMatch.join(','),
    forkServedAtOnce: forkServed,
  };
  lab.say('Measured:', '测量结果：');
  lab.say(
    `  pool of ${WORKERS}, ${WORKERS} clients held: client ${WORKERS + 1} connected ${waiting.connected ? 'yes' : 'no'}, answered while the pool was busy ${waiting.silent ? 'no' : 'yes'}, stats().accepted ${waiting.acceptedMeanwhile}, accept queue ${waiting.acceptQueue}, its server side ${waiting.serverSide}; after worker ${freed.freedWorker} was freed: served ${freed.answered ? 'yes' : 'no'}, by worker ${freed.servedBy}, accepted ${freed.acceptedAfter}. The same with acceptLock: ${othersMatch.join(', ') || 'none of the others'}. fork: ${forkServed} of ${WORKERS + 1} served at once.`,
    `  ${WORKERS} 个进程的池，占用 ${WORKERS} 个客户端：第 ${WORKERS + 1} 个客户端已连上 ${waiting.connected ? '是' : '否'}，池忙时得到回复 ${waiting.silent ? '否' : '是'}，stats().accepted ${waiting.acceptedMeanwhile}，accept 队列 ${waiting.acceptQueue}，它的服务器端 ${waiting.serverSide}；worker ${freed.freedWorker} 空出来之后：得到服务 ${freed.answered ? '是' : '否'}，由 worker ${freed.servedBy} 服务，accepted ${freed.acceptedAfter}。换成这些 acceptLock 也一样：${othersMatch.join('、') || '（一个也没有）'}。fork：${WORKERS + 1} 个中 ${forkServed} 个立即得到服务。`,
  );
  lab.say(
    "Lesson: a pool caps the processes made (none per connection), and so the clients served at once, whatever the accept lock ('pass' too: its master accepts only while a worker is idle). Beyond the pool a client is not refused: the kernel completes its handshake and keeps it in the listen backlog, ESTABLISHED and unaccepted, until a worker comes back to accept() — it waits as the lecture's second client waited for the iterative server, which is the pool of 1. Fork per connection never makes a client wait, at the price of a fork() per connection. So size a pool for the clients you will hold at once (or give it an event loop per worker: reuseport, epoll), and keep the backlog for bursts.",
    '结论：池限制了创建的进程（不再每个连接一个），因而也限制了同时服务的客户端，无论用哪种 accept 锁（包括 pass：它的 master 只在有空闲 worker 时才 accept）。超出池的客户端不会被拒绝：内核完成它的握手，把它留在 listen 的 backlog 里，处于 ESTABLISHED 但未被 accept，直到有 worker 回到 accept() —— 它就像讲义里迭代服务器的第二个客户端那样等待，迭代服务器就是只有 1 个进程的池。每连接一个进程的 fork 从不让客户端等待，代价是每个连接一次 fork()。所以池的大小要按同时占用的客户端数来定（或者让每个 worker 跑事件循环：reuseport、epoll），backlog 留给突发的连接。',
  );
  const ok = waiting.connected && matches(first) && othersMatch.length === 3 && forkServed === WORKERS + 1;
  return { ok, measured };
}
