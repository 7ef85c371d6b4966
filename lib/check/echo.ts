// The checks of one client's bytes: echo (RFC 862, byte for byte), half-close (our FIN, the rest
// of the echo, then the server's FIN), and vanish (a client that resets mid-write does not take
// the server with it).
import { randomBytes } from 'node:crypto';
import { eventually, sleep, tcpExtCounters } from '../labs/kit';
import {
  REPLY_MS,
  VANISH_BYTES,
  VANISH_STUCK_MS,
  ECHO_SIZES,
  CheckDef,
  pass,
  fail,
  size,
  joinTexts,
  withDiagnosis,
  resetOnClose,
} from './context';
import { Text, text } from './report';

// ---- echo: RFC 862, byte for byte ----

export const ECHO: CheckDef = {
  name: 'echo',
  point: text(
    'RFC 862 echo; lecture point 5: read n bytes, write the same n bytes back (short writes handled)',
    'RFC 862 回显；讲义第 5 点：读到 n 个字节，就把这 n 个字节写回（处理写不完的情况）',
  ),
  async run(ctx) {
    const counters = tcpExtCounters();
    const c = await ctx.open();
    try {
      const bad: Text[] = [];
      for (const n of ECHO_SIZES) {
        const payload = randomBytes(n);
        const back = await c.echo(payload, REPLY_MS).catch((e: Error) => e);
        if (!Buffer.isBuffer(back)) {
          bad.push(text(`${size(n)}: ${back.message}`, `${size(n)}：${back.message}`));
          break;
        }
        if (!back.equals(payload)) bad.push(text(`${size(n)}: different bytes came back`, `${size(n)}：返回的字节不同`));
      }
      ctx.watch?.sample(); // its client still connected: a child or a thread serves it
      if (bad.length > 0) return fail(joinTexts(bad), withDiagnosis(resetOnClose(counters)));
      ctx.echoPassed = true;
      return pass(
        text(
          `${ECHO_SIZES.length} random payloads on one connection, 1 B to 1 MiB, came back byte for byte`,
          `同一连接上 ${ECHO_SIZES.length} 段随机数据（1 B 到 1 MiB）逐字节原样返回`,
        ),
      );
    } finally {
      c.destroy();
    }
  },
};

// ---- half-close: our FIN, the rest of the echo, then the server's FIN ----

export const HALF_CLOSE: CheckDef = {
  name: 'half-close',
  point: text(
    "points 1 and 5: after the client's FIN, read() returns 0; the server sends what is left, then close(cfd) — the four-way wave",
    '第 1、5 点：客户端发出 FIN 后 read() 返回 0；服务器发完剩下的数据，再 close(cfd) —— 四次挥手',
  ),
  async run(ctx) {
    const payload = randomBytes(64 * 1024);
    const counters = tcpExtCounters();
    const c = await ctx.open();
    try {
      c.sock.end(payload);
      const closed = await eventually(() => c.closed, REPLY_MS);
      const back = c.take();
      if (!closed) {
        return fail(
          text(
            `after our FIN: the server had not closed the connection after ${REPLY_MS} ms (${back.length} bytes back)`,
            `我们发出 FIN 之后：${REPLY_MS} ms 内服务器没有关闭连接（收回 ${back.length} 字节）`,
          ),
        );
      }
      if (c.error) {
        return fail(
          text(`after our FIN: ${c.error.message}`, `我们发出 FIN 之后：${c.error.message}`),
          withDiagnosis(resetOnClose(counters)),
        );
      }
      return back.equals(payload)
        ? pass(
            text(
              `sent 64 KiB and FIN: got all ${back.length} bytes back, then the server's FIN`,
              `发送 64 KiB 和 FIN：收回全部 ${back.length} 字节，然后收到服务器的 FIN`,
            ),
          )
        : fail(
            text(
              `sent 64 KiB and FIN: got ${back.length} bytes back before the server's FIN${back.length === payload.length ? ', not the bytes sent' : ''}`,
              `发送 64 KiB 和 FIN：服务器 FIN 之前只收回 ${back.length} 字节${back.length === payload.length ? '，且不是发出的字节' : ''}`,
            ),
            withDiagnosis(back.length < payload.length ? resetOnClose(counters) : undefined),
          );
    } finally {
      c.destroy();
    }
  },
};

// ---- concurrency: several clients at once, one at a time, or someone never served ----
// ---- vanish: a client that resets mid-write does not take the server with it ----

export const VANISH: CheckDef = {
  name: 'vanish',
  point: text(
    "a write to a client that has gone raises SIGPIPE, which kills a process by default: send with MSG_NOSIGNAL or ignore SIGPIPE, and treat EPIPE/ECONNRESET as that client's end",
    '向已经离开的客户端写数据会产生 SIGPIPE，默认会杀死进程：用 MSG_NOSIGNAL 发送或忽略 SIGPIPE，把 EPIPE/ECONNRESET 当作这个客户端的结束',
  ),
  circumstance: text(
    ', as a client that sent until the server stopped reading, without reading itself, reset the connection the server was writing to',
    '（当时一个不读取、一直发送到服务器不再读取为止的客户端重置了服务器正在写入的连接）',
  ),
  async run(ctx) {
    const c = await ctx.open();
    let sent = 0;
    try {
      // We never read: an echo server's writes back to us block once our receive buffer and its
      // send buffer are full, and then it reads no more of ours. Loopback's buffers grow with the
      // load (net.ipv4.tcp_rmem: 32 MiB here), so no fixed amount is sure to get there: we send
      // until the kernel takes nothing more of ours for VANISH_STUCK_MS — the server has stopped
      // reading, with our bytes still queued to it — or VANISH_BYTES were sent (a server that
      // reads and never writes back), then reset. Its blocked write fails, its next read still
      // finds our bytes, and the write after it raises SIGPIPE.
      c.sock.pause();
      const chunk = randomBytes(1 << 20);
      const drained = () => eventually(() => c.sock.writableLength === 0, VANISH_STUCK_MS);
      while (sent < VANISH_BYTES) {
        c.sock.write(chunk);
        sent += chunk.length;
        if (!(await drained())) break; // stuck: the server reads no more
      }
      c.sock.resetAndDestroy(); // RST: the server's next writes fail with ECONNRESET, then EPIPE (SIGPIPE)
    } finally {
      c.destroy();
    }
    await sleep(300);
    const next = await ctx.open();
    const served = await next.echoes('still there?\n', REPLY_MS);
    next.destroy();
    const pid = ctx.watch?.pid;
    return served
      ? pass(
          text(
            `a client sent ${size(sent)} without reading and reset the connection; the server${pid ? ` (pid ${pid}) is alive and` : ''} serves the next client`,
            `一个客户端发送 ${size(sent)} 且不读取，然后重置连接；服务器${pid ? `（进程 ${pid}）仍然存活并且` : ''}能服务下一个客户端`,
          ),
        )
      : fail(
          text(
            'after a client reset the connection mid-write, the next client was not served',
            '客户端在写入中途重置连接后，下一个客户端没有得到服务',
          ),
        );
  },
};
