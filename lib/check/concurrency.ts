// The checks of many clients: concurrency (several at once, one at a time, or someone never
// served) and max-clients (N served; client N+1 refused or kept waiting, as claimed; a freed place
// reused).
import { randomBytes } from 'node:crypto';
import { Client, destroyAll, eventually, now, sleep } from '../labs/kit';
import {
  REPLY_MS,
  CONCURRENT_MS,
  NEXT_MS,
  REFUSE_MS,
  FREED_MS,
  Ctx,
  Outcome,
  CheckDef,
  pass,
  fail,
  skip,
  plural,
  list,
  joinTexts,
} from './context';
import { diagnosis, Diagnosis, Text, text } from './report';
import { acceptQueue } from './watch';

// ---- concurrency: several clients at once, one at a time, or someone never served ----

/** What a client got back where its own line was due. */
export type Answer =
  | { kind: 'own' }
  /** The line another client (by index) had sent: the server crossed two connections. */
  | { kind: 'other'; from: number }
  | { kind: 'garbled' }
  /** The server closed (or reset) the connection first. */
  | { kind: 'closed' }
  /** Nothing, or not all of it, within the wait. */
  | { kind: 'silent' };

/** Sends `lines[i]` on `c` and resolves with what came back in its place. */
export function answerOf(c: Client, i: number, lines: Buffer[], timeoutMs: number): Promise<Answer> {
  c.sock.write(lines[i]);
  return c.read(lines[i].length, timeoutMs).then(
    (b): Answer => {
      if (b.equals(lines[i])) return { kind: 'own' };
      const from = lines.findIndex((l) => l.equals(b));
      return from >= 0 ? { kind: 'other', from } : { kind: 'garbled' };
    },
    (): Answer => (c.closed ? { kind: 'closed' } : { kind: 'silent' }),
  );
}

/** What the clients that were not served met, a clause per kind (1-based client numbers). */
function unserved(answers: Answer[], after: Text): Text[] {
  const out: Text[] = [];
  const numbers = (kind: Answer['kind']) => answers.map((a, i) => (a.kind === kind ? i + 1 : 0)).filter((n) => n > 0);
  const who = (ns: number[]) => text(`client${ns.length > 1 ? 's' : ''} ${list(ns).en}`, `客户端 ${list(ns).zh}`);
  answers.forEach((a, i) => {
    if (a.kind === 'other') {
      out.push(
        text(
          `client ${i + 1} got the line client ${a.from + 1} had sent`,
          `客户端 ${i + 1} 收到的是客户端 ${a.from + 1} 发出的那一行`,
        ),
      );
    }
  });
  const garbled = numbers('garbled');
  if (garbled.length)
    out.push(text(`${who(garbled).en} got bytes no client had sent`, `${who(garbled).zh} 收到的字节不是任何客户端发出的`));
  const closed = numbers('closed');
  if (closed.length) {
    out.push(
      text(
        `${who(closed).en} ${closed.length > 1 ? 'were' : 'was'} closed by the server without ${closed.length > 1 ? 'their lines' : 'its line'} back`,
        `${who(closed).zh} 没有收回自己的那一行就被服务器关闭了`,
      ),
    );
  }
  const silent = numbers('silent');
  if (silent.length) {
    out.push(
      text(
        `${who(silent).en} never got ${silent.length > 1 ? 'their' : 'its'} own line back, ${after.en}`,
        `${who(silent).zh} 一直没有收回自己的那一行，${after.zh}`,
      ),
    );
  }
  return out;
}

/**
 * Why clients went unserved, from what was seen: the lecture's thread, fork or one-process fix
 * only when /proc showed that design; without --pid, no fix.
 */
