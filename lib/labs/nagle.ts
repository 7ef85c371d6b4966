// Lab: Nagle's algorithm meets the delayed ACK (UNP 7.9, TCP_NODELAY). A server that writes its
// reply in two small pieces (write-write-read) has the second held back by Nagle until the first
// is acknowledged, and the client, which has nothing to send before it has the whole reply,
// delays that ACK: every request then costs the delayed-ACK timer, tens of ms. TCP_NODELAY sends
// the second piece at once; one writev() sends both in one segment and needs neither.
import type { ListeningProgram } from '../bench/reference';
import { defineLab, type LabContext } from './context';
import { counterRise, now, tcpExtCounters } from './kit';
import type { Lab, LabResult, TrapOptions } from './types';

const REQUESTS = 30;
/** The reply of native/labs/nagle.c: a header line and a body of 100 bytes. */
const REPLY_BYTES = 'reply 100\n'.length + 100;
/**
 * Linux delays an ACK at least TCP_DELACK_MIN, 40 ms, and a timer never fires early: a request
 * held for the ACK cannot take less. Three quarters of it leaves room for a jiffy's rounding.
 */
const DELAYED_AT_LEAST_MS = 30;
/** How much faster the fixes' median must be than the naive one's (the same run, the same machine). */
const FASTER_BY = 10;

interface Way {
  name: string;
  args: string[];
  en: string;
  zh: string;
}

export function nagleLabWith({ disarmed = false }: TrapOptions = {}): Lab {
  const ways: Way[] = [
    {
      name: 'two writes',
      args: ['--write', 'two', '--nodelay', disarmed ? 'yes' : 'no'],
      en: `send(header), send(body), Nagle on (the default)${disarmed ? ' — disarmed: TCP_NODELAY set' : ''}`,
      zh: `send(header)、send(body)，Nagle 打开（默认）${disarmed ? ' —— 已解除陷阱：设置了 TCP_NODELAY' : ''}`,
    },
    {
      name: 'TCP_NODELAY',
      args: ['--write', 'two', '--nodelay', 'yes'],
      en: 'setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &on, …), then the same two send() calls',
      zh: 'setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &on, …)，然后同样的两次 send()',
    },
    {
      name: 'writev',
      args: ['--write', 'writev', '--nodelay', 'no'],
      en: 'one writev() of header and body, Nagle on',
      zh: '一次 writev() 写出 header 和 body，Nagle 打开',
    },
  ];
  return defineLab({
    name: 'nagle',
    summary: {
      en: 'a reply written in two pieces waits for the delayed ACK (tens of ms per request, Nagle on); TCP_NODELAY or one writev(): microseconds',
      zh: '分两次写出的回复要等延迟 ACK（Nagle 打开时每个请求几十毫秒）；TCP_NODELAY 或一次 writev()：微秒级',
    },
    async run(lab) {
      lab.say(
        `native/labs/nagle.c answers each request line "ask" with a header line and a ${REPLY_BYTES - 10}-byte body. One client, one connection, ${REQUESTS} requests one after another; each timed from its send to the last byte of its reply.`,
        `native/labs/nagle.c 对每个请求行 "ask" 回复一行 header 和 ${REPLY_BYTES - 10} 字节的 body。一个客户端，一个连接，依次 ${REQUESTS} 个请求；每个请求从发送计时到收到回复的最后一个字节。`,
      );
      const runs: Timed[] = [];
      for (const [i, way] of ways.entries()) {
        runs.push(await requestsOnOneConnection(lab, way, i + 1));
        await lab.closeAll();
      }
      whoSetsIt(lab);
      return verdict(lab, disarmed, runs);
    },
  });
}

export const nagleLab = nagleLabWith();

interface Timed {
  name: string;
  ms: number[];
  p50: number;
  p90: number;
  /** Requests that took DELAYED_AT_LEAST_MS or more. */
  slow: number;
  delayedAcks: number;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const ms = (x: number) => (x >= 10 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toFixed(2));

async function requestsOnOneConnection(lab: LabContext, way: Way, step: number): Promise<Timed> {
  const server: ListeningProgram = await lab.program('nagle', way.args);
  const c = await lab.client(server.port);
  const before = tcpExtCounters();
  const times: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const t0 = now();
    c.sock.write('ask\n');
    await c.read(REPLY_BYTES);
    times.push(now() - t0);
  }
  const delayedAcks = counterRise(before, tcpExtCounters(), 'DelayedACKs');
  const sorted = [...times].sort((a, b) => a - b);
  const timed: Timed = {
    name: way.name,
    ms: times,
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    slow: times.filter((x) => x >= DELAYED_AT_LEAST_MS).length,
    delayedAcks,
  };
  lab.say(
    `${step}) ${way.en}: min ${ms(sorted[0])}, median ${ms(timed.p50)}, p90 ${ms(timed.p90)}, max ${ms(sorted[sorted.length - 1])} ms; ${timed.slow} of ${REQUESTS} took ${DELAYED_AT_LEAST_MS} ms or more. TcpExt DelayedACKs rose by ${delayedAcks}.`,
    `${step}) ${way.zh}：最小 ${ms(sorted[0])}，中位数 ${ms(timed.p50)}，p90 ${ms(timed.p90)}，最大 ${ms(sorted[sorted.length - 1])} ms；${REQUESTS} 个中有 ${timed.slow} 个用了 ${DELAYED_AT_LEAST_MS} ms 以上。TcpExt DelayedACKs 增加了 ${delayedAcks}。`,
  );
  lab.say(`   each request, ms: ${times.map(ms).join(' ')}`, `   每个请求（ms）：${times.map(ms).join(' ')}`);
  return timed;
}

