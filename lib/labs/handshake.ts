// Lab: the three-way handshake and the four-way close (lecture point 1), watched in /proc/net/tcp.
// The kernel does the handshake before accept() is ever called; each FIN is acknowledged by the
// other side; whoever closes first ends in TIME_WAIT.
import type { PosixServer } from '../server/server';
import { defineLab, type LabContext } from './context';
import { eventually, portOf, showTcp, tcpEntry, tcpState, tcpTable, waitFor, type Client } from './kit';
import type { LabResult } from './types';

type Side = 'client' | 'server' | 'both' | 'neither';

export const handshakeLab = defineLab({
  name: 'handshake',
  summary: {
    en: 'the handshake and the four-way close in /proc/net/tcp: ESTABLISHED before accept(), FIN_WAIT2/CLOSE_WAIT, and who ends in TIME_WAIT',
    zh: '在 /proc/net/tcp 中观察三次握手和四次挥手：accept() 之前已 ESTABLISHED、FIN_WAIT2/CLOSE_WAIT，以及谁进入 TIME_WAIT',
  },
  async run(lab) {
    const listening = await anIterativeServerListens(lab);
    const queued = await aSecondClientWaitsInTheAcceptQueue(lab, listening);
    const halfClosed = await theQueuedClientClosesFirst(lab, listening.port, queued.b);
    const timeWait = await bothClientsCloseFirstAndKeepTimeWait(lab, listening.port, queued);
    const refusedSide = await theServerClosesFirstAndKeepsTimeWait(lab);
    return verdict(lab, listening, queued, halfClosed, timeWait, refusedSide);
  },
});

interface Listening {
  server: PosixServer;
  port: number;
  listenState: string;
}

/** Client A being served, client B connected behind it; B's two ends as /proc/net/tcp lists them. */
interface Queued {
  a: Client;
  b: Client;
  acceptedWithBQueued: number;
  bClient: string;
  bServer: string;
}

/** Which end of the connection (server port, client port) is in TIME_WAIT. */
function timeWaitSide(serverPort: number, clientPort: number): Side {
  const table = tcpTable(serverPort);
  const client = tcpState(clientPort, serverPort, table) === 'TIME_WAIT';
  const server = tcpState(serverPort, clientPort, table) === 'TIME_WAIT';
  return client && server ? 'both' : client ? 'client' : server ? 'server' : 'neither';
}

/** Prints the /proc/net/tcp line of the socket local → remote (remote 0: any). */
function tcpLine(lab: LabContext, local: number, remote: number): void {
  lab.out(
    `     ${showTcp(tcpEntry(local, remote), lab.text(`(no entry for ${local} → ${remote})`, `（没有 ${local} → ${remote} 的条目）`))}`,
  );
}

/** An iterative server: busy with A, it will leave B in the accept queue — untouched by accept(). */
async function anIterativeServerListens(lab: LabContext): Promise<Listening> {
  const server = await lab.server({ model: 'iterative' });
  const port = portOf(server);
  lab.say(
    `1) Iterative server on 127.0.0.1:${port}. /proc/net/tcp (addresses decoded from hex; st: 01 ESTABLISHED, 05 FIN_WAIT2, 06 TIME_WAIT, 08 CLOSE_WAIT, 0A LISTEN):`,
    `1) 迭代服务器 127.0.0.1:${port}。/proc/net/tcp（地址已从十六进制解码；st：01 ESTABLISHED，05 FIN_WAIT2，06 TIME_WAIT，08 CLOSE_WAIT，0A LISTEN）：`,
  );
  tcpLine(lab, port, 0);
  return { server, port, listenState: tcpState(port, 0) };
}

