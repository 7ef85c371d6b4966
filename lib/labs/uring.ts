// Lab: the design after epoll. The same clients against two servers of one thread each: epoll asks
// the kernel which sockets are ready, then reads and writes each itself (epoll_wait, then recv and
// send per message); uring hands the kernel requests — one multishot receive per connection, a
// send per reply — and reaps their completions, one io_uring_enter for a whole turn of every
// connection. Counted with strace -c on each server thread: system calls per message, at 50
// connections and at 1. Timed with the native load generator, in interleaved rounds: throughput at
// 50 connections (uring ahead: one io_uring_enter carries many messages) and the round trip at 1
// (uring behind: nothing to batch, and a request costs more than a recv or a send).
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from '../addon';
import { runLoad } from '../bench/loadgen';
import type { PosixServer } from '../server/server';
import { cpuUse, tasksOf } from '../util/proc';
import { defineLab, type LabContext } from './context';
import { portOf, waitFor } from './kit';
import type { LabResult } from './types';

const MESSAGE = 64;
const ROUNDS = 9;
const ROUND_MS = 200;
const COUNT_MS = 300;

interface Design {
  name: 'epoll' | 'uring';
  server: PosixServer;
  /** Its server thread, in Node's process. */
  tid: number;
}

interface Count {
  /** Every system call of the server thread, per message it echoed. */
  perMessage: number;
  messages: number;
  /** strace -c's counts, by call. */
  calls: Map<string, number>;
}

export const uringLab = defineLab({
  name: 'uring',
  summary: {
    en: 'after epoll, io_uring: the same clients, syscalls per message counted (strace -c), ahead at 50 connections, behind at 1',
    zh: 'epoll 之后的 io_uring：同样的客户端，数出每条消息的系统调用（strace -c），50 个连接时领先，1 个连接时落后',
  },
  async run(lab) {
    const [epoll, uring] = await startTheTwoServers(lab);
    const strace = straceAvailable();
    if (!strace) {
      lab.say(
        '   strace is not installed (apt-get install strace): the system calls cannot be counted.',
        '   没有安装 strace（apt-get install strace）：无法统计系统调用。',
      );
    }
    const wide = strace ? await countTheCalls(lab, [epoll, uring], 50) : null;
    const narrow = strace ? await countTheCalls(lab, [epoll, uring], 1) : null;
    const throughput = await throughputAt50(lab, epoll, uring);
    const roundTrip = await roundTripAt1(lab, epoll, uring);
    return verdict(lab, wide, narrow, throughput, roundTrip);
  },
});

/** An epoll server and a uring server, and each one's server thread. */
async function startTheTwoServers(lab: LabContext): Promise<[Design, Design]> {
  const designs: Design[] = [];
  for (const name of ['epoll', 'uring'] as const) {
    const before = new Set(tasksOf('self').map((t) => t.tid));
    const server = await lab.server({ model: name });
    const thread = tasksOf('self').find((t) => !before.has(t.tid) && t.name === native.constants.threadNames.server);
    if (!thread) throw new Error(`no new ${native.constants.threadNames.server} thread in /proc/self/task`);
    designs.push({ name, server, tid: thread.tid });
  }
  const [epoll, uring] = designs;
  lab.say(
    `1) Two servers of one thread each in Node's process ${process.pid}: model 'epoll' (thread ${epoll.tid}, port ${portOf(epoll.server)}) waits in epoll_wait() for ready sockets, then calls recv() and send() on each; model 'uring' (thread ${uring.tid}, port ${portOf(uring.server)}) keeps one multishot receive armed per connection and queues a send request per reply, and one io_uring_enter() submits a turn's requests and collects its completions.`,
    `1) Node 进程 ${process.pid} 中的两个单线程服务器：模型 'epoll'（线程 ${epoll.tid}，端口 ${portOf(epoll.server)}）在 epoll_wait() 中等待就绪的套接字，再对每一个调用 recv() 和 send()；模型 'uring'（线程 ${uring.tid}，端口 ${portOf(uring.server)}）为每个连接保持一个多次触发的接收请求，每个回复排一个发送请求，一次 io_uring_enter() 提交这一轮的请求并收回完成事件。`,
  );
  return [epoll, uring];
}

function straceAvailable(): boolean {
  return spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;
}