/** Where posix-servers sets TCP_NODELAY, and where it does not. */
function whoSetsIt(lab: LabContext): void {
  lab.say(
    "4) posix-servers' load generator sets TCP_NODELAY on every socket before connect() (native/loadgen/loadgen.cc): its ping-pong would otherwise time this timer. The servers' models do not set it on the connections they accept: an echo answers each read with one send(), so a message of up to 16 KiB comes back in one piece.",
    '4) posix-servers 的负载生成器在 connect() 之前给每个套接字设置 TCP_NODELAY（native/loadgen/loadgen.cc）：否则它的乒乓测量的就是这个定时器。各服务器模型没有给 accept 得到的连接设置它：echo 对每次读只用一次 send() 回复，所以 16 KiB 以内的消息一次返回。',
  );
}

function verdict(lab: LabContext, disarmed: boolean, runs: Timed[]): LabResult {
  const [naive, nodelay, writev] = runs;
  const round = (x: number) => Math.round(x * 100) / 100;
  const measured = {
    requests: REQUESTS,
    twoWritesMedianMs: round(naive.p50),
    twoWritesP90Ms: round(naive.p90),
    twoWritesSlow: naive.slow,
    twoWritesDelayedAcks: naive.delayedAcks,
    nodelayMedianMs: round(nodelay.p50),
    nodelaySlow: nodelay.slow,
    writevMedianMs: round(writev.p50),
    writevSlow: writev.slow,
  };
  lab.say('Measured:', '测量结果：');
  lab.say(
    `  median per request: two writes ${ms(naive.p50)} ms (DelayedACKs +${naive.delayedAcks}), TCP_NODELAY ${ms(nodelay.p50)} ms, writev ${ms(writev.p50)} ms.`,
    `  每个请求的中位数：两次写 ${ms(naive.p50)} ms（DelayedACKs +${naive.delayedAcks}），TCP_NODELAY ${ms(nodelay.p50)} ms，writev ${ms(writev.p50)} ms。`,
  );
  lab.say(
    "Lesson: Nagle's algorithm holds a small segment while an earlier one is unacknowledged, and the receiver holds its ACK (40 ms or more on Linux) hoping to send it with data: a server that writes one reply in two small pieces (write-write-read) waits for that timer on every request. Build the reply and send it in one call (writev(), or a buffer), or set TCP_NODELAY where small writes must leave at once. Nagle is harmless for one send() per reply.",
    '结论：Nagle 算法在前一个小报文未被确认时扣住下一个小报文，而接收方会把 ACK 延迟（Linux 上至少 40 ms），希望能和数据一起发出：把一个回复分两次小写（写-写-读）的服务器，每个请求都要等这个定时器。把回复拼好一次发出（writev() 或缓冲区），或者在小的写必须立即发出的地方设置 TCP_NODELAY。每个回复只用一次 send() 时，Nagle 并无害处。',
  );
  const trapSeen = naive.p50 >= DELAYED_AT_LEAST_MS && naive.slow >= REQUESTS / 2;
  if (!trapSeen) {
    lab.say(
      `The trap did not happen: the two writes${disarmed ? ' (disarmed)' : ''} took a median ${ms(naive.p50)} ms, ${naive.slow} of ${REQUESTS} requests ${DELAYED_AT_LEAST_MS} ms or more (a delayed ACK costs at least 40 ms).`,
      `陷阱没有出现：两次写${disarmed ? '（已解除陷阱）' : ''}的中位数是 ${ms(naive.p50)} ms，${REQUESTS} 个请求中有 ${naive.slow} 个用了 ${DELAYED_AT_LEAST_MS} ms 以上（延迟 ACK 至少 40 ms）。`,
    );
  }
  const ok =
    trapSeen && naive.delayedAcks >= REQUESTS / 2 && nodelay.p50 * FASTER_BY <= naive.p50 && writev.p50 * FASTER_BY <= naive.p50;
  return { ok, measured };
}
