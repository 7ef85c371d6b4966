// Lab: TIME_WAIT and SO_REUSEADDR (UNP 2.7, 7.5). The side that sends the first FIN keeps the
// connection in TIME_WAIT for 60 s (Linux's 2×MSL). A server that closes first keeps those rows on
// its own port, and restarted on that port while they last, its bind() fails with EADDRINUSE —
// unless it set SO_REUSEADDR, and (Linux) unless its earlier life had set it too.
import { readFileSync } from 'node:fs';
import { errnoName } from '../util/os-names';
import type { ServerOptions } from '../server/options';
import { defineLab, type LabContext } from './context';
import { Client, counterRise, pollUntil, portOf, showTcp, tcpExtCounters, tcpTable } from './kit';
import type { Lab, LabResult, TrapOptions } from './types';

const N = 3;
/** Linux's TIME_WAIT, fixed (TCP_TIMEWAIT_LEN): what the kernel's timer of such a row counts down from. */
const TIME_WAIT_S = 60;

/** TIME_WAIT rows of the connections between `serverPort` and each of `clientPorts`, by the side that holds them. */
function timeWaitRows(serverPort: number, clientPorts: number[]) {
  const tw = tcpTable(serverPort).filter((e) => e.state === 'TIME_WAIT');
  const onServer = tw.filter((e) => e.local.port === serverPort && clientPorts.includes(e.remote.port));
  const onClients = tw.filter((e) => e.remote.port === serverPort && clientPorts.includes(e.local.port));
  return { onServer, onClients };
}

/** What bind() said: 'bound', or the errno's name. */
type BindOutcome = string;

export function timeWaitLabWith({ disarmed = false }: TrapOptions = {}): Lab {
  // The naive server does not set SO_REUSEADDR; disarmed, it does.
  const naive = disarmed ? 'yes' : 'no';
  return defineLab({
    name: 'time-wait',
    summary: {
      en: 'the side that closes first keeps TIME_WAIT for 60 s; a server restarted on its port then gets EADDRINUSE from bind() unless it set SO_REUSEADDR',
      zh: '先关闭的一方保持 TIME_WAIT 60 秒；此时在同一端口上重启的服务器，若没有设置 SO_REUSEADDR，bind() 返回 EADDRINUSE',
    },
    async run(lab) {
      const clientFirst = await theClientClosesFirst(lab);
      const serverFirst = await theServerClosesFirst(lab);
      const restart = await restartOnThatPort(lab, serverFirst, naive);
      const bothSides = await linuxAsksTheOldConnectionsToo(lab, naive);
      ephemeralPorts(lab);
      return verdict(lab, clientFirst, serverFirst, restart, bothSides);
    },
  });
}

export const timeWaitLab = timeWaitLabWith();

interface Closed {
  port: number;
  clientPorts: number[];
  onServer: number;
  onClients: number;
  /** Seconds left on the first row's TIME_WAIT timer, as the kernel shows it. */
  secondsLeft: number;
}

