// Lab: the INFO slot table (lecture point 11, homework 2). Every slot starts with cfd = -1; a new
// connection takes the first free slot; when all are in use the connection is refused (close(cfd)).
import type { ConnectionEvent, RejectEvent } from '../server/events';
import { defineLab, type LabContext, type TracedServer } from './context';
import { waitFor, type Client } from './kit';
import type { LabResult } from './types';

const MAX_CLIENTS = 3;

export const slotTableLab = defineLab({
  name: 'slot-table',
  summary: {
    en: `INFO[${MAX_CLIENTS}]: ${MAX_CLIENTS} clients take the slots, client ${MAX_CLIENTS + 1} is refused (close(cfd)); a freed slot is reused`,
    zh: `INFO[${MAX_CLIENTS}]：${MAX_CLIENTS} 个客户端占满槽位，第 ${MAX_CLIENTS + 1} 个被拒绝（close(cfd)）；释放的槽位被重新使用`,
  },
  async run(lab) {
    const table = await aServerWithATableOfSlots(lab);
    const holders = await clientsTakeEverySlot(lab, table);
    const refused = await oneMoreClientIsRefused(lab, table);
    const reuse = await aFreedSlotIsTakenAgain(lab, table, holders.clients[1]);
    return verdict(lab, table, holders.served, refused, reuse);
  },
});

/** The thread server with its slot table, and its connection and reject events as they come. */
interface SlotTable {
  server: TracedServer;
  conns: ConnectionEvent[];
  rejects: RejectEvent[];
}

interface Refused {
  last: Client;
  rejectedCount: number;
}

interface Reuse {
  freed: number;
  reused: number;
  nextServed: boolean;
}

/** maxClients: MAX_CLIENTS — struct INFO info[MAX_CLIENTS], every cfd -1. */
async function aServerWithATableOfSlots(lab: LabContext): Promise<SlotTable> {
  const server = await lab.tracedServer({ model: 'thread', maxClients: MAX_CLIENTS });
  const table: SlotTable = { server, conns: [], rejects: [] };
  server.server.on('connection', (c) => table.conns.push(c));
  server.server.on('reject', (r) => table.rejects.push(r));
  lab.say(
    `Thread server with maxClients: ${MAX_CLIENTS} (struct INFO info[${MAX_CLIENTS}], every cfd starts at -1) on 127.0.0.1:${server.port}.`,
    `线程服务器，maxClients: ${MAX_CLIENTS}（struct INFO info[${MAX_CLIENTS}]，每个 cfd 初始为 -1），地址 127.0.0.1:${server.port}。`,
  );
  return table;
}

/** MAX_CLIENTS clients connect and are echoed, one slot each. */
async function clientsTakeEverySlot(
  lab: LabContext,
  { server, conns }: SlotTable,
): Promise<{ clients: Client[]; served: number }> {
  const clients: Client[] = [];
  let served = 0;
  for (let i = 0; i < MAX_CLIENTS; i++) {
    const c = await lab.client(server.port);
    clients.push(c);
    if (await c.echoes(`client ${i + 1}\n`)) served++;
  }
  await waitFor(() => conns.length >= MAX_CLIENTS, 2000, 'the connections');
  lab.say(
    `${MAX_CLIENTS} clients connected and were echoed, in slots ${conns.map((c) => c.slot).join(', ')}.`,
    `${MAX_CLIENTS} 个客户端已连接并收到回显，占用槽位 ${conns.map((c) => c.slot).join(', ')}。`,
  );
  return { clients, served };
}