/** A is served; B connects too: both its ends are ESTABLISHED though accept() has not taken it. */
async function aSecondClientWaitsInTheAcceptQueue(lab: LabContext, { server, port }: Listening): Promise<Queued> {
  const a = await lab.client(port);
  await a.echo('A\n');
  const b = await lab.client(port);
  await eventually(() => tcpState(port, b.localPort) === 'ESTABLISHED' && tcpState(b.localPort, port) === 'ESTABLISHED', 1000);
  const acceptedWithBQueued = server.stats().accepted;
  const bClient = tcpState(b.localPort, port);
  const bServer = tcpState(port, b.localPort);
  lab.say(
    `2) Client A (port ${a.localPort}) is being served. Client B (port ${b.localPort}) connected too, but the server has called accept() only ${acceptedWithBQueued} time(s):`,
    `2) 客户端 A（端口 ${a.localPort}）正在被服务。客户端 B（端口 ${b.localPort}）也连上了，但服务器只调用了 ${acceptedWithBQueued} 次 accept()：`,
  );
  tcpLine(lab, b.localPort, port);
  tcpLine(lab, port, b.localPort);
  lab.say(
    '   Both ends of B are ESTABLISHED: SYN, SYN+ACK, ACK were exchanged by the kernels; accept() only takes finished connections off the queue. (SYN_SENT/SYN_RECV last one loopback round trip, far too short to see here.)',
    '   B 的两端都是 ESTABLISHED：SYN、SYN+ACK、ACK 由内核完成；accept() 只是从队列中取出已完成的连接。（SYN_SENT/SYN_RECV 只持续一个回环往返时间，这里来不及看到。）',
  );
  return { a, b, acceptedWithBQueued, bClient, bServer };
}

/** B sends its FIN: its end waits in FIN_WAIT2, the server's in CLOSE_WAIT (nobody accepted B). */
async function theQueuedClientClosesFirst(lab: LabContext, port: number, b: Client) {
  b.end();
  await eventually(() => tcpState(b.localPort, port) === 'FIN_WAIT2' && tcpState(port, b.localPort) === 'CLOSE_WAIT', 1000);
  const bHalfClient = tcpState(b.localPort, port);
  const bHalfServer = tcpState(port, b.localPort);
  lab.say(
    '3) B closes first (shutdown its writing side: FIN). The server side ACKs it but nobody has even accepted B, so it cannot answer with its own FIN yet:',
    '3) B 先关闭（发送 FIN）。服务器一端回复 ACK，但还没人 accept B，所以它还不能发出自己的 FIN：',
  );
  tcpLine(lab, b.localPort, port);
  tcpLine(lab, port, b.localPort);
  return { bHalfClient, bHalfServer };
}

/** A closes first too; the server closes A, then accepts and closes B: TIME_WAIT on both clients. */
async function bothClientsCloseFirstAndKeepTimeWait(lab: LabContext, port: number, { a, b }: Queued) {
  a.end();
  await eventually(() => timeWaitSide(port, a.localPort) === 'client' && timeWaitSide(port, b.localPort) === 'client', 1500);
  const aSide = timeWaitSide(port, a.localPort);
  const bSide = timeWaitSide(port, b.localPort);
  lab.say(
    `4) A closes first too. The server reads 0, close(cfd) sends its FIN; then it accepts B, reads 0 at once and closes it. Both clients closed first, so both clients' ports are in TIME_WAIT:`,
    `4) A 也先关闭。服务器 read 返回 0，close(cfd) 发出自己的 FIN；接着它 accept B，立即读到 0 并关闭。两个客户端都是先关闭的一方，所以它们的端口都处于 TIME_WAIT：`,
  );
  for (const p of [a.localPort, b.localPort]) {
    tcpLine(lab, p, port);
    tcpLine(lab, port, p);
  }
  return { aSide, bSide };
}