function lostDiagnosis(ctx: Ctx, k: number, answers: Answer[], noBytes: boolean): Diagnosis {
  if (noBytes && !ctx.echoPassed) {
    return diagnosis(
      'no-echo',
      text(
        `none of the ${k} clients got a single byte back: this server does not echo what it is sent, so its concurrency cannot be judged by echoes`,
        `${k} 个客户端都没有收回任何字节：这个服务器不回显收到的数据，因此无法用回显判断它能否同时服务多个客户端`,
      ),
    );
  }
  const crossed = answers.some((a) => a.kind === 'other');
  const watch = ctx.watch;
  if (watch === null) {
    return diagnosis(
      'clients-lost',
      text(
        `${crossed ? "one client's data went to another client's connection. " : ''}Without --pid PID check cannot see whether the server forks or runs threads, so it names no fix: run it again with --pid`,
        `${crossed ? '一个客户端的数据被写到了另一个客户端的连接上。' : ''}不给 --pid PID，check 看不出服务器是多进程还是多线程，因此不指出改法：请加上 --pid 再运行`,
      ),
    );
  }
  const pid = watch.pid;
  const design = watch.design();
  if (design.kind === 'fork') {
    return diagnosis(
      'fork-child',
      text(
        `pid ${pid} had ${plural(design.children, 'child process', 'child processes')} while ${k} clients were connected: in a fork server each child must serve the cfd that accept() returned for it, then close(cfd) and exit(0), while the parent closes cfd and accepts the next (points 5, 6)`,
        `${k} 个客户端连接期间，进程 ${pid} 有 ${design.children} 个子进程：多进程服务器中每个子进程必须服务 accept() 为它返回的那个 cfd，然后 close(cfd) 并 exit(0)；父进程关闭 cfd 后接着 accept 下一个（第 5、6 点）`,
      ),
    );
  }
  if (design.kind === 'threads') {
    return diagnosis(
      'shared-cfd',
      text(
        `pid ${pid} runs ${design.threads} threads: is cfd passed to the threads by address (&cfd)? The next accept() overwrites it while a thread still uses it, so two threads end up on one client${crossed ? " (one client got another's line)" : ''} and another is never served; give each thread its own copy — a slot of INFO[] (points 10, 11)`,
        `进程 ${pid} 有 ${design.threads} 个线程：是不是把 cfd 的地址（&cfd）传给了线程？下一次 accept() 会在线程还在用它时覆盖它，于是两个线程落在同一个客户端上${crossed ? '（一个客户端收到了另一个客户端的数据）' : ''}，另一个客户端永远得不到服务；应该给每个线程一份自己的 cfd —— INFO[] 的一个槽位（第 10、11 点）`,
      ),
    );
  }
  return diagnosis(
    'one-cfd',
    text(
      `pid ${pid} is one process with one thread serving every client itself: does it keep the clients' descriptors in one variable cfd (point 4, fix 1)? The next accept() overwrites it, and the earlier clients are never served again; serve each client in a process (point 5) or a thread (point 9) of its own`,
      `进程 ${pid} 只有一个进程、一个线程，自己服务所有客户端：是不是把所有客户端的描述符都放在同一个变量 cfd 里（第 4 点，解决办法 1）？下一次 accept() 会覆盖它，之前的客户端再也得不到服务；应该每个客户端一个进程（第 5 点）或一个线程（第 9 点）`,
    ),
  );
}

