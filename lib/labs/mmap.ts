// Lab: what parent and child share (lecture point 8). After fork() the child has a copy of the
// parent's memory: an ordinary variable it changes is its own. A MAP_SHARED mapping made before
// the fork is the same memory in both: what a child adds there, the parent sees.
import { readFileSync } from 'node:fs';
import type { ListeningProgram } from '../bench/reference';
import { defineLab, type LabContext } from './context';
import { exchange } from './kit';
import type { LabResult } from './types';

const N = 3;
const LINE_TIMEOUT_MS = 3000;

interface Counts {
  pid: number;
  plain: number;
  shared: number;
}

const CHILD_LINE = /^child (\d+) plain (-?\d+) shared (-?\d+)$/;
const PARENT_LINE = /^parent (\d+) plain (-?\d+) shared (-?\d+) plain_at 0x([0-9a-f]+) shared_at 0x([0-9a-f]+)$/;

function counts(m: RegExpExecArray): Counts {
  return { pid: Number(m[1]), plain: Number(m[2]), shared: Number(m[3]) };
}

/** The parent's counts, and where the two counters are in its memory. */
type ParentView = Counts & { plainAt: bigint; sharedAt: bigint };

/** The parent's view: SIGUSR1, then its `parent …` line (from the handler, with write()). */
async function askParent(p: ListeningProgram): Promise<ParentView> {
  const from = p.lines.length;
  process.kill(p.pid, 'SIGUSR1');
  const m = PARENT_LINE.exec(await p.waitForLine(PARENT_LINE, LINE_TIMEOUT_MS, from))!;
  return { ...counts(m), plainAt: BigInt(`0x${m[4]}`), sharedAt: BigInt(`0x${m[5]}`) };
}

interface MapLine {
  start: bigint;
  end: bigint;
  perms: string;
  inode: number;
  path: string;
  line: string;
}

/** The /proc/<pid>/maps line whose range holds `addr`, or null. */
function mappingAt(pid: number, addr: bigint): MapLine | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5) continue;
    const [lo, hi] = f[0].split('-').map((x) => BigInt(`0x${x}`));
    if (addr >= lo && addr < hi) {
      return { start: lo, end: hi, perms: f[1], inode: Number(f[4]), path: f.slice(5).join(' '), line: line.trim() };
    }
  }
  return null;
}

const show = (m: MapLine | null) => (m ? m.line.replace(/\s+/g, ' ') : '-');

export const mmapLab = defineLab({
  name: 'mmap',
  summary: {
    en: `after ${N} forked children each add 1, the parent's ordinary variable is still 0 (a copy) and its MAP_SHARED counter is ${N}`,
    zh: `${N} 个 fork 出的子进程各加 1 之后，父进程的普通变量仍是 0（子进程改的是副本），而 MAP_SHARED 共享映射区里的计数是 ${N}`,
  },
  async run(lab) {
    const p = await lab.program('mmap');
    const start = await theParentMapsASharedCounterBeforeForking(lab, p);
    const childViews = await eachChildAddsOneToBoth(lab, p);
    const after = await theParentSeesOnlyTheSharedOne(lab, p);
    const maps = await theTwoPagesInProcMaps(lab, p, after);
    return verdict(lab, start, childViews, after, maps);
  },
});

/** The two counters' pages in /proc/<pid>/maps of the parent and of a live child. */
interface Maps {
  parentShared: MapLine | null;
  childShared: MapLine | null;
  parentPlain: MapLine | null;
  childPlain: MapLine | null;
}

/** Before any fork: shared_count is a MAP_SHARED page, plain_count an ordinary global; both 0. */
async function theParentMapsASharedCounterBeforeForking(lab: LabContext, p: ListeningProgram): Promise<ParentView> {
  const start = await askParent(p);
  lab.say(
    `Started a fork server (native/labs/mmap.c), parent pid ${p.pid}, port ${p.port}. Before any fork it made shared_count = mmap(NULL, 8, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0) at 0x${start.sharedAt.toString(16)}; plain_count is an ordinary global at 0x${start.plainAt.toString(16)}. Each child does plain_count++ and (*shared_count)++, then echoes.`,
    `启动多进程服务器（native/labs/mmap.c），父进程 ${p.pid}，端口 ${p.port}。在 fork 之前它已创建 shared_count = mmap(NULL, 8, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0)，地址 0x${start.sharedAt.toString(16)}；plain_count 是普通全局变量，地址 0x${start.plainAt.toString(16)}。每个子进程执行 plain_count++ 和 (*shared_count)++，然后回显。`,
  );
  lab.say(
    `   SIGUSR1 → the parent says: plain_count ${start.plain}, *shared_count ${start.shared}.`,
    `   SIGUSR1 → 父进程报告：plain_count ${start.plain}，*shared_count ${start.shared}。`,
  );
  return start;
}

/** N clients, one after another: each child adds 1 to both counters and says what it sees. */
async function eachChildAddsOneToBoth(lab: LabContext, p: ListeningProgram): Promise<Counts[]> {
  const childViews: Counts[] = [];
  for (let i = 0; i < N; i++) {
    const from = p.lines.length;
    await exchange(p.port, `hello ${i}\n`);
    childViews.push(counts(CHILD_LINE.exec(await p.waitForLine(CHILD_LINE, LINE_TIMEOUT_MS, from))!));
  }
  for (const c of childViews) {
    lab.say(
      `   child ${c.pid} served a client and said: plain_count ${c.plain}, *shared_count ${c.shared}.`,
      `   子进程 ${c.pid} 服务了一个客户端，它报告：plain_count ${c.plain}，*shared_count ${c.shared}。`,
    );
  }
  return childViews;
}

