// Lab: SIGPIPE (UNP 5.12, 5.13). A client asks and close()s instead of waiting for the answer.
// The server's first write to it is answered with RST; its next write fails with EPIPE — and the
// kernel also sends the writer SIGPIPE, whose default action kills it: an iterative server dies
// there, with every client after it. MSG_NOSIGNAL on the send, or SIGPIPE ignored, leaves only
// the EPIPE, and the server goes on to the next client.
import { readFileSync } from 'node:fs';
import type { ListeningProgram, ProgramExit } from '../bench/reference';
import type { ReapEvent } from '../server/events';
import { errnoName } from '../util/os-names';
import { defineLab, type LabContext } from './context';
import { Client, portOf, waitFor } from './kit';
import type { Lab, LabResult, TrapOptions } from './types';

const SIGPIPE = 13;
const ANSWER_LINES = 10;
/** Long enough for the server's lines, 20 ms apart, on a loaded machine. */
const OUTCOME_TIMEOUT_MS = 5000;

export function sigpipeLabWith({ disarmed = false }: TrapOptions = {}): Lab {
  return defineLab({
    name: 'sigpipe',
    summary: {
      en: "a client leaves before its answer: the server's second write raises SIGPIPE and kills it (waitpid: signal 13); with MSG_NOSIGNAL or SIGPIPE ignored it gets EPIPE and serves the next client",
      zh: '客户端在拿到回答之前离开：服务器的第二次写触发 SIGPIPE 并杀死它（waitpid：信号 13）；用 MSG_NOSIGNAL 或忽略 SIGPIPE 时它得到 EPIPE，继续服务下一个客户端',
    },
    async run(lab) {
      const naive = await aClientLeavesBeforeItsAnswer(lab, disarmed ? 'nosignal' : 'default', 1);
      await lab.closeAll();
      const nosignal = await aClientLeavesBeforeItsAnswer(lab, 'nosignal', 2);
      await lab.closeAll();
      const ignore = await aClientLeavesBeforeItsAnswer(lab, 'ignore', 3);
      await lab.closeAll();
      const models = await howTheModelsAvoidIt(lab);
      return verdict(lab, disarmed, naive, nosignal, ignore, models);
    },
  });
}

export const sigpipeLab = sigpipeLabWith();

