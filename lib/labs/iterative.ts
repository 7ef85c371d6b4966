// Lab: the naive server (lecture point 3). One client at a time: the second waits in the listen
// backlog until the first leaves, however long that is.
import type { TraceEvent } from '../server/events';
import type { PosixServer } from '../server/server';
import { formatTrace } from '../trace/format';
import { sayer } from '../util/i18n';
import { closeAll, destroyAll, Client, now, portOf, sleep, waitFor, startServer } from './kit';
import type { Lab } from './types';

const HOLD_MS = 300;

export const iterativeLab: Lab = {
  name: 'iterative',
  summary: {
    en: 'the naive accept/read loop serves one client at a time: the second waits until the first leaves',
    zh: '朴素的 accept/read 循环一次只服务一个客户端：第二个要等第一个离开',
  },
  async run(out, lang) {
    const say = sayer(out, lang);
    let server: PosixServer | undefined;
    let a: Client | undefined;
    let b: Client | undefined;
    try {
      server = await startServer({ model: 'iterative', trace: true });
      const trace: TraceEvent[] = [];
      server.on('trace', (e) => trace.push(e));
      const port = portOf(server);
      const t0 = server.startupTrace[0]?.timeMs ?? 0;
      say(
        `Started an iterative server on 127.0.0.1:${port} (pid ${server.pid}): while (1) { cfd = accept(); while ((n = read(cfd)) > 0) write(cfd, n); close(cfd); }`,
        `启动迭代服务器 127.0.0.1:${port}（进程 ${server.pid}）：while (1) { cfd = accept(); while ((n = read(cfd)) > 0) write(cfd, n); close(cfd); }`,
      );

      a = await Client.open(port);
      const aEcho = (await a.echo('first\n', 2000)).toString();
      say(
        `Client A (port ${a.localPort}) connected and got its echo "${aEcho.trim()}": the server is now inside A's read loop.`,
        `客户端 A（端口 ${a.localPort}）已连接并收到回显 "${aEcho.trim()}"：服务器此刻在 A 的 read 循环里。`,
      );

      b = await Client.open(port);
      const bSent = now();
      b.sock.write('second\n');
      const bEcho = b.read(7, HOLD_MS + 2000).then(() => now());
      say(
        `Client B (port ${b.localPort}): connect() returned at once (the kernel did the handshake and queued it in the backlog) and B sent "second". A stays connected for ${HOLD_MS} ms.`,
        `客户端 B（端口 ${b.localPort}）：connect() 立即返回（内核完成了握手，连接在 backlog 队列里排队），B 发送 "second"。A 再保持连接 ${HOLD_MS} ms。`,
      );
      await sleep(HOLD_MS);
      const acceptedDuringHold = server.stats().accepted;
      const bSilentDuringHold = b.received === 0;
      const aEnded = now();
      a.end();
      const bEchoAt = await bEcho;
      const waitMs = bEchoAt - bSent;
      const heldMs = aEnded - bSent;

      await waitFor(() => trace.filter((e) => e.call === 'accept').length >= 2, 2000, "B's accept trace");
      const accepts = trace.filter((e) => e.call === 'accept');
      const closeA = trace.find((e) => e.call === 'close-conn' && e.id === accepts[0].id);
      const bAcceptedAfterAClosed = closeA !== undefined && accepts[1].timeMs >= closeA.timeMs;
      say('What the server did (trace):', '服务器做了什么（跟踪）：');
      for (const e of [accepts[0], closeA, accepts[1]]) if (e) out(`  ${formatTrace(e, t0, lang)}`);

      const measured = {
        holdMs: Math.round(heldMs),
        secondWaitMs: Math.round(waitMs),
        acceptedDuringHold,
        secondSilentDuringHold: bSilentDuringHold,
        secondEchoAfterFirstEnded: bEchoAt >= aEnded,
        secondAcceptedAfterFirstClosed: bAcceptedAfterAClosed,
      };
      say('Measured:', '测量结果：');
      say(
        `  B's echo came ${waitMs.toFixed(1)} ms after B sent it; A was held ${heldMs.toFixed(1)} ms of that.`,
        `  B 发送后 ${waitMs.toFixed(1)} ms 才收到回显；其中 A 占用了 ${heldMs.toFixed(1)} ms。`,
      );
      say(
        `  accept() calls while A was connected: ${acceptedDuringHold}; B got nothing during the hold: ${bSilentDuringHold ? 'yes' : 'no'}; B accepted only after close(A's cfd): ${bAcceptedAfterAClosed ? 'yes' : 'no'}.`,
        `  A 连接期间 accept() 的次数：${acceptedDuringHold}；等待期间 B 什么也没收到：${bSilentDuringHold ? '是' : '否'}；B 在 close(A 的 cfd) 之后才被 accept：${bAcceptedAfterAClosed ? '是' : '否'}。`,
      );
      say(
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
    } finally {
      destroyAll([a, b]);
      await closeAll([server]);
    }
  },
};
