// Lab: the lingering close (UNP 7.5; Apache's lingering_close()). A server that answers before it
// has read all the client sent, then calls close(), closes a socket with unread bytes in it, and
// Linux then resets the connection: RST instead of FIN, and the part of the reply still in the
// server's send buffer is thrown away. The client loses the end of its reply, and its read fails
// with ECONNRESET. shutdown(SHUT_WR), reading until the client's EOF, then close() delivers it all.
import { spawn } from 'node:child_process';
import { programBinary, type ListeningProgram } from '../bench/reference';
import { errnoName } from '../util/os-names';
import { defineLab, type LabContext } from './context';
import { counterRise, tcpExtCounters } from './kit';
import type { Lab, LabResult, TrapOptions } from './types';

/** native/labs/lingering-close.c's reply: larger than a client's receive window on loopback. */
const REPLY_BYTES = 1 << 20;
/** What the client sends after its request line, which the server never reads. */
const BODY_BYTES = 16 * 1024;
const OUTCOME_TIMEOUT_MS = 10_000;

export function lingeringCloseLabWith({ disarmed = false }: TrapOptions = {}): Lab {
  return defineLab({
    name: 'lingering-close',
    summary: {
      en: 'a server that replies and close()s with unread bytes sends RST: the client loses the rest of its reply (ECONNRESET); shutdown(SHUT_WR), read to EOF, close() delivers it all',
      zh: '带着未读字节回复并 close() 的服务器发出 RST：客户端丢掉回复的剩余部分（ECONNRESET）；shutdown(SHUT_WR)、读到 EOF、再 close() 则全部送达',
    },
    async run(lab) {
      lab.say(
        `native/labs/lingering-close.c reads a request line and nothing after it, sends a reply of ${REPLY_BYTES} bytes (send() returns once the kernel holds it all, not once the client has it), then closes. Each client sends "upload" and a body of ${BODY_BYTES} bytes the server never reads, and reads the reply once the server is through with it (has closed, or shut down its side), to its end.`,
        `native/labs/lingering-close.c 读一行请求，之后的内容一概不读，发送 ${REPLY_BYTES} 字节的回复（send() 在内核收下全部数据时就返回，而不是在客户端收到时），然后关闭。每个客户端发送 "upload" 和服务器从不读取的 ${BODY_BYTES} 字节的 body，在服务器处理完回复（已关闭，或已关闭写方向）之后读回复，直到结束。`,
      );
      const plain = await aClientSendsMoreThanTheServerReads(lab, disarmed ? 'linger' : 'plain', 1);
      await lab.closeAll();
      const linger = await aClientSendsMoreThanTheServerReads(lab, 'linger', 2);
      await lab.closeAll();
      whatTheModelsDo(lab);
      return verdict(lab, disarmed, plain, linger);
    },
  });
}

export const lingeringCloseLab = lingeringCloseLabWith();

interface Outcome {
  way: string;
  /** Bytes the server had not read when it closed (ioctl FIONREAD). */
  unreadAtClose: number;
  /** Bytes the server read while lingering (-1: it did not linger), and why it stopped ('-': it did not). */
  drained: number;
  drainedUntil: string;
  /** The read() loop's client: bytes received, then how its last read() ended ('EOF' or an errno name). */
  received: number;
  clientEnd: string;
  abortOnClose: number;
}

const WAYS: Record<string, { en: string; zh: string }> = {
  plain: { en: 'close(cfd) right after the reply', zh: '回复之后立即 close(cfd)' },
  linger: {
    en: 'shutdown(cfd, SHUT_WR), read and discard until EOF (2 s per read, 10 s at most), then close(cfd)',
    zh: 'shutdown(cfd, SHUT_WR)，读取并丢弃直到 EOF（每次读最多 2 秒，总共最多 10 秒），然后 close(cfd)',
  },
};

/**
 * Runs native/labs/read-client.c against `port`: it sends its request and body, and reads the
 * reply once `serverThrough` has resolved (bounded in time). Resolves with its stdout lines.
 */
function readClient(port: number, serverThrough: Promise<unknown>): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const args = ['--port', String(port), '--body', String(BODY_BYTES), '--read-when-told', 'yes'];
    const child = spawn(programBinary('labs', 'read-client'), args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.stdin.on('error', () => undefined); // it may be gone already: its exit says why
    serverThrough.then(
      () => child.stdin.end('read\n'),
      () => child.kill('SIGKILL'),
    );
    const timer = setTimeout(() => child.kill('SIGKILL'), OUTCOME_TIMEOUT_MS);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out.split('\n').filter(Boolean));
      else reject(new Error(`lab-read-client ended with ${signal ?? `code ${code}`}: ${err.trim()}`));
    });
  });
}

/**
 * The `k`-th client of `server`: the C read() loop, which reads the reply once the server is
 * through with it (closed, or shut down its side to linger). What both ends saw.
 */