/** N clients of `server` come and go; waits until each connection has its TIME_WAIT row. */
async function nClientsComeAndGo(lab: LabContext, port: number, visit: (c: Client) => Promise<void>): Promise<Closed> {
  const before = tcpExtCounters();
  const clientPorts: number[] = [];
  for (let i = 0; i < N; i++) {
    const c = await lab.client(port);
    clientPorts.push(c.localPort);
    await visit(c);
  }
  const { onServer, onClients } = await pollUntil(
    () => timeWaitRows(port, clientPorts),
    (rows) => rows.onServer.length + rows.onClients.length >= N,
    3000,
  );
  const overflow = counterRise(before, tcpExtCounters(), 'TCPTimeWaitOverflow');
  if (overflow > 0)
    lab.say(
      `   The kernel's table of TIME_WAIT sockets is full (net.ipv4.tcp_max_tw_buckets): ${overflow} connection(s) closed without one meanwhile (TcpExt TCPTimeWaitOverflow). Run the lab again once the machine's TIME_WAIT sockets have expired (60 s).`,
      `   内核的 TIME_WAIT 套接字表已满（net.ipv4.tcp_max_tw_buckets）：这期间有 ${overflow} 个连接关闭时没有进入 TIME_WAIT（TcpExt TCPTimeWaitOverflow）。等机器上的 TIME_WAIT 套接字过期（60 秒）后再运行这个实验。`,
    );
  const first = onServer[0] ?? onClients[0];
  const secondsLeft = first ? Math.round(first.timerMs / 100) / 10 : 0;
  lab.say(
    `   /proc/net/tcp, TIME_WAIT rows of these ${N} connections: ${onServer.length} with the server's port ${port} as local port, ${onClients.length} with a client's port (${clientPorts.join(', ')}) as local port.`,
    `   /proc/net/tcp 中这 ${N} 个连接的 TIME_WAIT 行：本地端口是服务器端口 ${port} 的 ${onServer.length} 行，本地端口是客户端端口（${clientPorts.join('、')}）的 ${onClients.length} 行。`,
  );
  if (first) {
    lab.out(`     ${showTcp(first, '')}`);
    lab.say(
      `     its timer (tr 3: the end of TIME_WAIT) fires in ${secondsLeft} s: Linux keeps TIME_WAIT ${TIME_WAIT_S} s.`,
      `     它的定时器（tr 3：TIME_WAIT 结束）在 ${secondsLeft} 秒后到期：Linux 的 TIME_WAIT 为 ${TIME_WAIT_S} 秒。`,
    );
  }
  return { port, clientPorts, onServer: onServer.length, onClients: onClients.length, secondsLeft };
}

/** An echo server (the fork model): each client sends, reads its echo and closes first. */
async function theClientClosesFirst(lab: LabContext): Promise<Closed> {
  const echo = await lab.server({ model: 'fork' });
  lab.say(
    `1) The client closes first: a fork server (echo) on port ${portOf(echo)}. ${N} clients each send a line, read its echo and close (their FIN goes first); the server reads 0 and closes after them.`,
    `1) 客户端先关闭：端口 ${portOf(echo)} 上的多进程服务器（echo）。${N} 个客户端各发送一行、读回回显后关闭（它们的 FIN 先发出）；服务器读到 0 后随之关闭。`,
  );
  return nClientsComeAndGo(lab, portOf(echo), async (c) => {
    await c.echo('hello\n');
    c.end();
    await c.closedByPeer();
  });
}

/** A daytime server (the fork model): it sends the time and shuts down its side first. */
async function theServerClosesFirst(lab: LabContext): Promise<Closed> {
  const daytime = await lab.server({ model: 'fork', handler: 'daytime' });
  lab.say(
    `2) The server closes first: a fork server (daytime, RFC 867) on port ${portOf(daytime)} sends the time, then shutdown(SHUT_WR) and close() (its FIN goes first); each client reads to EOF and closes after it.`,
    `2) 服务器先关闭：端口 ${portOf(daytime)} 上的多进程服务器（daytime，RFC 867）发送时间，然后 shutdown(SHUT_WR) 并 close()（它的 FIN 先发出）；每个客户端读到 EOF 后随之关闭。`,
  );
  const closed = await nClientsComeAndGo(lab, portOf(daytime), (c) => c.closedByPeer());
  await lab.closeAll();
  return closed;
}

interface Restart {
  rowsAtRestart: number;
  withoutReuseaddr: BindOutcome;
  withReuseaddr: BindOutcome;
  forkModel: BindOutcome;
  nodeModel: BindOutcome;
}

/** Starts lab-time-wait with `args`; 'bound' if it listened (then stops it), else bind()'s errno. */
async function startTimeWaitServer(lab: LabContext, args: string[]): Promise<{ outcome: BindOutcome; port: number }> {
  try {
    const p = await lab.program('time-wait', args);
    return { outcome: 'bound', port: p.port };
  } catch (e) {
    const m = /\bbind errno (\d+)/.exec((e as Error).message);
    if (!m) throw e;
    return { outcome: errnoName(Number(m[1])), port: -1 };
  }
}

