// Lab: the naive server (lecture point 3). One client at a time: the second waits in the listen
// backlog until the first leaves, however long that is.
import { defineLab, type LabContext, type TracedServer } from './context';
import { now, sleep, type Client } from './kit';
import type { LabResult } from './types';

const HOLD_MS = 300;

export const iterativeLab = defineLab({
  name: 'iterative',
  summary: {
    en: 'the naive accept/read loop serves one client at a time: the second waits until the first leaves',
    zh: '朴素的 accept/read 循环一次只服务一个客户端：第二个要等第一个离开',
  },
  async run(lab) {
    const server = await startIterativeServer(lab);
    const a = await clientAIsServed(lab, server);
    const wait = await clientBWaitsUntilALeaves(lab, server, a);
    const bAcceptedAfterAClosed = await whatTheServerDid(lab, server);
    return verdict(lab, wait, bAcceptedAfterAClosed);
  },
});

/** B's wait, on the now() clock: from sending to its echo, and how much of it A was held. */
interface Wait {
  waitMs: number;
  heldMs: number;
  acceptedDuringHold: number;
  bSilentDuringHold: boolean;
  bEchoAfterAEnded: boolean;
}

async function startIterativeServer(lab: LabContext): Promise<TracedServer> {
  const server = await lab.tracedServer({ model: 'iterative' });
  lab.say(
    `Started an iterative server on 127.0.0.1:${server.port} (pid ${server.pid}): while (1) { cfd = accept(); while ((n = read(cfd)) > 0) write(cfd, n); close(cfd); }`,
    `启动迭代服务器 127.0.0.1:${server.port}（进程 ${server.pid}）：while (1) { cfd = accept(); while ((n = read(cfd)) > 0) write(cfd, n); close(cfd); }`,
  );
  return server;
}

/** A connects and is echoed: from now on the server sits in A's read loop. */
async function clientAIsServed(lab: LabContext, server: TracedServer): Promise<Client> {
  const a = await lab.client(server.port);
  const aEcho = (await a.echo('first\n', 2000)).toString();
  lab.say(
    `Client A (port ${a.localPort}) connected and got its echo "${aEcho.trim()}": the server is now inside A's read loop.`,
    `客户端 A（端口 ${a.localPort}）已连接并收到回显 "${aEcho.trim()}"：服务器此刻在 A 的 read 循环里。`,
  );
  return a;
}

/** B connects at once (the kernel queues it) and sends; its echo comes only after A has left. */
async function clientBWaitsUntilALeaves(lab: LabContext, server: TracedServer, a: Client): Promise<Wait> {
  const b = await lab.client(server.port);
  const bSent = now();
  b.sock.write('second\n');
  const bEcho = b.read(7, HOLD_MS + 2000).then(() => now());
  lab.say(
    `Client B (port ${b.localPort}): connect() returned at once (the kernel did the handshake and queued it in the backlog) and B sent "second". A stays connected for ${HOLD_MS} ms.`,
    `客户端 B（端口 ${b.localPort}）：connect() 立即返回（内核完成了握手，连接在 backlog 队列里排队），B 发送 "second"。A 再保持连接 ${HOLD_MS} ms。`,
  );
  await sleep(HOLD_MS);
  const acceptedDuringHold = server.stats().accepted;
  const bSilentDuringHold = b.received === 0;
  const aEnded = now();
  a.end();
  const bEchoAt = await bEcho;
  return {
    waitMs: bEchoAt - bSent,
    heldMs: aEnded - bSent,
    acceptedDuringHold,
    bSilentDuringHold,
    bEchoAfterAEnded: bEchoAt >= aEnded,
  };
}

/** The trace: accept(A), close(A's cfd), and only then accept(B). */
async function whatTheServerDid(lab: LabContext, server: TracedServer): Promise<boolean> {
  const accepts = await server.atLeast(2, 'accept', "B's accept trace");
  const closeA = server.trace.find((e) => e.call === 'close-conn' && e.id === accepts[0].id);
  lab.say('What the server did (trace):', '服务器做了什么（跟踪）：');
  server.print([accepts[0], closeA, accepts[1]], '  ');
  return closeA !== undefined && accepts[1].timeMs >= closeA.timeMs;
}

function verdict(lab: LabContext, wait: Wait, bAcceptedAfterAClosed: boolean): LabResult {
  const { waitMs, heldMs, acceptedDuringHold, bSilentDuringHold } = wait;
  const measured = {
    holdMs: Math.round(heldMs),
    secondWaitMs: Math.round(waitMs),
    acceptedDuringHold,
    secondSilentDuringHold: bSilentDuringHold,
    secondEchoAfterFirstEnded: wait.bEchoAfterAEnded,
    secondAcceptedAfterFirstClosed: bAcceptedAfterAClosed,
  };
  lab.say('Measured:', '测量结果：');
  lab.say(
    `  B's echo came ${waitMs.toFixed(1)} ms after B sent it; A was held ${heldMs.toFixed(1)} ms of that.`,
    `  B 发送后 ${waitMs.toFixed(1)} ms 才收到回显；其中 A 占用了 ${heldMs.toFixed(1)} ms。`,
  );
  lab.say(
    `  accept() calls while A was connected: ${acceptedDuringHold}; B got nothing during the hold: ${bSilentDuringHold ? 'yes' : 'no'}; B accepted only after close(A's cfd): ${bAcceptedAfterAClosed ? 'yes' : 'no'}.`,
    `  A 连接期间 accept() 的次数：${acceptedDuringHold}；等待期间 B 什么也没收到：${bSilentDuringHold ? '是' : '否'}；B 在 close(A 的 cfd) 之后才被 accept：${bAcceptedAfterAClosed ? '是' : '否'}。`,
  );
  lab.say(
    'Lesson: the loop cannot read B while it is blocked in read(A). B is connected (the kernel queued it) but nobody serves it until A leaves: fix it with one process (fork) or one thread per client (point 3).',
    '结论：循环阻塞在 read(A) 时无法读取 B。B 已连接（内核替它排队），但在 A 离开之前没人为它服务：解决办法是每个客户端一个进程（fork）或一个线程（第 3 点）。',
  );
  const ok =
    measured.secondEchoAfterFirstEnded &&
    waitMs >= heldMs &&
    acceptedDuringHold === 1 &&
    bSilentDuringHold &&
    bAcceptedAfterAClosed;
  return { ok, measured };
}