export const CONCURRENCY: CheckDef = {
  name: 'concurrency',
  point: text(
    'points 3, 4, 5, 9, 10: one process or thread per client serves them all at once; an iterative server serves one at a time; one cfd variable, or workers sharing &cfd, leave a client unserved',
    '第 3、4、5、9、10 点：每个客户端一个进程或线程，可以同时服务所有客户端；迭代服务器一次只服务一个；只有一个 cfd 变量，或者线程共享 &cfd，都会让某个客户端得不到服务',
  ),
  async run(ctx) {
    const k = Math.min(3, ctx.o.maxClients ?? 3);
    const clients: Client[] = [];
    try {
      // Connected back to back, before anyone says a word: the way a race on &cfd shows.
      for (let i = 0; i < k; i++) clients.push(await ctx.open());
      const lines = clients.map((_, i) => Buffer.from(`client ${i + 1} of ${k}: ${randomBytes(6).toString('hex')}\n`));
      const answers: Array<Answer | null> = clients.map(() => null);
      const answeredAt: number[] = clients.map(() => Infinity);
      clients.forEach(
        (c, i) =>
          void answerOf(c, i, lines, CONCURRENT_MS + NEXT_MS * k).then((a) => {
            answers[i] = a;
            answeredAt[i] = now();
          }),
      );
      await eventually(() => answers.every((a) => a !== null), CONCURRENT_MS);
      ctx.watch?.sample(); // the clients are connected: a fork server's children, a thread server's threads

      if (answers.every((a) => a?.kind === 'own')) {
        // Again, last client first, all still connected: a server that keeps one cfd variable
        // (the lecture's fix 1) may have answered lines that were waiting when it accepted them,
        // but only the last client from then on.
        const again: Answer[] = [];
        await Promise.all(
          clients
            .map((c, i) => ({ c, i }))
            .reverse()
            .map(({ c, i }) => answerOf(c, i, lines, CONCURRENT_MS).then((a) => (again[i] = a))),
        );
        ctx.watch?.sample();
        if (again.every((a) => a.kind === 'own')) {
          return pass(
            text(
              `concurrent: ${k} clients connected at once; each got its own line back, twice, while all stayed connected`,
              `concurrent：${k} 个客户端同时连接；在都保持连接的情况下，每个都两次收回了自己的那一行`,
            ),
            { verdict: 'concurrent' },
          );
        }
        const lost = again.map((a, i) => (a.kind === 'own' ? 0 : i + 1)).filter((n) => n > 0);
        return fail(
          joinTexts([
            text(
              `broken: each client got its first line back, but client${lost.length > 1 ? 's' : ''} ${list(lost).en} got no second one while the others stayed connected`,
              `broken：每个客户端都收回了第一行，但在其他客户端保持连接时，客户端 ${list(lost).zh} 没有收回第二行`,
            ),
            // What came instead, where something did (a silent client is the sentence above).
            ...unserved(
              again.map((a) => (a.kind === 'silent' ? { kind: 'own' as const } : a)),
              text('', ''),
            ),
          ]),
          { verdict: 'broken', diagnosis: lostDiagnosis(ctx, k, again, false) },
        );
      }

      // One at a time? Let the served ones leave, in order, and see whether the next gets its turn.
      let firstLeftAt = Infinity;
      const left: number[] = [];
      for (let round = 0; round < k; round++) {
        const served = answers.findIndex((a, i) => a?.kind === 'own' && !left.includes(i));
        if (served < 0) break;
        left.push(served);
        if (firstLeftAt === Infinity) firstLeftAt = now();
        clients[served].end();
        await eventually(
          () => answers.some((a, i) => a !== null && !left.includes(i)) || answers.every((a) => a !== null),
          NEXT_MS,
        );
      }
      // Whoever is still unanswered has had NEXT_MS since the last client left (CONCURRENT_MS if
      // nobody was served to leave): it is not going to be served.
      const final = answers.map((a): Answer => a ?? { kind: 'silent' });
      const atOnce = answeredAt.filter((at, i) => at < firstLeftAt && final[i].kind === 'own').length;
      if (final.every((a) => a.kind === 'own')) {
        if (atOnce <= 1) {
          const seen = text(
            `iterative: ${atOnce} of ${k} clients served while all were connected; each of the others only after the one before it left: one client at a time`,
            `iterative：所有客户端都连接时只有 ${atOnce}/${k} 个得到服务；其余的都要等前一个离开才轮到：一次只服务一个客户端`,
          );
          if (ctx.o.require !== 'concurrent') return pass(seen, { verdict: 'iterative', servedAtOnce: atOnce });
          return fail(seen, {
            verdict: 'iterative',
            servedAtOnce: atOnce,
            diagnosis: diagnosis(
              'iterative',
              text(
                '--require concurrent: this server serves one client at a time while the others wait their turn (point 3); serve each client in a process of its own (fork, point 5) or a thread of its own (point 9)',
                '--require concurrent：这个服务器一次只服务一个客户端，其他客户端只能排队等待（第 3 点）；应该每个客户端一个进程（fork，第 5 点）或一个线程（第 9 点）',
              ),
            ),
          });
        }
        const waited = answeredAt.map((t, i) => (t >= firstLeftAt ? i + 1 : 0)).filter((n) => n > 0);
        ctx.servedAtOnce = atOnce;
        return pass(
          text(
            `concurrent, at most ${atOnce} at once: ${atOnce} of ${k} clients served while all were connected; client${waited.length > 1 ? 's' : ''} ${list(waited).en} waited until one left, then ${waited.length > 1 ? 'were' : 'was'} served — a limit that makes clients wait`,
            `concurrent，最多同时 ${atOnce} 个：所有客户端都连接时有 ${atOnce}/${k} 个得到服务；客户端 ${list(waited).zh} 一直等到有客户端离开才得到服务 —— 用让客户端等待的方式保持上限`,
          ),
          { verdict: 'concurrent', servedAtOnce: atOnce },
        );
      }
      const noBytes = clients.every(
        (c, i) => final[i].kind !== 'own' && final[i].kind !== 'other' && final[i].kind !== 'garbled' && c.received === 0,
      );
      return fail(
        joinTexts([
          text(
            `broken: ${atOnce} of ${k} clients served while all were connected`,
            `broken：所有客户端都连接时有 ${atOnce}/${k} 个得到服务`,
          ),
          ...unserved(final, text('even after the others left', '即使其他客户端都已离开')),
        ]),
        { verdict: 'broken', servedAtOnce: atOnce, diagnosis: lostDiagnosis(ctx, k, final, noBytes) },
      );
    } finally {
      destroyAll(clients);
    }
  },
};