/** A model on `port`: 'bound' if it listened (then closes it), else the error's code. */
async function startModel(lab: LabContext, options: ServerOptions): Promise<BindOutcome> {
  try {
    await lab.server(options);
    return 'bound';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  } finally {
    await lab.closeAll();
  }
}

const said = (lab: LabContext, outcome: BindOutcome) =>
  outcome === 'bound' ? lab.text('it bound and listens', '绑定成功并开始监听') : `bind() → ${outcome}`;

/** The daytime server is gone; its TIME_WAIT rows are not. Four servers try its port. */
async function restartOnThatPort(lab: LabContext, { port, clientPorts }: Closed, naive: string): Promise<Restart> {
  const rowsAtRestart = timeWaitRows(port, clientPorts).onServer.length;
  lab.say(
    `3) The daytime server is closed; ${rowsAtRestart} TIME_WAIT rows still hold port ${port}. Servers started on that port now:`,
    `3) daytime 服务器已关闭；仍有 ${rowsAtRestart} 行 TIME_WAIT 占着端口 ${port}。现在在这个端口上启动服务器：`,
  );
  const without = await startTimeWaitServer(lab, ['--port', String(port), '--reuseaddr', naive]);
  await lab.closeAll();
  lab.say(
    `   native/labs/time-wait.c without SO_REUSEADDR${naive === 'yes' ? ' (disarmed: it sets it after all)' : ''}: socket(), bind(127.0.0.1:${port}): ${said(lab, without.outcome)}.`,
    `   native/labs/time-wait.c 不设置 SO_REUSEADDR${naive === 'yes' ? '（已解除陷阱：实际上设置了）' : ''}：socket()、bind(127.0.0.1:${port})：${said(lab, without.outcome)}。`,
  );
  const withIt = await startTimeWaitServer(lab, ['--port', String(port), '--reuseaddr', 'yes']);
  await lab.closeAll();
  lab.say(
    `   the same program with setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, …) before bind(): ${said(lab, withIt.outcome)}.`,
    `   同一个程序在 bind() 之前调用 setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, …)：${said(lab, withIt.outcome)}。`,
  );
  const forkModel = await startModel(lab, { model: 'fork', port });
  const nodeModel = await startModel(lab, { model: 'node', port });
  lab.say(
    `   the fork model on port ${port}: ${said(lab, forkModel)} — every model sets SO_REUSEADDR before bind() (native/core/listen_socket.cc, open_listen_socket; reuseport's own listeners in native/core/designs/reuseport.cc; the C references in ref/ref.h, ref_listen_on). Node's net.Server (model 'node'): ${said(lab, nodeModel)} — libuv sets it too.`,
    `   端口 ${port} 上的 fork 模型：${said(lab, forkModel)} —— 每个模型都在 bind() 之前设置 SO_REUSEADDR（native/core/listen_socket.cc 的 open_listen_socket；reuseport 自己的监听套接字在 native/core/designs/reuseport.cc；C 参考服务器在 ref/ref.h 的 ref_listen_on）。Node 的 net.Server（模型 'node'）：${said(lab, nodeModel)} —— libuv 同样设置了它。`,
  );
  return { rowsAtRestart, withoutReuseaddr: without.outcome, withReuseaddr: withIt.outcome, forkModel, nodeModel };
}

interface BothSides {
  rows: number;
  restartWithReuseaddr: BindOutcome;
}