/** The table is full: the next client is accepted and closed at once (a reject event). */
async function oneMoreClientIsRefused(lab: LabContext, { server, rejects }: SlotTable): Promise<Refused> {
  const last = await lab.client(server.port);
  await waitFor(() => last.closed, 2000, 'the refused client to see the server close');
  await waitFor(() => rejects.length >= 1, 2000, 'the reject event');
  const lastSaw = last.error ? `reset (${(last.error as NodeJS.ErrnoException).code ?? last.error.message})` : 'EOF';
  server.print(server.calls('slots-full'), '  ');
  lab.say(
    `Client ${MAX_CLIENTS + 1} (port ${last.localPort}): connect() succeeded, then the server closed it at once; the client saw ${lastSaw}. reject event: reason ${rejects[0].reason}.`,
    `第 ${MAX_CLIENTS + 1} 个客户端（端口 ${last.localPort}）：connect() 成功，随后服务器立即关闭了它；客户端看到 ${last.error ? '连接被重置' : 'EOF'}。reject 事件：原因 ${rejects[0].reason}。`,
  );
  return { last, rejectedCount: server.stats().rejected };
}

/** Free the middle slot and connect again: the first free slot is taken. */
async function aFreedSlotIsTakenAgain(lab: LabContext, { server, conns }: SlotTable, middle: Client): Promise<Reuse> {
  const freed = conns[1].slot ?? -1;
  const disconnects: number[] = [];
  server.server.on('disconnect', (d) => disconnects.push(d.id));
  middle.end();
  await waitFor(() => disconnects.includes(conns[1].id), 2000, 'the second client to leave');
  const next = await lab.client(server.port);
  const nextServed = await next.echoes('again\n');
  await waitFor(() => conns.length >= MAX_CLIENTS + 1, 2000, 'the new connection');
  const reused = conns[MAX_CLIENTS].slot ?? -1;
  lab.say(
    `The client in slot ${freed} left; a new client was served (${nextServed ? 'echoed' : 'no echo'}) in slot ${reused}: the first free one.`,
    `槽位 ${freed} 的客户端离开；新的客户端得到服务（${nextServed ? '收到回显' : '没有回显'}），使用槽位 ${reused}：第一个空闲槽位。`,
  );
  return { freed, reused, nextServed };
}

function verdict(
  lab: LabContext,
  { server, rejects }: SlotTable,
  served: number,
  { last, rejectedCount }: Refused,
  reuse: Reuse,
): LabResult {
  const { freed, reused, nextServed } = reuse;
  const measured = {
    maxClients: MAX_CLIENTS,
    served,
    rejected: rejectedCount,
    rejectReason: rejects[0].reason,
    refusedClientSawClose: last.closed,
    refusedClientSaw: last.error ? 'reset' : 'eof',
    slotsFullTraces: server.calls('slots-full').length,
    freedSlot: freed,
    reusedSlot: reused,
    reusedSlotServed: nextServed,
  };
  lab.say('Measured:', '测量结果：');
  lab.say(
    `  served ${served}, stats().rejected ${rejectedCount} (${rejects[0].reason}), the refused client saw the close: ${last.closed ? 'yes' : 'no'}; freed slot ${freed} → reused slot ${reused}.`,
    `  服务 ${served} 个，stats().rejected ${rejectedCount}（${rejects[0].reason}），被拒绝的客户端看到连接关闭：${last.closed ? '是' : '否'}；释放槽位 ${freed} → 重用槽位 ${reused}。`,
  );
  lab.say(
    'Lesson: a fixed table bounds the threads and gives each one its own data. Search for a slot whose cfd == -1; if there is none (i == 100 in the lecture) refuse the client with close(cfd). The worker sets its slot back to -1 when it is done (point 11, homework 2).',
    '结论：固定大小的表限制了线程数量，并让每个线程有自己的数据。查找 cfd == -1 的槽位；找不到（讲义中 i == 100）就 close(cfd) 拒绝这个客户端。子线程结束时把槽位重新设为 -1（第 11 点，作业 2）。',
  );
  const ok =
    served === MAX_CLIENTS &&
    rejectedCount === 1 &&
    rejects[0].reason === 'max-clients' &&
    last.closed &&
    reused === freed &&
    nextServed;
  return { ok, measured };
}