// ---- max-clients: N served; client N+1 refused (or kept waiting, as claimed); a freed place reused ----

export const MAX_CLIENTS: CheckDef = {
  name: 'max-clients',
  point: text(
    'point 11: with every entry of INFO[N] in use, the next client is refused — close(cfd) at once — and a freed entry serves again (or, --when-full wait, it waits until one leaves)',
    '第 11 点：INFO[N] 全部占用时，下一个客户端被拒绝 —— 立即 close(cfd) —— 释放的槽位可以再次使用（或者 --when-full wait：它一直等到有客户端离开）',
  ),
  async run(ctx) {
    const { maxClients: n, whenFull: claim } = ctx.o;
    if (n === undefined) return skip(text('needs --max-clients N', '需要 --max-clients N'));
    const clients: Client[] = [];
    try {
      // The clients of the checks before may still hold places for a moment (a child not yet
      // reaped, a worker still failing its write to a client that reset): until FREED_MS has
      // passed, a round in which not all N are served is tried again with N new clients.
      let served = 0;
      const settle = now() + FREED_MS;
      for (;;) {
        for (let i = 0; i < n; i++) clients.push(await ctx.open());
        served = (await Promise.all(clients.map((c, i) => c.echoes(`in ${i + 1}\n`, REPLY_MS)))).filter(Boolean).length;
        if (served === n || now() > settle) break;
        destroyAll(clients.splice(0));
        await sleep(200);
      }
      // Client N+1: refused (closed without an answer), served, or left waiting.
      const extra = await ctx.open();
      clients.push(extra);
      const line = Buffer.from('one too many\n');
      let extraAnswer: Answer | null = null;
      void answerOf(extra, 0, [line], REFUSE_MS + FREED_MS + REPLY_MS).then((a) => (extraAnswer = a));
      await eventually(() => extraAnswer !== null, REFUSE_MS);
      const first = extraAnswer as Answer | null;
      const met: 'refused' | 'waited' | 'served' | 'broken' =
        first === null
          ? 'waited'
          : first.kind === 'own'
            ? 'served'
            : first.kind === 'closed' && extra.received === 0
              ? 'refused'
              : 'broken';
      // Where a waiting client waits, if /proc/net/tcp shows it: still in the listen backlog.
      const backlog = met === 'waited' ? acceptQueue(ctx.o.port, ctx.o.host) : null;

      // One leaves. A waiting client N+1 must now be served; after a refusal a new client must be
      // (tried again while still refused: the server may not have noticed the leaver yet).
      clients[0].destroy();
      let freed = false;
      if (met === 'waited') {
        await eventually(() => extraAnswer !== null, FREED_MS);
        freed = (extraAnswer as Answer | null)?.kind === 'own';
      } else if (met === 'refused') {
        const deadline = now() + FREED_MS;
        const again = Buffer.from('a freed place\n');
        while (!freed && now() < deadline) {
          const c = await ctx.open();
          clients.push(c);
          const a = await answerOf(c, 0, [again], REPLY_MS);
          freed = a.kind === 'own';
          if (!freed && a.kind !== 'closed') break; // neither served nor refused: it waits, which is no answer
          if (!freed) await sleep(100); // refused: the place is not free yet
        }
      }

      const head = text(`${served} of ${n} clients served at once`, `${n} 个客户端中有 ${served} 个同时得到服务`);
      const waitedHow = text(
        backlog !== null && backlog > 0
          ? `connected, but not accepted: it waited in the listen backlog (accept queue ${backlog}, /proc/net/tcp)`
          : `connected, and not answered for ${REFUSE_MS} ms`,
        backlog !== null && backlog > 0
          ? `已连接但没有被 accept：它在监听队列里等待（accept 队列 ${backlog}，/proc/net/tcp）`
          : `已连接，但 ${REFUSE_MS} ms 内没有应答`,
      );
      const metText: Text =
        met === 'refused'
          ? text(
              `client ${n + 1}: refused — closed by the server without an answer; after one left, a new client was ${freed ? 'served' : 'NOT served'}`,
              `第 ${n + 1} 个：被拒绝 —— 服务器没有应答就关闭了它；一个离开后，新客户端${freed ? '得到服务' : '没有得到服务'}`,
            )
          : met === 'waited'
            ? text(
                `client ${n + 1}: ${waitedHow.en}; after one left, it was ${freed ? 'served' : 'still NOT served'}`,
                `第 ${n + 1} 个：${waitedHow.zh}；一个离开后，它${freed ? '得到了服务' : '仍然没有得到服务'}`,
              )
            : met === 'served'
              ? text(`client ${n + 1}: served, like the first ${n}`, `第 ${n + 1} 个：和前 ${n} 个一样得到了服务`)
              : text(`client ${n + 1}: got bytes it had not sent`, `第 ${n + 1} 个：收到了不是它发出的字节`);
      const seen = joinTexts([head, metText]);
      const result = met === 'broken' ? undefined : met;
      const outcome = (ok: boolean, d?: Diagnosis): Outcome =>
        ok
          ? pass(seen, result ? { whenFull: result } : {})
          : fail(seen, { ...(result ? { whenFull: result } : {}), ...(d ? { diagnosis: d } : {}) });

      if (served < n) return outcome(false);
      if (met === 'served') {
        return outcome(
          false,
          diagnosis(
            'limit-not-kept',
            text(
              `the server does not keep a limit of ${n}: with ${n} clients served it served client ${n + 1} too (point 11: with all INFO[${n}] slots in use, close(cfd) at once)`,
              `服务器没有保持 ${n} 个的上限：已经服务 ${n} 个客户端时，第 ${n + 1} 个也得到了服务（第 11 点：INFO[${n}] 全部占用时立即 close(cfd)）`,
            ),
          ),
        );
      }
      if (met === 'waited' && claim === 'refuse') {
        return outcome(
          false,
          diagnosis(
            'waits-when-full',
            text(
              `this server keeps its limit by making client ${n + 1} wait until one leaves${freed ? '' : ' (and then did not serve it)'}, as tcpserver -c and socat max-children do; the lecture's INFO[${n}] refuses it at once with close(cfd). If waiting is what the server claims, check it with --when-full wait`,
              `这个服务器用让第 ${n + 1} 个客户端等到有人离开的方式保持上限${freed ? '' : '（之后也没有服务它）'}，tcpserver -c 和 socat max-children 就是这样；讲义的 INFO[${n}] 会立即 close(cfd) 拒绝它。如果服务器声称的就是等待，请用 --when-full wait 检查`,
            ),
          ),
        );
      }
      if (met === 'refused' && claim === 'wait') {
        return outcome(
          false,
          diagnosis(
            'refuses-when-full',
            text(
              `client ${n + 1} was refused at once, not kept waiting as --when-full wait claims: that is the lecture's INFO[${n}] (check it with --when-full refuse, the default); a server that makes clients wait stops accepting while ${n} are served, or serves with a pool of ${n} (UNP's prefork)`,
              `第 ${n + 1} 个客户端被立即拒绝，而不是像 --when-full wait 声称的那样等待：这是讲义的 INFO[${n}]（请用默认的 --when-full refuse 检查）；让客户端等待的服务器在服务 ${n} 个时停止 accept，或者用 ${n} 个成员的池来服务（UNP 的 prefork）`,
            ),
          ),
        );
      }
      if (met === 'broken') return outcome(false);
      if (!freed) {
        return outcome(
          false,
          diagnosis(
            'place-not-freed',
            text(
              `the place of a client that left was not given to another: the entry (INFO[i].cfd = -1) or the count of live clients must be freed when its client leaves (point 11)`,
              `离开的客户端的位置没有让给别人：客户端离开时必须释放它的槽位（INFO[i].cfd = -1）或减少在线客户端的计数（第 11 点）`,
            ),
          ),
        );
      }
      return outcome(true);
    } finally {
      destroyAll(clients);
    }
  },
};