/** The server closes first: a refusal (accept, then close(cfd) at once) leaves TIME_WAIT on its port. */
async function theServerClosesFirstAndKeepsTimeWait(lab: LabContext): Promise<Side> {
  const refuser = await lab.server({ model: 'thread', maxClients: 1 });
  const port = portOf(refuser);
  const holder = await lab.client(port);
  await holder.echo('H\n');
  const refused = await lab.client(port);
  await waitFor(() => refused.closed, 2000, 'the refused client to see the close');
  await eventually(() => timeWaitSide(port, refused.localPort) === 'server', 1500);
  const refusedSide = timeWaitSide(port, refused.localPort);
  lab.say(
    `5) Server closes first: a thread server with maxClients 1 on port ${port} is full, so it accepts client ${refused.localPort} and close()s it at once (FIN from the server); the client answers with its FIN. Now TIME_WAIT is on the server's side (local port ${port}):`,
    `5) 服务器先关闭：端口 ${port} 上 maxClients 为 1 的线程服务器已满，它 accept 客户端 ${refused.localPort} 后立即 close()（服务器先发 FIN）；客户端再回复自己的 FIN。现在 TIME_WAIT 在服务器一端（本地端口 ${port}）：`,
  );
  tcpLine(lab, port, refused.localPort);
  tcpLine(lab, refused.localPort, port);
  return refusedSide;
}

function verdict(
  lab: LabContext,
  { port, listenState }: Listening,
  { acceptedWithBQueued, bClient, bServer }: Queued,
  { bHalfClient, bHalfServer }: { bHalfClient: string; bHalfServer: string },
  { aSide, bSide }: { aSide: Side; bSide: Side },
  refusedSide: Side,
): LabResult {
  const measured = {
    serverPort: port,
    listenState,
    acceptedWhileSecondQueued: acceptedWithBQueued,
    queuedClientSide: bClient,
    queuedServerSide: bServer,
    halfClosedClientSide: bHalfClient,
    halfClosedServerSide: bHalfServer,
    clientClosesFirstTimeWait: aSide,
    queuedClientClosesFirstTimeWait: bSide,
    serverClosesFirstTimeWait: refusedSide,
  };
  lab.say('Measured:', '测量结果：');
  lab.say(
    `  queued B before accept(): client ${bClient}, server ${bServer}; after B's FIN: client ${bHalfClient}, server ${bHalfServer}; TIME_WAIT side when the client closed first: ${aSide} (A), ${bSide} (B); when the server closed first: ${refusedSide}.`,
    `  accept() 之前排队的 B：客户端 ${bClient}，服务器 ${bServer}；B 发出 FIN 之后：客户端 ${bHalfClient}，服务器 ${bHalfServer}；客户端先关闭时 TIME_WAIT 在：${aSide === 'client' ? '客户端' : aSide}（A）、${bSide === 'client' ? '客户端' : bSide}（B）；服务器先关闭时在：${refusedSide === 'server' ? '服务器' : refusedSide}。`,
  );
  lab.say(
    'Lesson: connecting takes three segments (SYN, SYN+ACK, ACK) and is finished by the kernel before accept(). Closing takes four (FIN, ACK each way), and the side that sent the first FIN waits in TIME_WAIT (2×MSL) so that late segments of this connection die out. A server that closes first collects TIME_WAIT entries on its own port (point 1).',
    '结论：建立连接需要三个报文（SYN、SYN+ACK、ACK），在 accept() 之前就由内核完成。断开连接需要四个（双方各一个 FIN 和 ACK），先发 FIN 的一方进入 TIME_WAIT（2MSL），让这个连接迟到的报文消亡。先关闭的服务器会在自己的端口上积累 TIME_WAIT（第 1 点）。',
  );
  const ok =
    listenState === 'LISTEN' &&
    acceptedWithBQueued === 1 &&
    bClient === 'ESTABLISHED' &&
    bServer === 'ESTABLISHED' &&
    bHalfClient === 'FIN_WAIT2' &&
    bHalfServer === 'CLOSE_WAIT' &&
    aSide === 'client' &&
    bSide === 'client' &&
    refusedSide === 'server';
  return { ok, measured };
}