/** After N children: the parent's own plain_count is untouched, the shared one counts them all. */
async function theParentSeesOnlyTheSharedOne(lab: LabContext, p: ListeningProgram): Promise<ParentView> {
  const after = await askParent(p);
  lab.say(
    `   After ${N} connections, SIGUSR1 → the parent says: plain_count ${after.plain}, *shared_count ${after.shared}.`,
    `   ${N} 个连接之后，SIGUSR1 → 父进程报告：plain_count ${after.plain}，*shared_count ${after.shared}。`,
  );
  return after;
}

/** One more client stays connected, so that its child can be looked at in /proc. */
async function theTwoPagesInProcMaps(lab: LabContext, p: ListeningProgram, after: ParentView): Promise<Maps> {
  const from = p.lines.length;
  const kept = await lab.client(p.port);
  const liveChild = counts(CHILD_LINE.exec(await p.waitForLine(CHILD_LINE, LINE_TIMEOUT_MS, from))!);
  await kept.echo('stay\n');
  const parentShared = mappingAt(p.pid, after.sharedAt);
  const childShared = mappingAt(liveChild.pid, after.sharedAt);
  const parentPlain = mappingAt(p.pid, after.plainAt);
  const childPlain = mappingAt(liveChild.pid, after.plainAt);
  lab.say(
    `   A client stays connected to child ${liveChild.pid}. The page of *shared_count in /proc/<pid>/maps:`,
    `   一个客户端保持连接，由子进程 ${liveChild.pid} 服务。/proc/<pid>/maps 中 *shared_count 所在的映射：`,
  );
  lab.out(`     parent ${p.pid}: ${show(parentShared)}`);
  lab.out(`     child  ${liveChild.pid}: ${show(childShared)}`);
  lab.say(
    '   and the page of plain_count (the program\'s data, "p" = private: copy-on-write):',
    '   以及 plain_count 所在的映射（程序的数据段，“p” = 私有：写时复制）：',
  );
  lab.out(`     parent ${p.pid}: ${show(parentPlain)}`);
  lab.out(`     child  ${liveChild.pid}: ${show(childPlain)}`);
  return { parentShared, childShared, parentPlain, childPlain };
}

/** The shared page is one MAP_SHARED mapping in parent and child; plain_count's page private in both. */
function compareMappings({ parentShared, childShared, parentPlain, childPlain }: Maps) {
  const sharedInBoth =
    parentShared !== null &&
    childShared !== null &&
    parentShared.perms.includes('s') &&
    childShared.perms.includes('s') &&
    parentShared.inode === childShared.inode &&
    parentShared.start === childShared.start;
  const plainPrivateInBoth =
    parentPlain !== null && childPlain !== null && parentPlain.perms.includes('p') && childPlain.perms.includes('p');
  return { sharedInBoth, plainPrivateInBoth };
}

function verdict(lab: LabContext, start: ParentView, childViews: Counts[], after: ParentView, maps: Maps): LabResult {
  const { parentShared, childShared } = maps;
  const { sharedInBoth, plainPrivateInBoth } = compareMappings(maps);
  const measured = {
    connections: N,
    parentPlainBefore: start.plain,
    parentSharedBefore: start.shared,
    childPlain: childViews.map((c) => c.plain).join(','),
    childShared: childViews.map((c) => c.shared).join(','),
    parentPlainAfter: after.plain,
    parentSharedAfter: after.shared,
    sharedMappingInParent: parentShared !== null && parentShared.perms.includes('s'),
    sharedMappingInChild: childShared !== null && childShared.perms.includes('s'),
    sameSharedMapping: sharedInBoth,
    plainPagePrivate: plainPrivateInBoth,
  };
  lab.say('Measured:', '测量结果：');
  lab.say(
    `  each child saw plain_count ${measured.childPlain} (its own copy, from the parent's 0) and *shared_count ${measured.childShared}; the parent sees plain_count ${after.plain} and *shared_count ${after.shared}. /proc/<pid>/maps: the shared page is "s" (shared) in the parent and the child, same inode: ${sharedInBoth ? 'yes' : 'no'}.`,
    `  每个子进程看到的 plain_count 依次是 ${measured.childPlain}（它自己的副本，从父进程的 0 开始），*shared_count 依次是 ${measured.childShared}；父进程看到 plain_count ${after.plain}、*shared_count ${after.shared}。/proc/<pid>/maps：共享页在父子进程中都是 “s”（共享），inode 相同：${sharedInBoth ? '是' : '否'}。`,
  );
  lab.say(
    "Lesson: fork() copies the parent's memory (copy-on-write): a child's change to an ordinary variable stays in the child, at the very same address. What parent and child share is what the lecture lists (point 8): the descriptors (as copies of the same open files) and an mmap shared mapping, which is the same memory in every process that inherited it — the way a fork server's children can report to the parent (this package's own counters live in such a page).",
    '结论：fork() 复制父进程的内存（写时复制）：子进程对普通变量的修改只留在子进程里，哪怕地址完全相同。父子进程能共享的正是讲义所列（第 8 点）：文件描述符（指向同一打开文件的副本）和 mmap 共享映射区 —— 后者在每个继承了它的进程中都是同一块内存，多进程服务器的子进程可以借此向父进程汇报（本软件包自己的计数器就放在这样的页里）。',
  );
  const ok =
    start.plain === 0 &&
    start.shared === 0 &&
    childViews.every((c) => c.plain === 1) &&
    childViews.map((c) => c.shared).join(',') === Array.from({ length: N }, (_, i) => i + 1).join(',') &&
    after.plain === 0 &&
    after.shared === N &&
    sharedInBoth &&
    plainPrivateInBoth;
  return { ok, measured };
}