/** A server without SO_REUSEADDR closes first; even a restart that sets it cannot bind. */
async function linuxAsksTheOldConnectionsToo(lab: LabContext, naive: string): Promise<BothSides> {
  const first = await startTimeWaitServer(lab, ['--reuseaddr', naive]);
  if (first.outcome !== 'bound') throw new Error(`lab-time-wait did not start on port 0: ${first.outcome}`);
  lab.say(
    `4) native/labs/time-wait.c without SO_REUSEADDR${naive === 'yes' ? ' (disarmed: with it)' : ''} on port ${first.port}: ${N} clients each read its "bye" and EOF (the server closed first).`,
    `4) 端口 ${first.port} 上不设置 SO_REUSEADDR 的 native/labs/time-wait.c${naive === 'yes' ? '（已解除陷阱：设置了）' : ''}：${N} 个客户端各读到它的 "bye" 和 EOF（服务器先关闭）。`,
  );
  const { onServer } = await nClientsComeAndGo(lab, first.port, (c) => c.closedByPeer());
  await lab.closeAll();
  const again = await startTimeWaitServer(lab, ['--port', String(first.port), '--reuseaddr', 'yes']);
  await lab.closeAll();
  lab.say(
    `   Stopped, and started again on port ${first.port} WITH SO_REUSEADDR: ${said(lab, again.outcome)}. Linux lets a new socket share a port with TIME_WAIT rows only if both set SO_REUSEADDR: each accepted socket inherits it from its listener, and its TIME_WAIT row keeps it.`,
    `   停止后在端口 ${first.port} 上重新启动，这次设置了 SO_REUSEADDR：${said(lab, again.outcome)}。Linux 只在双方都设置了 SO_REUSEADDR 时才让新套接字与 TIME_WAIT 行共用端口：每个 accept 得到的套接字从监听套接字继承这个选项，它的 TIME_WAIT 行也保留着它。`,
  );
  return { rows: onServer, restartWithReuseaddr: again.outcome };
}

function sysctl(name: string): string {
  try {
    return readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8').trim().replace(/\s+/g, '–');
  } catch {
    return '?';
  }
}