/** True if `pid` ignores SIGPIPE (its bit in SigIgn of /proc/<pid>/status); null if it is gone. */
function ignoresSigpipe(pid: number): boolean | null {
  try {
    const m = /^SigIgn:\s+([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? (BigInt(`0x${m[1]}`) & (1n << BigInt(SIGPIPE - 1))) !== 0n : null;
  } catch {
    return null;
  }
}

/**
 * A client that sends its question and close()s: its FIN comes from close(), so by the time the
 * server reads EOF this client has no socket left to take the answer.
 */
async function askAndLeave(port: number): Promise<void> {
  const c = await Client.open(port);
  await new Promise<void>((resolve) => c.sock.write('question\n', () => resolve()));
  c.destroy();
}

/** A client that asks, half-closes (shutdown(SHUT_WR): its EOF) and reads the whole answer: the lines it got. */
async function askAndRead(port: number): Promise<number> {
  const c = await Client.open(port);
  try {
    c.sock.end('question\n');
    await c.closedByPeer(OUTCOME_TIMEOUT_MS);
    return c
      .take()
      .toString()
      .split('\n')
      .filter((l) => /^line \d+ of the answer$/.test(l)).length;
  } finally {
    c.destroy();
  }
}

interface Outcome {
  way: string;
  pid: number;
  ignoresSigpipe: boolean | null;
  /** Lines sent before the client's RST was known. */
  sent: number;
  /** The failed send's errno name, if the server lived to see it. */
  failedErrno: string | null;
  /** How the process ended (null: still running). */
  exit: ProgramExit | null;
  /** The next client: the lines of its answer, or why it got none. */
  next: number | string;
}

const WAYS: Record<string, { en: string; zh: string }> = {
  default: { en: 'send(fd, line, n, 0), SIGPIPE left at its default action', zh: 'send(fd, line, n, 0)，SIGPIPE 保持默认动作' },
  nosignal: { en: 'send(fd, line, n, MSG_NOSIGNAL)', zh: 'send(fd, line, n, MSG_NOSIGNAL)' },
  ignore: {
    en: 'signal(SIGPIPE, SIG_IGN) at start, send(fd, line, n, 0)',
    zh: '启动时 signal(SIGPIPE, SIG_IGN)，send(fd, line, n, 0)',
  },
};

async function aClientLeavesBeforeItsAnswer(lab: LabContext, way: string, step: number): Promise<Outcome> {
  const server: ListeningProgram = await lab.program('sigpipe', ['--sigpipe', way]);
  const ignores = ignoresSigpipe(server.pid);
  const naive = step === 1;
  if (naive)
    lab.say(
      `native/labs/sigpipe.c is an iterative server: it reads a question up to the client's EOF (a client half-closes, shutdown(SHUT_WR), when it has asked), then sends its answer in ${ANSWER_LINES} lines, 20 ms apart, one send() each, and stops at the first that fails. Each time, one client asks and close()s — it will not read the answer — then another asks, half-closes and reads.`,
      `native/labs/sigpipe.c 是一个迭代服务器：读问题直到客户端的 EOF（客户端问完就半关闭，shutdown(SHUT_WR)），然后把回答分 ${ANSWER_LINES} 行发送，每行间隔 20 ms，每行一次 send()，遇到第一次失败就停止。每一轮都是一个客户端提问后 close() —— 它不会读回答 —— 然后另一个客户端提问、半关闭并读取回答。`,
    );
  lab.say(
    `${step}) ${naive ? 'The naive server' : 'A fix'}, pid ${server.pid}: ${WAYS[way].en}${naive && way !== 'default' ? ' (disarmed)' : ''}; /proc/${server.pid}/status SigIgn: SIGPIPE ${ignores ? 'ignored' : 'not ignored'}.`,
    `${step}) ${naive ? '朴素的服务器' : '一种修正'}，进程 ${server.pid}：${WAYS[way].zh}${naive && way !== 'default' ? '（已解除陷阱）' : ''}；/proc/${server.pid}/status 的 SigIgn：SIGPIPE ${ignores ? '被忽略' : '没有被忽略'}。`,
  );
  await askAndLeave(server.port);
  const ended: { exit: ProgramExit | null } = { exit: null };
  void server.exited.then((e) => (ended.exit = e));
  const answered = () => server.lines.some((l) => /^(failed 1 |served 1$)/.test(l));
  await waitFor(
    () => ended.exit !== null || answered(),
    OUTCOME_TIMEOUT_MS,
    'the server to end its answer to the client that left',
  );
  const exit = ended.exit;
  const sent = server.lines.filter((l) => /^sent 1 \d+$/.test(l)).length;
  const failed = server.lines.map((l) => /^failed 1 \d+ errno (\d+)$/.exec(l)).find((m) => m !== null);
  const failedErrno = failed ? errnoName(Number(failed[1])) : null;
  let next: number | string;
  try {
    next = await askAndRead(server.port);
  } catch (e) {
    next = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  }
  if (exit !== null) {
    const { code, signal } = exit;
    lab.say(
      `   Its first line went out (sent ${sent}) and the client's kernel answered it with RST; at the next send() the process died: Node's child_process, which reaps it with waitpid(), reports ${signal ? `killed by signal ${signal === 'SIGPIPE' ? `${SIGPIPE} (SIGPIPE)` : signal}` : `exit code ${code}`}. The next client: ${typeof next === 'number' ? `${next} lines` : `connect() → ${next}`} — nobody listens on the port any more.`,
      `   第一行发了出去（sent ${sent}），客户端的内核用 RST 回应；在下一次 send() 时进程死了：用 waitpid() 回收它的 Node child_process 报告${signal === 'SIGPIPE' ? `被信号 ${SIGPIPE}（SIGPIPE）杀死` : signal ? `被信号 ${signal} 杀死` : `退出码 ${code}`}。下一个客户端：${typeof next === 'number' ? `${next} 行` : `connect() → ${next}`} —— 这个端口上已经没有人监听了。`,
    );
  } else {
    lab.say(
      `   Its first line went out (sent ${sent}), answered with RST; the next send() failed with ${failedErrno ?? '-'} and the server closed that client and went back to accept(): alive. The next client got ${typeof next === 'number' ? `all ${next} lines of its answer` : next}.`,
      `   第一行发了出去（sent ${sent}），得到 RST 回应；下一次 send() 以 ${failedErrno ?? '-'} 失败，服务器关闭这个客户端，回到 accept()：仍然活着。下一个客户端收到了${typeof next === 'number' ? `完整的 ${next} 行回答` : next}。`,
    );
  }
  return { way, pid: server.pid, ignoresSigpipe: ignores, sent, failedErrno, exit, next };
}

interface Models {
  nodeIgnores: boolean | null;
  masterIgnores: boolean | null;
  reap: ReapEvent | null;
  servedNext: boolean;
}

/** The fork model, chargen: a client reads a little and resets; the child ends without a signal. */
async function howTheModelsAvoidIt(lab: LabContext): Promise<Models> {
  const server = await lab.server({ model: 'fork', handler: 'chargen' });
  const reaps: ReapEvent[] = [];
  server.on('reap', (r) => reaps.push(r));
  const c = await lab.client(portOf(server));
  await c.read(1);
  c.sock.resetAndDestroy();
  await waitFor(() => reaps.length > 0, OUTCOME_TIMEOUT_MS, 'the fork master to reap the child of the client that reset');
  const next = await lab.client(portOf(server));
  const servedNext = (await next.read(72).catch(() => null)) !== null;
  const models: Models = {
    nodeIgnores: ignoresSigpipe(process.pid),
    masterIgnores: ignoresSigpipe(server.pid),
    reap: reaps[0],
    servedNext,
  };
  const r = models.reap!;
  lab.say(
    `4) How the models avoid it: every send() of a connection carries MSG_NOSIGNAL (native/core/connection.cc: send_all, serve_stream, send_some…; the C references' ref_send_all in ref/ref.h), and SIGPIPE is ignored besides — by the fork master (native/core/designs/fork_master.cc, run_master; its children inherit it) and the pools' master (native/core/designs/pool_master.cc), and by Node itself, in whose process the thread, iterative, prethread, epoll and uring models run. /proc SigIgn: Node ${process.pid} ${models.nodeIgnores ? 'ignores' : 'does not ignore'} SIGPIPE; the fork master ${server.pid} ${models.masterIgnores ? 'ignores' : 'does not ignore'} it.`,
    `4) 各模型如何避免：连接上的每次 send() 都带 MSG_NOSIGNAL（native/core/connection.cc：send_all、serve_stream、send_some……；C 参考服务器在 ref/ref.h 的 ref_send_all），此外还忽略 SIGPIPE —— fork 的 master（native/core/designs/fork_master.cc，run_master；子进程继承）和进程池的 master（native/core/designs/pool_master.cc），以及 Node 自己：thread、iterative、prethread、epoll 和 uring 模型都运行在 Node 进程里。/proc 的 SigIgn：Node ${process.pid} ${models.nodeIgnores ? '忽略' : '没有忽略'} SIGPIPE；fork 的 master ${server.pid} ${models.masterIgnores ? '忽略' : '没有忽略'}它。`,
  );
  lab.say(
    `   The fork model with chargen (a stream): a client reads a little and resets. The master's waitpid() on its child ${r.pid}: exit code ${r.exitCode ?? '-'}, signal ${r.signal ?? 'none'}; the next client ${servedNext ? 'is served' : 'is NOT served'}.`,
    `   chargen（字节流）的 fork 模型：一个客户端读了一点就重置连接。master 对子进程 ${r.pid} 的 waitpid()：退出码 ${r.exitCode ?? '-'}，信号 ${r.signal ?? '无'}；下一个客户端${servedNext ? '得到服务' : '没有得到服务'}。`,
  );
  return models;
}

function verdict(
  lab: LabContext,
  disarmed: boolean,
  naive: Outcome,
  nosignal: Outcome,
  ignore: Outcome,
  models: Models,
): LabResult {
  const died = (o: Outcome) => o.exit?.signal ?? (o.exit ? `exit ${o.exit.code}` : 'alive');
  const measured = {
    naiveIgnoresSigpipe: naive.ignoresSigpipe ?? '?',
    naiveSent: naive.sent,
    naiveEnd: died(naive),
    naiveNextClient: naive.next,
    nosignalEnd: died(nosignal),
    nosignalErrno: nosignal.failedErrno ?? '-',
    nosignalNextLines: nosignal.next,
    ignoreIgnoresSigpipe: ignore.ignoresSigpipe ?? '?',
    ignoreEnd: died(ignore),
    ignoreErrno: ignore.failedErrno ?? '-',
    ignoreNextLines: ignore.next,
    nodeIgnoresSigpipe: models.nodeIgnores ?? '?',
    forkMasterIgnoresSigpipe: models.masterIgnores ?? '?',
    forkChildSignal: models.reap?.signal ?? 'none',
    forkNextServed: models.servedNext,
  };
  lab.say('Measured:', '测量结果：');
  lab.say(
    `  naive: ${died(naive)} after ${naive.sent} line(s), next client ${naive.next}; MSG_NOSIGNAL: ${died(nosignal)}, send() → ${nosignal.failedErrno ?? '-'}, next client ${nosignal.next} lines; SIG_IGN: ${died(ignore)}, send() → ${ignore.failedErrno ?? '-'}, next client ${ignore.next} lines; the fork model's child: signal ${models.reap?.signal ?? 'none'}.`,
    `  朴素的：发送 ${naive.sent} 行后 ${died(naive)}，下一个客户端 ${naive.next}；MSG_NOSIGNAL：${died(nosignal)}，send() → ${nosignal.failedErrno ?? '-'}，下一个客户端 ${nosignal.next} 行；SIG_IGN：${died(ignore)}，send() → ${ignore.failedErrno ?? '-'}，下一个客户端 ${ignore.next} 行；fork 模型的子进程：信号 ${models.reap?.signal ?? '无'}。`,
  );
  lab.say(
    "Lesson: writing to a connection the peer has reset raises SIGPIPE, and its default action ends the process — not just the connection. The first write to a client that has gone only provokes the RST; the second one kills. A server must send with MSG_NOSIGNAL or ignore SIGPIPE (both, as the models do), and treat EPIPE and ECONNRESET as the end of that one client. (`posix-servers check`'s vanish check is this trap.)",
    '结论：向对方已经重置的连接写数据会触发 SIGPIPE，其默认动作是结束整个进程 —— 而不只是这个连接。向已离开的客户端第一次写只会引来 RST；第二次写才致命。服务器必须用 MSG_NOSIGNAL 发送或忽略 SIGPIPE（像各模型那样两者都做），并把 EPIPE 和 ECONNRESET 当作这一个客户端的结束。（`posix-servers check` 的 vanish 检查就是这个陷阱。）',
  );
  const trapSeen = naive.exit?.signal === 'SIGPIPE' && naive.next === 'ECONNREFUSED';
  if (!trapSeen) {
    lab.say(
      `The trap did not happen: the naive server${disarmed ? ' (disarmed)' : ''} ended ${died(naive)}, its next client got ${naive.next} (SIGPIPE and ECONNREFUSED expected).`,
      `陷阱没有出现：朴素的服务器${disarmed ? '（已解除陷阱）' : ''}结束状态 ${died(naive)}，下一个客户端得到 ${naive.next}（应为 SIGPIPE 和 ECONNREFUSED）。`,
    );
  }
  const fixed = (o: Outcome) => o.exit === null && o.failedErrno === 'EPIPE' && o.next === ANSWER_LINES && o.sent >= 1;
  const ok =
    trapSeen &&
    naive.ignoresSigpipe === false &&
    naive.sent >= 1 &&
    fixed(nosignal) &&
    fixed(ignore) &&
    ignore.ignoresSigpipe === true &&
    models.reap !== null &&
    models.reap.signal === null &&
    models.servedNext &&
    models.masterIgnores === true &&
    models.nodeIgnores === true;
  return { ok, measured };
}