async function oneClient(server: ListeningProgram, k: number) {
  const before = tcpExtCounters();
  const through = server.waitForLine(new RegExp(`^(closed|shutdown) ${k}$`), OUTCOME_TIMEOUT_MS);
  const lines = await readClient(server.port, through);
  await through;
  const field = (re: RegExp) => lines.map((l) => re.exec(l)).find((m) => m !== null);
  const received = Number(field(/^received (\d+)$/)?.[1] ?? -1);
  const error = field(/^error (\d+)$/);
  const clientEnd = error ? errnoName(Number(error[1])) : lines.includes('eof') ? 'EOF' : '?';
  await server.waitForLine(new RegExp(`^closed ${k}$`), OUTCOME_TIMEOUT_MS);
  const abortOnClose = counterRise(before, tcpExtCounters(), 'TCPAbortOnClose');
  const said = (re: RegExp) => server.lines.map((l) => re.exec(l)).find((m) => m !== null);
  const unreadAtClose = Number(said(new RegExp(`^unread ${k} (-?\\d+)$`))?.[1] ?? -1);
  const drainedMatch = said(new RegExp(`^drained ${k} (\\d+) (\\w+)$`));
  return {
    received,
    clientEnd,
    abortOnClose,
    unreadAtClose,
    drained: drainedMatch ? Number(drainedMatch[1]) : -1,
    drainedUntil: drainedMatch ? drainedMatch[2] : '-',
  };
}

async function aClientSendsMoreThanTheServerReads(lab: LabContext, way: string, step: number): Promise<Outcome> {
  const server: ListeningProgram = await lab.program('lingering-close', ['--close', way, '--reply', String(REPLY_BYTES)]);
  const seen = await oneClient(server, 1);
  const naive = step === 1;
  lab.say(
    `${step}) ${naive ? 'The naive server' : 'The fix'}: ${WAYS[way].en}${naive && way !== 'plain' ? ' (disarmed)' : ''}. It said: ${seen.unreadAtClose} bytes unread when it ${way === 'plain' ? 'closed' : 'shut down its side'}${seen.drained >= 0 ? `; read ${seen.drained} more until ${seen.drainedUntil === 'eof' ? "the client's EOF" : seen.drainedUntil}, then closed` : ''}.`,
    `${step}) ${naive ? '朴素的服务器' : '修正'}：${WAYS[way].zh}${naive && way !== 'plain' ? '（已解除陷阱）' : ''}。它报告：${way === 'plain' ? '关闭' : '关闭写方向'}时有 ${seen.unreadAtClose} 字节未读${seen.drained >= 0 ? `；之后又读了 ${seen.drained} 字节，直到${seen.drainedUntil === 'eof' ? '客户端的 EOF' : seen.drainedUntil}，然后关闭` : ''}。`,
  );
  lab.say(
    `   The client (native/labs/read-client.c, a read() loop) received ${seen.received} of ${REPLY_BYTES} bytes (${REPLY_BYTES - seen.received} lost), then read() → ${seen.clientEnd === 'EOF' ? '0 (EOF)' : `-1, ${seen.clientEnd}`}. TcpExt TCPAbortOnClose (a close() with unread data, answered by RST) rose by ${seen.abortOnClose}.`,
    `   客户端（native/labs/read-client.c，一个 read() 循环）收到 ${REPLY_BYTES} 字节中的 ${seen.received} 字节（丢失 ${REPLY_BYTES - seen.received}），然后 read() → ${seen.clientEnd === 'EOF' ? '0（EOF）' : `-1，${seen.clientEnd}`}。TcpExt TCPAbortOnClose（带着未读数据 close()，以 RST 结束）增加了 ${seen.abortOnClose}。`,
  );
  if (way === 'plain') await aNodeClientOfTheSameServer(lab, server); // a lingering server would wait for its EOF
  return { way, ...seen };
}

/**
 * The same exchange from Node (net.Socket over libuv), paused until the server has closed as the
 * C client waits: what it reports is printed, not judged.
 */
async function aNodeClientOfTheSameServer(lab: LabContext, server: ListeningProgram): Promise<void> {
  const c = await lab.client(server.port);
  c.sock.pause();
  c.sock.write(Buffer.concat([Buffer.from('upload\n'), Buffer.alloc(BODY_BYTES, 'b')]));
  await server.waitForLine(/^closed 2$/, OUTCOME_TIMEOUT_MS);
  c.sock.resume();
  await c.closedByPeer(OUTCOME_TIMEOUT_MS);
  const code = (c.error as NodeJS.ErrnoException | null)?.code;
  lab.say(
    `   A Node client (net.Socket) of the same server, this time: ${c.received} of ${REPLY_BYTES} bytes, then ${code ? `'error' ${code}` : "'end', as if the reply were whole"}${code ? '' : ": after a read shorter than its buffer while poll() says HUP, libuv reports the end of the stream without reading again, so the reset is never seen — a Node client must check the length it was promised, not trust 'end'"}.`,
    `   同一个服务器的 Node 客户端（net.Socket），这一次：收到 ${REPLY_BYTES} 字节中的 ${c.received} 字节，然后${code ? ` 'error' ${code}` : " 'end'，好像回复是完整的"}${code ? '' : "：读到的字节少于缓冲区而 poll() 又报告 HUP 时，libuv 不再读一次就报告流结束，重置因此从未被看到 —— Node 客户端必须核对约定的长度，而不能相信 'end'"}。`,
  );
}