/** Why the lab does not run a client out of ephemeral ports (printed, not measured). */
function ephemeralPorts(lab: LabContext): void {
  const range = sysctl('ip_local_port_range');
  const reuse = sysctl('tcp_tw_reuse');
  const [lo, hi] = range.split('–').map(Number);
  const ports = hi - lo + 1;
  lab.say(
    `5) A client that closes first keeps a port of its own in TIME_WAIT for each connection, and connect() chooses from net.ipv4.ip_local_port_range (${range} here: ${ports} ports per server address and port). Not measured: ${
      reuse === '1' || reuse === '2'
        ? `net.ipv4.tcp_tw_reuse is ${reuse} (1: always, 2: on loopback only), so Linux lets connect() take a port whose TIME_WAIT row is a second old; on loopback the ports run out only when ${ports} connections are made within a second — more than a bounded run makes.`
        : `they run out when ${ports} connections are made within ${TIME_WAIT_S} s, a run longer than a lab's.`
    }`,
    `5) 先关闭的客户端每个连接都在 TIME_WAIT 中占着自己的一个端口，connect() 从 net.ipv4.ip_local_port_range（这里是 ${range}：对每个服务器地址和端口有 ${ports} 个）中挑选。这里不测量：${
      reuse === '1' || reuse === '2'
        ? `net.ipv4.tcp_tw_reuse 是 ${reuse}（1：总是，2：仅回环），Linux 允许 connect() 复用 TIME_WAIT 已满一秒的端口；在回环上只有一秒之内建立 ${ports} 个连接才会耗尽 —— 超出一次有界运行的连接数。`
        : `${TIME_WAIT_S} 秒内建立 ${ports} 个连接才会耗尽，比一个实验的运行时间长。`
    }`,
  );
}

function verdict(lab: LabContext, clientFirst: Closed, serverFirst: Closed, restart: Restart, bothSides: BothSides): LabResult {
  const measured = {
    connections: N,
    clientClosesFirstOnClients: clientFirst.onClients,
    clientClosesFirstOnServer: clientFirst.onServer,
    serverClosesFirstOnServer: serverFirst.onServer,
    serverClosesFirstOnClients: serverFirst.onClients,
    timeWaitSecondsLeft: serverFirst.secondsLeft,
    rowsAtRestart: restart.rowsAtRestart,
    restartWithoutReuseaddr: restart.withoutReuseaddr,
    restartWithReuseaddr: restart.withReuseaddr,
    restartForkModel: restart.forkModel,
    restartNodeModel: restart.nodeModel,
    oldWithoutRestartWith: bothSides.restartWithReuseaddr,
  };
  lab.say('Measured:', '测量结果：');
  lab.say(
    `  TIME_WAIT rows (server's port / clients' ports): client closes first ${clientFirst.onServer}/${clientFirst.onClients}, server closes first ${serverFirst.onServer}/${serverFirst.onClients}. Restart on a port with ${restart.rowsAtRestart} TIME_WAIT rows: without SO_REUSEADDR ${restart.withoutReuseaddr}, with it ${restart.withReuseaddr}, fork model ${restart.forkModel}, node model ${restart.nodeModel}; after a life without it, with it ${bothSides.restartWithReuseaddr}.`,
    `  TIME_WAIT 行（服务器端口 / 客户端端口）：客户端先关闭 ${clientFirst.onServer}/${clientFirst.onClients}，服务器先关闭 ${serverFirst.onServer}/${serverFirst.onClients}。在有 ${restart.rowsAtRestart} 行 TIME_WAIT 的端口上重启：不设置 SO_REUSEADDR ${restart.withoutReuseaddr}，设置 ${restart.withReuseaddr}，fork 模型 ${restart.forkModel}，node 模型 ${restart.nodeModel}；上一次没有设置时，这次设置也是 ${bothSides.restartWithReuseaddr}。`,
  );
  lab.say(
    'Lesson: TIME_WAIT is kept by whoever sends the first FIN, for 60 s, so that late segments of the old connection die out and its last ACK can be sent again. A server that closes first (a refusal, a timeout, HTTP/1.0) keeps those rows on its well-known port, and a restart meets them: bind() fails with EADDRINUSE unless the socket sets SO_REUSEADDR before bind() — from the first start on, since Linux asks it of the old connections as well. It does not let two servers listen on one port (that is SO_REUSEPORT).',
    '结论：TIME_WAIT 由先发送 FIN 的一方保持 60 秒，让旧连接迟到的报文消亡，并能重发最后的 ACK。先关闭的服务器（拒绝连接、超时、HTTP/1.0）在自己的知名端口上留下这些行，重启时就会遇到它们：除非套接字在 bind() 之前设置了 SO_REUSEADDR，bind() 返回 EADDRINUSE —— 而且要从第一次启动就设置，因为 Linux 对旧连接也有同样的要求。它并不允许两个服务器监听同一个端口（那是 SO_REUSEPORT）。',
  );
  const trapSeen = restart.withoutReuseaddr === 'EADDRINUSE' && bothSides.restartWithReuseaddr === 'EADDRINUSE';
  if (!trapSeen) {
    lab.say(
      `The trap did not happen: the restart without SO_REUSEADDR gave ${restart.withoutReuseaddr}, the restart after a life without it ${bothSides.restartWithReuseaddr} (EADDRINUSE expected for both).`,
      `陷阱没有出现：不设置 SO_REUSEADDR 的重启结果是 ${restart.withoutReuseaddr}，上一次没有设置时的重启结果是 ${bothSides.restartWithReuseaddr}（两者都应为 EADDRINUSE）。`,
    );
  }
  const ok =
    clientFirst.onClients === N &&
    clientFirst.onServer === 0 &&
    serverFirst.onServer === N &&
    serverFirst.onClients === 0 &&
    restart.rowsAtRestart > 0 &&
    trapSeen &&
    restart.withReuseaddr === 'bound' &&
    restart.forkModel === 'bound' &&
    restart.nodeModel === 'bound' &&
    bothSides.rows === N;
  return { ok, measured };
}
