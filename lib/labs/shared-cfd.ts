// Lab: the &cfd trap (lecture point 10, question 3). pthread_create(&tid, NULL, work, &cfd) hands
// every worker the address of the one variable the next accept() overwrites. A worker that reads
// it late serves someone else's client, and its own client is never served.
import type { TraceEvent } from '../server/events';
import { defineLab, type LabContext } from './context';
import type { Client } from './kit';
import type { LabResult } from './types';

const HOLD_MS = 300;
const SILENCE_MS = 400;

export const sharedCfdLab = defineLab({
  name: 'shared-cfd',
  summary: {
    en: 'passing &cfd to the threads: two workers end up on one client, the other is never served; the slot table fixes it',
    zh: '把 &cfd 传给线程：两个线程处理同一个客户端，另一个客户端没人服务；INFO 槽位表解决这个问题',
  },
  async run(lab) {
    const trap = await twoWorkersReadTheOneCfdVariable(lab);
    const served = await onlyTheSecondClientIsServed(lab, trap);
    await lab.closeAll();
    const slots = await eachWorkerGetsItsOwnSlot(lab);
    return verdict(lab, trap, served, slots);
  },
});

/** Two clients on the &cfd server, and what its two workers read. */
interface Trap {
  first: Client;
  second: Client;
  accepts: TraceEvent[];
  starts: TraceEvent[];
  sameFd: boolean;
  secondCfd: number;
}

interface Slots {
  starts2: TraceEvent[];
  aServed: boolean;
  bServed: boolean;
}

/** threadArg 'shared-cfd': each worker reads *(int *)arg late, after the next accept() wrote it. */
async function twoWorkersReadTheOneCfdVariable(lab: LabContext): Promise<Trap> {
  const server = await lab.tracedServer({ model: 'thread', threadArg: 'shared-cfd', labHoldMs: HOLD_MS });
  lab.say(
    `1) Thread server with threadArg: 'shared-cfd': each worker reads *(int *)arg = the acceptor's cfd variable, ${HOLD_MS} ms after it was created. Two clients connect within that time.`,
    `1) 线程服务器，threadArg: 'shared-cfd'：每个子线程在创建 ${HOLD_MS} ms 后才读取 *(int *)arg，即主线程的 cfd 变量。两个客户端在这段时间内连接。`,
  );
  const first = await lab.client(server.port);
  const second = await lab.client(server.port);
  const starts = await server.atLeast(2, 'worker-start', 'both workers to start', HOLD_MS + 2000);
  const accepts = server.calls('accept');
  server.print(
    server.trace.filter((x) => ['accept', 'pthread_create', 'worker-start'].includes(x.call)),
    '   ',
  );
  return { first, second, accepts, starts, sameFd: starts[0].fd === starts[1].fd, secondCfd: accepts[1]?.result ?? -1 };
}

/** Both workers serve the second client; the first one's bytes are never read. */
async function onlyTheSecondClientIsServed(lab: LabContext, { first, second, accepts, secondCfd }: Trap) {
  first.sock.write('first\n');
  const firstSilent = await first.silentFor(SILENCE_MS);
  const secondEcho = (await second.echo('second\n', 2000).catch(() => '')).toString();
  const secondServed = secondEcho === 'second\n';
  lab.say(
    `   first client (cfd ${accepts[0]?.result}) sent "first": ${firstSilent ? `no echo within ${SILENCE_MS} ms` : 'echoed'}; second client (cfd ${secondCfd}): ${secondServed ? 'echoed' : 'no echo'}.`,
    `   第一个客户端（cfd ${accepts[0]?.result}）发送 "first"：${firstSilent ? `${SILENCE_MS} ms 内没有回显` : '收到回显'}；第二个客户端（cfd ${secondCfd}）：${secondServed ? '收到回显' : '没有回显'}。`,
  );
  return { firstSilent, secondServed };
}

/** The default threadArg 'slot': each worker's cfd is in its own INFO slot; both clients served. */
async function eachWorkerGetsItsOwnSlot(lab: LabContext): Promise<Slots> {
  const fixed = await lab.tracedServer({ model: 'thread' });
  lab.say(
    "2) The same two clients on the default thread server (threadArg: 'slot'): each worker gets its own INFO slot, which holds its cfd.",
    "2) 同样两个客户端，连接默认的线程服务器（threadArg: 'slot'）：每个子线程拿到自己的 INFO 槽位，槽位里保存着它的 cfd。",
  );
  const a = await lab.client(fixed.port);
  const b = await lab.client(fixed.port);
  const aServed = await a.echoes('first\n');
  const bServed = await b.echoes('second\n');
  const starts2 = await fixed.atLeast(2, 'worker-start', 'both workers to start');
  fixed.print(starts2, '   ');
  lab.say(
    `   first client: ${aServed ? 'echoed' : 'no echo'}; second client: ${bServed ? 'echoed' : 'no echo'}.`,
    `   第一个客户端：${aServed ? '收到回显' : '没有回显'}；第二个客户端：${bServed ? '收到回显' : '没有回显'}。`,
  );
  return { starts2, aServed, bServed };
}

function verdict(
  lab: LabContext,
  { starts, sameFd, secondCfd }: Trap,
  { firstSilent, secondServed }: { firstSilent: boolean; secondServed: boolean },
  { starts2, aServed, bServed }: Slots,
): LabResult {
  const measured = {
    workerFd1: starts[0].fd,
    workerFd2: starts[1].fd,
    secondCfd,
    bothWorkersSameFd: sameFd,
    firstServed: !firstSilent,
    secondServed,
    slotWorkerFd1: starts2[0].fd,
    slotWorkerFd2: starts2[1].fd,
    slotDistinctFds: new Set(starts2.map((e) => e.fd)).size,
    slotBothServed: aServed && bServed,
  };
  lab.say('Measured:', '测量结果：');
  lab.say(
    `  &cfd: both workers read fd ${starts[0].fd} and ${starts[1].fd} (the second accept's cfd is ${secondCfd}); the first client got no echo in ${SILENCE_MS} ms. Slot table: workers read fds ${starts2[0].fd} and ${starts2[1].fd}, both clients echoed.`,
    `  &cfd：两个子线程读到的 fd 是 ${starts[0].fd} 和 ${starts[1].fd}（第二次 accept 返回的 cfd 是 ${secondCfd}）；第一个客户端 ${SILENCE_MS} ms 内没有回显。槽位表：子线程读到 fd ${starts2[0].fd} 和 ${starts2[1].fd}，两个客户端都收到回显。`,
  );
  lab.say(
    "Lesson: threads share memory, so &cfd is one variable for all of them; the next accept() overwrites it before a slow thread reads it. Give each thread its own copy: a slot of struct INFO info[100] holding cfd, its thread id and the client's address (points 10, 11).",
    '结论：线程共享内存，&cfd 对所有线程来说是同一个变量；在慢一点的线程读取之前，下一次 accept() 就把它覆盖了。应给每个线程一份自己的数据：struct INFO info[100] 中的一个槽位，保存 cfd、线程 ID 和客户端地址（第 10、11 点）。',
  );
  const ok =
    sameFd && starts[0].fd === secondCfd && firstSilent && secondServed && measured.slotDistinctFds === 2 && aServed && bServed;
  return { ok, measured };
}