/** Which of posix-servers' handlers close how (native/core/connection.cc, lib/server/js-connection.ts). */
function whatTheModelsDo(lab: LabContext): void {
  lab.say(
    "3) The models: echo, upper, discard and chargen read until the client's EOF and only then close (native/core/connection.cc: serve_reads, serve_stream; Node's models end after 'end', lib/server/js-connection.ts): nothing is left unread, the close is a FIN. daytime and time send their message, shutdown(SHUT_WR), and close without reading (serve_greeting): RFC 867/868 clients send nothing, and one that does gets RST. The limits that drop a client (idle, lifetime, slow, maxClients) close at once on purpose.",
    "3) 各模型：echo、upper、discard 和 chargen 读到客户端的 EOF 之后才关闭（native/core/connection.cc：serve_reads、serve_stream；Node 的模型在 'end' 之后结束，lib/server/js-connection.ts）：没有未读数据，关闭时发 FIN。daytime 和 time 发送消息、shutdown(SHUT_WR)，然后不读就关闭（serve_greeting）：RFC 867/868 的客户端什么都不发，发了的会收到 RST。丢弃客户端的各种限制（idle、lifetime、slow、maxClients）是故意立即关闭的。",
  );
}

function verdict(lab: LabContext, disarmed: boolean, plain: Outcome, linger: Outcome): LabResult {
  const measured = {
    replyBytes: REPLY_BYTES,
    bodyBytes: BODY_BYTES,
    plainUnreadAtClose: plain.unreadAtClose,
    plainReceived: plain.received,
    plainLost: REPLY_BYTES - plain.received,
    plainClientRead: plain.clientEnd,
    plainAbortOnClose: plain.abortOnClose,
    lingerUnreadAtShutdown: linger.unreadAtClose,
    lingerDrained: linger.drained,
    lingerDrainedUntil: linger.drainedUntil,
    lingerReceived: linger.received,
    lingerClientRead: linger.clientEnd,
  };
  lab.say('Measured:', '测量结果：');
  lab.say(
    `  plain close with ${plain.unreadAtClose} bytes unread: the client got ${plain.received} of ${REPLY_BYTES}, then ${plain.clientEnd}; lingering close: ${linger.received} of ${REPLY_BYTES}, then ${linger.clientEnd}.`,
    `  带着 ${plain.unreadAtClose} 字节未读直接关闭：客户端收到 ${REPLY_BYTES} 中的 ${plain.received}，然后 ${plain.clientEnd}；延迟关闭（lingering close）：${REPLY_BYTES} 中的 ${linger.received}，然后 ${linger.clientEnd}。`,
  );
  lab.say(
    "Lesson: close() on a socket whose receive buffer still holds bytes the server never read does not end the connection politely: Linux answers with RST (RFC 2525, 2.17) and drops whatever of the reply has not left yet; the client reads what had arrived, then read() fails with ECONNRESET (other systems may drop even that). A server that may answer before reading everything (an early error reply, a pipelined request) closes in three steps: shutdown(SHUT_WR) (FIN after the last byte), read until the client's EOF within a time limit, then close(). SO_LINGER does not help here: it decides how long close() waits for sent data, not what happens to unread data.",
    '结论：接收缓冲区里还有服务器没读过的字节时调用 close()，不会体面地结束连接：Linux 以 RST 应答（RFC 2525, 2.17），丢弃回复中还没发出的部分；客户端读完已经到达的数据后，read() 以 ECONNRESET 失败（别的系统可能连已到达的也丢掉）。可能在读完之前就回复的服务器（提前返回错误、流水线请求）要分三步关闭：shutdown(SHUT_WR)（在最后一个字节之后发 FIN），在时间限制内读到客户端的 EOF，然后 close()。SO_LINGER 在这里无济于事：它决定 close() 为已发送的数据等多久，而不是未读数据怎么处理。',
  );
  const trapSeen = plain.unreadAtClose > 0 && plain.received < REPLY_BYTES && plain.clientEnd === 'ECONNRESET';
  if (!trapSeen) {
    lab.say(
      `The trap did not happen: the naive server${disarmed ? ' (disarmed)' : ''} left ${plain.unreadAtClose} bytes unread, the client got ${plain.received} of ${REPLY_BYTES} bytes and ${plain.clientEnd} (a cut reply and ECONNRESET expected).`,
      `陷阱没有出现：朴素的服务器${disarmed ? '（已解除陷阱）' : ''}留下 ${plain.unreadAtClose} 字节未读，客户端收到 ${REPLY_BYTES} 中的 ${plain.received} 字节和 ${plain.clientEnd}（应为被截断的回复和 ECONNRESET）。`,
    );
  }
  const ok =
    trapSeen &&
    plain.abortOnClose > 0 &&
    linger.received === REPLY_BYTES &&
    linger.clientEnd === 'EOF' &&
    linger.drained === BODY_BYTES &&
    linger.drainedUntil === 'eof';
  return { ok, measured };
}