/** strace -c attached to one thread (-p with its tid; with -f, strace would attach to every thread of Node's process) while `during` runs: calls by name. */
async function straceCounts(tid: number, during: () => Promise<void>): Promise<Map<string, number>> {
  const file = join(tmpdir(), `posix-servers-lab-uring-${process.pid}-${tid}.txt`);
  const strace = spawn('strace', ['-c', '-o', file, '-p', String(tid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<void>((resolve) => strace.once('exit', () => resolve()));
  let said = '';
  strace.stderr!.setEncoding('utf8');
  strace.stderr!.on('data', (s: string) => (said += s));
  try {
    await waitFor(() => /attached/.test(said) || strace.exitCode !== null, 5000, 'strace to attach');
    if (strace.exitCode !== null) throw new Error(`strace could not attach to thread ${tid}: ${said.trim()}`);
    await during();
  } finally {
    strace.kill('SIGINT');
    await exited;
  }
  const calls = new Map<string, number>();
  try {
    // % time  seconds  usecs/call  calls  [errors]  syscall
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?([a-z_0-9]+)\s*$/.exec(line);
      if (m && m[2] !== 'total') calls.set(m[2], Number(m[1]));
    }
  } finally {
    rmSync(file, { force: true });
  }
  return calls;
}

/** Echoes of `width` connections for COUNT_MS, each server in turn, with strace -c on its thread. */
async function countTheCalls(lab: LabContext, designs: Design[], width: number): Promise<Map<string, Count>> {
  const out = new Map<string, Count>();
  for (const d of designs) {
    const before = d.server.stats().bytesIn;
    const calls = await straceCounts(d.tid, async () => {
      await runLoad({ port: portOf(d.server), mode: 'pingpong', connections: width, size: MESSAGE, durationMs: COUNT_MS });
    });
    const messages = Math.round((d.server.stats().bytesIn - before) / MESSAGE);
    const total = [...calls.values()].reduce((n, c) => n + c, 0);
    out.set(d.name, { perMessage: messages > 0 ? total / messages : Infinity, messages, calls });
  }
  const show = (c: Count) =>
    [...c.calls.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 4)
      .map(([name, n]) => `${name} ${n}`)
      .join(', ');
  const e = out.get('epoll')!;
  const u = out.get('uring')!;
  const step = width === 50 ? '2' : '3';
  lab.say(
    `${step}) ${width} connection${width > 1 ? 's' : ''}, strace -c -p <server thread>: epoll echoed ${e.messages} messages with ${show(e)} — ${e.perMessage.toFixed(2)} system calls per message; uring echoed ${u.messages} with ${show(u)} — ${u.perMessage.toFixed(2)} per message.`,
    `${step}) ${width} 个连接，strace -c -p <服务器线程>：epoll 回显 ${e.messages} 条消息，调用 ${show(e)} —— 每条消息 ${e.perMessage.toFixed(2)} 个系统调用；uring 回显 ${u.messages} 条，调用 ${show(u)} —— 每条 ${u.perMessage.toFixed(2)} 个。`,
  );
  return out;
}

interface Timed {
  /** epoll's and uring's medians over the rounds. */
  epoll: number;
  uring: number;
  /** uring's median ÷ epoll's. */
  ratio: number;
  /** Each server thread's CPU time per message (µs, /proc/<pid>/task/<tid>/schedstat), median of the rounds. */
  epollCpuUs: number;
  uringCpuUs: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * ROUNDS rounds of ping-pong at `width` connections against each server, the order reversed every
 * other round (as bench does: the machine's drift hits both alike), after one round unmeasured.
 * `measure` takes a run's result: messages/s, or the round trip's p50 (a shared machine's stalls
 * move the mean, the p50 stays what the design does).
 */
async function rounds(
  epoll: Design,
  uring: Design,
  width: number,
  measure: (r: { msgsPerSec: number; p50Us: number }) => number,
): Promise<Timed> {
  const cpu = new Map<Design, number[]>([
    [epoll, []],
    [uring, []],
  ]);
  const one = async (d: Design) => {
    const before = cpuUse('self', d.tid);
    const r = await runLoad({
      port: portOf(d.server),
      mode: 'pingpong',
      connections: width,
      size: MESSAGE,
      durationMs: ROUND_MS,
    });
    const after = cpuUse('self', d.tid);
    if (r.errors > 0 || r.verifyFailures > 0) throw new Error(`${d.name}: ${r.errors} errors, ${r.verifyFailures} wrong echoes`);
    if (before && after && r.messages > 0) cpu.get(d)!.push(((after.runningMs - before.runningMs) * 1000) / r.messages);
    return measure({ msgsPerSec: r.msgsPerSec, p50Us: r.latencyUs.p50 });
  };
  await one(epoll);
  await one(uring);
  cpu.set(epoll, []).set(uring, []);
  const e: number[] = [];
  const u: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const first = round % 2 === 0 ? epoll : uring;
    const a = await one(first);
    const b = await one(first === epoll ? uring : epoll);
    e.push(first === epoll ? a : b);
    u.push(first === epoll ? b : a);
  }
  return {
    epoll: median(e),
    uring: median(u),
    ratio: median(u) / median(e),
    epollCpuUs: median(cpu.get(epoll)!),
    uringCpuUs: median(cpu.get(uring)!),
  };
}

async function throughputAt50(lab: LabContext, epoll: Design, uring: Design): Promise<Timed> {
  const t = await rounds(epoll, uring, 50, (r) => r.msgsPerSec);
  lab.say(
    `4) Throughput at 50 connections (native load generator, ${ROUNDS} rounds of ${ROUND_MS} ms, alternating), the median round of each: epoll ${Math.round(t.epoll)} messages/s, uring ${Math.round(t.uring)}: uring ÷ epoll ${t.ratio.toFixed(2)}. The server thread's CPU per message (/proc/<pid>/task/<tid>/schedstat): epoll ${t.epollCpuUs.toFixed(2)} µs, uring ${t.uringCpuUs.toFixed(2)} µs. Every turn of the loop has many connections' messages; one io_uring_enter carries them all, where epoll makes a recv and a send for each.`,
    `4) 50 个连接的吞吐量（原生负载生成器，${ROUNDS} 轮，每轮 ${ROUND_MS} ms，交替进行），各取中位数：epoll 每秒 ${Math.round(t.epoll)} 条消息，uring ${Math.round(t.uring)} 条：uring ÷ epoll = ${t.ratio.toFixed(2)}。服务器线程每条消息的 CPU 时间（/proc/<pid>/task/<tid>/schedstat）：epoll ${t.epollCpuUs.toFixed(2)} µs，uring ${t.uringCpuUs.toFixed(2)} µs。事件循环的每一轮都有许多连接的消息；一次 io_uring_enter 就能带走它们，而 epoll 要为每一条各做一次 recv 和 send。`,
  );
  return t;
}

async function roundTripAt1(lab: LabContext, epoll: Design, uring: Design): Promise<Timed> {
  const t = await rounds(epoll, uring, 1, (r) => r.p50Us);
  lab.say(
    `5) Round trip at 1 connection (the p50 of each round, the median of ${ROUNDS} rounds): epoll ${t.epoll.toFixed(2)} µs, uring ${t.uring.toFixed(2)} µs: uring ÷ epoll ${t.ratio.toFixed(2)}; CPU per message epoll ${t.epollCpuUs.toFixed(2)} µs, uring ${t.uringCpuUs.toFixed(2)} µs. With one client there is nothing to batch: each message still costs uring two io_uring_enter (one hands over the send, which completes at once; one sleeps until the next receive), and each of its requests is set up, completed and reaped — the receive is run as task work when the thread wakes, after the socket is polled again — where epoll's recv() and send() just copy the bytes.`,
    `5) 1 个连接的往返时间（每轮的 p50，${ROUNDS} 轮的中位数）：epoll ${t.epoll.toFixed(2)} µs，uring ${t.uring.toFixed(2)} µs：uring ÷ epoll = ${t.ratio.toFixed(2)}；每条消息的 CPU 时间 epoll ${t.epollCpuUs.toFixed(2)} µs，uring ${t.uringCpuUs.toFixed(2)} µs。只有一个客户端时没有什么可以合并：每条消息 uring 仍要两次 io_uring_enter（一次交出发送请求，它立即完成；一次睡眠到下一次接收），每个请求都要建立、完成、收割 —— 接收要等线程醒来后作为 task work 运行，并先再轮询一次套接字 —— 而 epoll 的 recv() 和 send() 只是复制字节。`,
  );
  return t;
}

function verdict(
  lab: LabContext,
  wide: Map<string, Count> | null,
  narrow: Map<string, Count> | null,
  throughput: Timed,
  roundTrip: Timed,
): LabResult {
  const round2 = (n: number) => Math.round(n * 100) / 100;
  const measured: Record<string, number | boolean> = {
    throughputEpoll50: Math.round(throughput.epoll),
    throughputUring50: Math.round(throughput.uring),
    throughputRatio50: round2(throughput.ratio),
    roundTripEpollUs: round2(roundTrip.epoll),
    roundTripUringUs: round2(roundTrip.uring),
    roundTripRatio1: round2(roundTrip.ratio),
    cpuPerMessageEpoll50Us: round2(throughput.epollCpuUs),
    cpuPerMessageUring50Us: round2(throughput.uringCpuUs),
    cpuPerMessageEpoll1Us: round2(roundTrip.epollCpuUs),
    cpuPerMessageUring1Us: round2(roundTrip.uringCpuUs),
    straceCounted: wide !== null,
  };
  let countsOk = false;
  if (wide && narrow) {
    Object.assign(measured, {
      syscallsPerMessageEpoll50: round2(wide.get('epoll')!.perMessage),
      syscallsPerMessageUring50: round2(wide.get('uring')!.perMessage),
      syscallsPerMessageEpoll1: round2(narrow.get('epoll')!.perMessage),
      syscallsPerMessageUring1: round2(narrow.get('uring')!.perMessage),
      ioUringEnterUring50: wide.get('uring')!.calls.get('io_uring_enter') ?? 0,
      messagesUring50: wide.get('uring')!.messages,
    });
    // epoll: at least a recv and a send per message; uring at 50: a fraction of one io_uring_enter;
    // at 1: fewer calls than epoll still (two io_uring_enter against epoll_wait, recv and send).
    countsOk =
      (measured.syscallsPerMessageEpoll50 as number) >= 2 &&
      (measured.syscallsPerMessageUring50 as number) < 1 &&
      (measured.syscallsPerMessageUring1 as number) < (measured.syscallsPerMessageEpoll1 as number);
  }
  const ahead = (measured.throughputRatio50 as number) > 1;
  const behind = (measured.roundTripRatio1 as number) > 1;
  const ok = countsOk && ahead && behind;
  lab.say(
    `Measured: system calls per message at 50 connections ${wide ? `epoll ${measured.syscallsPerMessageEpoll50}, uring ${measured.syscallsPerMessageUring50}` : 'not counted'}; at 1 ${narrow ? `epoll ${measured.syscallsPerMessageEpoll1}, uring ${measured.syscallsPerMessageUring1}` : 'not counted'}; throughput at 50, uring ÷ epoll ${measured.throughputRatio50} (${ahead ? 'ahead' : 'not ahead'}); round trip at 1, uring ÷ epoll ${measured.roundTripRatio1} (${behind ? 'slower' : 'not slower'}).`,
    `测量结果：50 个连接时每条消息的系统调用 ${wide ? `epoll ${measured.syscallsPerMessageEpoll50}，uring ${measured.syscallsPerMessageUring50}` : '未统计'}；1 个连接时 ${narrow ? `epoll ${measured.syscallsPerMessageEpoll1}，uring ${measured.syscallsPerMessageUring1}` : '未统计'}；50 个连接的吞吐量 uring ÷ epoll = ${measured.throughputRatio50}（${ahead ? '领先' : '没有领先'}）；1 个连接的往返时间 uring ÷ epoll = ${measured.roundTripRatio1}（${behind ? '更慢' : '不慢'}）。`,
  );
  lab.say(
    'Lesson: io_uring wins by batching — many connections, one system call for all of their messages — and loses when there is nothing to batch: one client, one message at a time, pays for the requests and their completions and saves no call worth it. It depends on the load: measure before you believe.',
    '结论：io_uring 靠合并取胜 —— 许多连接的消息只用一次系统调用 —— 而在没有可合并的东西时落后：一个客户端、一次一条消息，要为请求和完成事件付出代价，却省不下值得的调用。取决于负载：先测量，再相信。',
  );
  return { ok, measured };
}
