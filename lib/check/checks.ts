// `posix-servers check HOST:PORT`: black-box checks of any TCP echo server — a student's fork or
// thread server in C, this package's models, the C references. Each check drives real clients
// (the labs' kit), names the lecture point it tests, and says what it saw. With the server's pid,
// /proc is read too: zombies, descriptors and threads after the clients have left.
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { Client, destroyAll, eventually, exchange, fdLinks, sleep, socketInode, tcpTable } from '../labs/kit';
import type { Lang } from '../util/i18n';
import { t } from '../util/i18n';
import { childrenOf, readStat } from '../util/proc';
import { integerIn, numericHost } from '../util/validate';

export interface CheckOptions {
  /** Numeric IPv4 or IPv6 address of the server. */
  host: string;
  port: number;
  /** The process that listens (a fork server's parent): enables the /proc checks. */
  pid?: number;
  /** The limit the server claims: N clients are served at once, the (N+1)-th is refused. */
  maxClients?: number;
  lang?: Lang;
  /** Run only these checks (the others are reported as skipped). Default: all. */
  only?: CheckName[];
}

const CHECK_NAMES = ['echo', 'half-close', 'concurrency', 'vanish', 'max-clients', 'zombies', 'resources'] as const;
export type CheckName = (typeof CHECK_NAMES)[number];
type CheckStatus = 'pass' | 'fail' | 'skip';

export interface CheckResult {
  name: CheckName;
  status: CheckStatus;
  /** The lecture point it tests, in words. */
  point: string;
  /** What was seen. */
  seen: string;
  /** concurrency only: how the server served several clients. */
  verdict?: 'concurrent' | 'iterative' | 'broken';
}

// Bounds of every wait: a broken server makes a check fail, never hang.
const CONNECT_MS = 3000;
const REPLY_MS = 5000;
// All clients echoed within this while all are connected: concurrent. An iterative server never
// answers the second client while the first stays, however long: the bound is only there for a
// busy machine's sake, and an iterative server costs the check this long once.
const CONCURRENT_MS = 3000;
const NEXT_MS = 3000; // iterative: the next client's echo after the previous one left
const REFUSE_MS = 2000;
const FREED_MS = 5000; // a place freed by a client that left is offered again
const SETTLE_MS = 3000; // /proc: zombies reaped, descriptors closed, threads gone
const VANISH_BYTES = 8 << 20;
const ECHO_SIZES = [1, 100, 4096, 65536, 1 << 20];

/** Validates options as the API does: TypeError/RangeError naming the option. */
function resolveCheckOptions(o: CheckOptions): Required<Omit<CheckOptions, 'pid' | 'maxClients' | 'only'>> & CheckOptions {
  const host = numericHost(o.host);
  const port = integerIn('port', o.port, 1, 65535);
  const out: Required<Omit<CheckOptions, 'pid' | 'maxClients' | 'only'>> & CheckOptions = { host, port, lang: o.lang ?? 'en' };
  if (o.pid !== undefined) out.pid = integerIn('pid', o.pid, 1, 2 ** 22);
  if (o.maxClients !== undefined) out.maxClients = integerIn('maxClients', o.maxClients, 1, 4096);
  if (o.only !== undefined) {
    if (!Array.isArray(o.only) || o.only.some((n) => !(CHECK_NAMES as readonly string[]).includes(n))) {
      throw new TypeError(`The "only" option must be an array of ${CHECK_NAMES.join(', ')}. Received ${JSON.stringify(o.only)}`);
    }
    out.only = [...o.only];
  }
  return out;
}

interface Resources {
  fds: number;
  threads: number;
  children: number;
}

function resources(pid: number): Resources | null {
  try {
    const fds = readdirSync(`/proc/${pid}/fd`).length;
    const threads = readdirSync(`/proc/${pid}/task`).length;
    const children = childrenOf(pid).filter((c) => c.state !== 'Z').length;
    return { fds, threads, children };
  } catch {
    return null;
  }
}

/** True if `pid` holds the listening socket of `port` (so --pid names the right process). */
function holdsListener(pid: number, port: number): boolean {
  const listeners = new Set(
    tcpTable(port)
      .filter((e) => e.local.port === port && e.state === 'LISTEN')
      .map((e) => e.inode),
  );
  return [...(fdLinks(pid)?.values() ?? [])].some((l) => listeners.has(socketInode(l) ?? -1));
}

const alive = (pid: number) => {
  const st = readStat(pid);
  return st !== null && st.state !== 'Z' && st.state !== 'X';
};

const size = (n: number) => (n >= 1 << 20 ? `${n >> 20} MiB` : n >= 1024 ? `${n >> 10} KiB` : `${n} B`);

/**
 * Runs every check, printing one line per check through `out`; resolves with the results.
 * Checks needing `pid` or `maxClients` are skipped without them. Never throws for a broken
 * server: what went wrong is the check's result.
 */
export async function runChecks(options: CheckOptions, out: (line: string) => void = () => undefined): Promise<CheckResult[]> {
  const o = resolveCheckOptions(options);
  const lang = o.lang;
  const L = (en: string, zh: string) => t(lang, { en, zh });
  const { host, port, pid } = o;
  const results: CheckResult[] = [];
  const report = (r: CheckResult) => {
    results.push(r);
    const mark = r.status === 'pass' ? '✓' : r.status === 'fail' ? '✗' : '–';
    const status = r.status === 'pass' ? L('pass', '通过') : r.status === 'fail' ? L('FAIL', '失败') : L('skipped', '跳过');
    out(`${mark} ${r.name}: ${status}${r.point ? ` — ${r.point}` : ''}`);
    out(`    ${L('seen', '看到')}: ${r.seen}`);
  };
  const open = () => Client.open(port, CONNECT_MS, host);
  const wanted = (name: CheckName) => o.only === undefined || o.only.includes(name);
  const notAsked = (name: CheckName) => report({ name, status: 'skip', point: '', seen: L('not asked for', '未要求') });

  const baseline = pid !== undefined ? resources(pid) : null;
  if (pid !== undefined) {
    if (baseline === null) throw new Error(`--pid ${pid}: no such process (or /proc/${pid} is not readable)`);
    if (!holdsListener(pid, port)) {
      throw new Error(`--pid ${pid}: that process does not hold the listening socket of port ${port}`);
    }
    out(
      L(
        `baseline of pid ${pid}: ${baseline.fds} descriptors, ${baseline.threads} threads, ${baseline.children} children`,
        `进程 ${pid} 的基线：${baseline.fds} 个描述符，${baseline.threads} 个线程，${baseline.children} 个子进程`,
      ),
    );
  }

  // ---- echo: RFC 862, byte for byte ----
  if (!wanted('echo')) notAsked('echo');
  else {
    const point = L(
      'RFC 862 echo; lecture point 5: read n bytes, write the same n bytes back (short writes handled)',
      'RFC 862 回显；讲义第 5 点：读到 n 个字节，就把这 n 个字节写回（处理写不完的情况）',
    );
    let c: Client | undefined;
    try {
      c = await open();
      const bad: string[] = [];
      for (const n of ECHO_SIZES) {
        const payload = randomBytes(n);
        const back = await c.echo(payload, REPLY_MS).catch((e: Error) => e);
        if (back instanceof Error) bad.push(`${size(n)}: ${back.message}`);
        else if (!back.equals(payload)) bad.push(L(`${size(n)}: different bytes came back`, `${size(n)}：返回的字节不同`));
        if (back instanceof Error) break;
      }
      report({
        name: 'echo',
        status: bad.length === 0 ? 'pass' : 'fail',
        point,
        seen:
          bad.length === 0
            ? L(
                `${ECHO_SIZES.length} random payloads on one connection, 1 B to 1 MiB, came back byte for byte`,
                `同一连接上 ${ECHO_SIZES.length} 段随机数据（1 B 到 1 MiB）逐字节原样返回`,
              )
            : bad.join('; '),
      });
    } catch (e) {
      report({
        name: 'echo',
        status: 'fail',
        point,
        seen: L(`could not connect: ${(e as Error).message}`, `无法连接：${(e as Error).message}`),
      });
    } finally {
      c?.destroy();
    }
  }

  // ---- half-close: our FIN, the rest of the echo, then the server's FIN ----
  if (!wanted('half-close')) notAsked('half-close');
  else {
    const point = L(
      "points 1 and 5: after the client's FIN, read() returns 0; the server sends what is left, then close(cfd) — the four-way wave",
      '第 1、5 点：客户端发出 FIN 后 read() 返回 0；服务器发完剩下的数据，再 close(cfd) —— 四次挥手',
    );
    const payload = randomBytes(64 * 1024);
    const back = await exchange(port, payload, REPLY_MS, host).catch((e: Error) => e);
    report({
      name: 'half-close',
      status: back instanceof Error || !back.equals(payload) ? 'fail' : 'pass',
      point,
      seen:
        back instanceof Error
          ? L(`after our FIN: ${back.message}`, `我们发出 FIN 之后：${back.message}`)
          : back.equals(payload)
            ? L(
                `sent 64 KiB and FIN: got all ${back.length} bytes back, then the server's FIN`,
                `发送 64 KiB 和 FIN：收回全部 ${back.length} 字节，然后收到服务器的 FIN`,
              )
            : L(
                `sent 64 KiB and FIN: got ${back.length} bytes back before the server's FIN`,
                `发送 64 KiB 和 FIN：服务器 FIN 之前只收回 ${back.length} 字节`,
              ),
    });
  }

  // ---- concurrency: several clients at once, or one at a time, or someone never served ----
  if (!wanted('concurrency')) notAsked('concurrency');
  else {
    const point = L(
      'points 3, 4, 5, 9, 10: one process or thread per client serves them all at once; an iterative server serves one at a time; one cfd variable, or workers sharing &cfd, leave a client unserved',
      '第 3、4、5、9、10 点：每个客户端一个进程或线程，可以同时服务所有客户端；迭代服务器一次只服务一个；只有一个 cfd 变量，或者线程共享 &cfd，都会让某个客户端得不到服务',
    );
    const k = Math.min(3, o.maxClients ?? 3);
    const clients: Client[] = [];
    try {
      // Connected back to back, before anyone says a word: the way a race on &cfd shows.
      for (let i = 0; i < k; i++) clients.push(await open());
      const lines = clients.map((_, i) => Buffer.from(`client ${i + 1} of ${k}: ${randomBytes(6).toString('hex')}\n`));
      const echoes = clients.map((c, i) =>
        c.echo(lines[i], CONCURRENT_MS + NEXT_MS * k).then(
          (b) => b.equals(lines[i]),
          () => false,
        ),
      );
      const doneAt: Array<boolean | null> = clients.map(() => null);
      echoes.forEach((p, i) => void p.then((ok) => (doneAt[i] = ok)));
      await eventually(() => doneAt.every((d) => d !== null), CONCURRENT_MS);
      const atOnce = doneAt.filter((d) => d === true).length;
      let verdict: 'concurrent' | 'iterative' | 'broken';
      let seen: string;
      if (atOnce === k) {
        // Again, last client first, all still connected: a server that keeps one cfd variable
        // (the lecture's fix 1) may have answered lines that were waiting when it accepted them,
        // but only the last client from then on.
        const again = await Promise.all(
          clients
            .map((c, i) => ({ c, i }))
            .reverse()
            .map(({ c, i }) =>
              c.echo(lines[i], CONCURRENT_MS).then(
                (b) => b.equals(lines[i]),
                () => false,
              ),
            ),
        );
        const lost = again
          .map((ok, j) => (ok ? null : k - j))
          .filter((x) => x !== null)
          .sort();
        if (lost.length === 0) {
          verdict = 'concurrent';
          seen = L(
            `${k} clients connected at once; each got its own line back, twice, while all stayed connected`,
            `${k} 个客户端同时连接；在都保持连接的情况下，每个都两次收回了自己的那一行`,
          );
        } else {
          verdict = 'broken';
          seen = L(
            `each client got its first line back, but client${lost.length > 1 ? 's' : ''} ${lost.join(', ')} got no second one while the others stayed connected — does the server keep one cfd variable for all clients?`,
            `每个客户端都收回了第一行，但在其他客户端保持连接时，客户端 ${lost.join('、')} 没有收回第二行 —— 服务器是不是只用一个 cfd 变量保存所有客户端？`,
          );
        }
      } else {
        // One at a time? Let the served ones leave, in order, and see whether the next gets its turn.
        const order: number[] = [];
        for (let round = 0; round < k; round++) {
          const served = doneAt.findIndex((d, i) => d === true && !order.includes(i));
          if (served < 0) break;
          order.push(served);
          clients[served].end();
          await eventually(() => doneAt.some((d, i) => d !== null && !order.includes(i)) || order.length === k, NEXT_MS);
        }
        await Promise.all(echoes);
        if (doneAt.every((d) => d === true)) {
          verdict = 'iterative';
          seen = L(
            `${atOnce} of ${k} clients served while all were connected; each of the others only after the one before it left: one client at a time`,
            `所有客户端都连接时只有 ${atOnce}/${k} 个得到服务；其余的都要等前一个离开才轮到：一次只服务一个客户端`,
          );
        } else {
          verdict = 'broken';
          const never = doneAt.map((d, i) => (d ? null : i + 1)).filter((x) => x !== null);
          seen = L(
            `client${never.length > 1 ? 's' : ''} ${never.join(', ')} never got ${never.length > 1 ? 'their' : 'its'} own line back, even after the others left — is cfd passed to the threads by address (&cfd)?`,
            `客户端 ${never.join('、')} 一直没有收回自己的那一行，即使其他客户端都已离开 —— 是不是把 cfd 的地址（&cfd）传给了线程？`,
          );
        }
      }
      report({
        name: 'concurrency',
        status: verdict === 'broken' ? 'fail' : 'pass',
        point,
        seen: `${verdict}: ${seen}`,
        verdict,
      });
    } catch (e) {
      report({
        name: 'concurrency',
        status: 'fail',
        point,
        seen: L(`could not connect: ${(e as Error).message}`, `无法连接：${(e as Error).message}`),
        verdict: 'broken',
      });
    } finally {
      destroyAll(clients);
    }
  }

  // ---- vanish: a client that resets mid-write does not take the server with it ----
  if (!wanted('vanish')) notAsked('vanish');
  else {
    const point = L(
      "a write to a client that has gone raises SIGPIPE, which kills a process by default: send with MSG_NOSIGNAL or ignore SIGPIPE, and treat EPIPE/ECONNRESET as that client's end",
      '向已经离开的客户端写数据会产生 SIGPIPE，默认会杀死进程：用 MSG_NOSIGNAL 发送或忽略 SIGPIPE，把 EPIPE/ECONNRESET 当作这个客户端的结束',
    );
    let c: Client | undefined;
    let seen: string;
    let ok = false;
    try {
      c = await open();
      c.sock.pause(); // we never read: the server's writes back to us block once our buffers are full
      c.sock.write(randomBytes(VANISH_BYTES));
      await sleep(300);
      c.sock.resetAndDestroy(); // RST: the server's next write fails with EPIPE/ECONNRESET
      await sleep(300);
      const stillAlive = pid === undefined || alive(pid);
      const served =
        stillAlive &&
        (await open().then(
          async (n) => {
            const r = await n.echoes('still there?\n', REPLY_MS);
            n.destroy();
            return r;
          },
          () => false,
        ));
      ok = stillAlive && served;
      seen = !stillAlive
        ? L(
            `pid ${pid} is gone after a client reset the connection mid-write (SIGPIPE?)`,
            `客户端在写入中途重置连接后，进程 ${pid} 不见了（SIGPIPE？）`,
          )
        : served
          ? L(
              `a client sent ${size(VANISH_BYTES)} without reading and reset the connection; the server${pid ? ` (pid ${pid}) is alive and` : ''} serves the next client`,
              `一个客户端发送 ${size(VANISH_BYTES)} 且不读取，然后重置连接；服务器${pid ? `（进程 ${pid}）仍然存活并且` : ''}能服务下一个客户端`,
            )
          : L(
              'after a client reset the connection mid-write, the next client is not served',
              '客户端在写入中途重置连接后，下一个客户端得不到服务',
            );
    } catch (e) {
      seen = L(`could not connect: ${(e as Error).message}`, `无法连接：${(e as Error).message}`);
    } finally {
      c?.destroy();
    }
    report({ name: 'vanish', status: ok ? 'pass' : 'fail', point, seen });
  }

  // ---- max-clients: N served, the (N+1)-th refused (closed at once), a freed place reused ----
  if (!wanted('max-clients')) notAsked('max-clients');
  else {
    const point = L(
      'point 11: with every entry of INFO[N] in use, the next client is refused — close(cfd) at once — and a freed entry serves again',
      '第 11 点：INFO[N] 全部占用时，下一个客户端被拒绝 —— 立即 close(cfd) —— 释放的槽位可以再次使用',
    );
    if (o.maxClients === undefined) {
      report({ name: 'max-clients', status: 'skip', point, seen: L('needs --max-clients N', '需要 --max-clients N') });
    } else {
      const n = o.maxClients;
      const clients: Client[] = [];
      let seen: string;
      let ok = false;
      try {
        // The clients of the checks before may still hold places for a moment (a child not yet
        // reaped, a worker still failing its write to a client that reset): until FREED_MS has
        // passed, a round in which not all N are served is tried again with N new clients.
        let served = 0;
        const settle = performance.now() + FREED_MS;
        for (;;) {
          for (let i = 0; i < n; i++) clients.push(await open());
          served = (await Promise.all(clients.map((c, i) => c.echoes(`in ${i + 1}\n`, REPLY_MS)))).filter(Boolean).length;
          if (served === n || performance.now() > settle) break;
          destroyAll(clients.splice(0));
          await sleep(200);
        }
        const extra = await open();
        clients.push(extra);
        extra.sock.write('one too many\n');
        const closed = await eventually(() => extra.closed, REFUSE_MS);
        const echoedExtra = extra.received > 0;
        // One leaves; its place is free once the server has noticed (a child reaped, a slot
        // released): a new client is served within FREED_MS, trying again while still refused.
        clients[0].destroy();
        let again = false;
        const deadline = performance.now() + FREED_MS;
        const line = Buffer.from('a freed place\n');
        while (!again && performance.now() < deadline) {
          const c = await open().catch(() => null);
          if (c === null) break;
          clients.push(c);
          c.sock.write(line);
          again = await c.read(line.length, REPLY_MS).then(
            (b) => b.equals(line),
            () => false,
          );
          if (!again && !c.closed) break; // neither served nor refused: it waits, which is no answer
          if (!again) await sleep(100); // refused: the place is not free yet
        }
        ok = served === n && closed && !echoedExtra && again;
        seen = L(
          `${served} of ${n} clients served; client ${n + 1}: ${closed ? (echoedExtra ? 'echoed, then closed' : 'closed by the server without an echo') : `still open after ${REFUSE_MS} ms, not refused`}; after one left, a new client was ${again ? 'served' : 'NOT served'}`,
          `${n} 个客户端中有 ${served} 个得到服务；第 ${n + 1} 个：${closed ? (echoedExtra ? '先收到回显，然后被关闭' : '被服务器关闭，没有回显') : `${REFUSE_MS} ms 后仍然连着，没有被拒绝`}；一个离开后，新客户端${again ? '得到服务' : '没有得到服务'}`,
        );
      } catch (e) {
        seen = L(`could not connect: ${(e as Error).message}`, `无法连接：${(e as Error).message}`);
      } finally {
        destroyAll(clients);
      }
      report({ name: 'max-clients', status: ok ? 'pass' : 'fail', point, seen });
    }
  }

  // ---- /proc after everyone left: zombies, then descriptors and threads ----
  if (!wanted('zombies')) notAsked('zombies');
  else {
    const point = L(
      'point 7, homework 1: the parent reaps every child (SIGCHLD handler looping waitpid(-1, WNOHANG)): no zombie is left',
      '第 7 点，作业 1：父进程回收每个子进程（SIGCHLD 处理函数中循环 waitpid(-1, WNOHANG)）：不留僵尸进程',
    );
    if (pid === undefined) {
      report({ name: 'zombies', status: 'skip', point, seen: L('needs --pid PID', '需要 --pid PID') });
    } else {
      await eventually(() => childrenOf(pid).every((c) => c.state !== 'Z'), SETTLE_MS);
      const zombies = childrenOf(pid).filter((c) => c.state === 'Z');
      report({
        name: 'zombies',
        status: zombies.length === 0 ? 'pass' : 'fail',
        point,
        seen:
          zombies.length === 0
            ? L(`no child of ${pid} in state Z after the clients left`, `客户端离开后，${pid} 没有处于 Z 状态的子进程`)
            : L(
                `${zombies.length} children of ${pid} in state Z after the clients left: ${zombies.map((z) => z.pid).join(', ')}`,
                `客户端离开后，${pid} 有 ${zombies.length} 个子进程处于 Z 状态：${zombies.map((z) => z.pid).join('、')}`,
              ),
      });
    }
  }
  if (!wanted('resources')) notAsked('resources');
  else {
    const point = L(
      'points 5, 9, 10: every cfd is closed once its client leaves (by the one process or thread that owns it), and every worker thread or child is gone',
      '第 5、9、10 点：客户端离开后每个 cfd 都被关闭（由拥有它的那个进程或线程关闭），每个子线程或子进程都已结束',
    );
    if (pid === undefined || baseline === null) {
      report({ name: 'resources', status: 'skip', point, seen: L('needs --pid PID', '需要 --pid PID') });
    } else {
      let now = resources(pid);
      await eventually(() => {
        now = resources(pid);
        return now !== null && now.fds <= baseline.fds && now.threads <= baseline.threads && now.children <= baseline.children;
      }, SETTLE_MS);
      const ok = now !== null && now.fds <= baseline.fds && now.threads <= baseline.threads && now.children <= baseline.children;
      report({
        name: 'resources',
        status: ok ? 'pass' : 'fail',
        point,
        seen:
          now === null
            ? L(`pid ${pid} is gone`, `进程 ${pid} 不见了`)
            : L(
                `descriptors ${baseline.fds} → ${now.fds}, threads ${baseline.threads} → ${now.threads}, live children ${baseline.children} → ${now.children} (before → after the clients)`,
                `描述符 ${baseline.fds} → ${now.fds}，线程 ${baseline.threads} → ${now.threads}，存活子进程 ${baseline.children} → ${now.children}（客户端之前 → 之后）`,
              ),
      });
    }
  }

  const failed = results.filter((r) => r.status === 'fail').map((r) => r.name);
  const run = results.filter((r) => r.status !== 'skip').length;
  const skipped = results.length - run;
  out(
    L(
      `${run - failed.length} of ${run} checks passed${failed.length ? `; failed: ${failed.join(', ')}` : ''}${skipped ? ` (${skipped} skipped)` : ''}`,
      `${run} 项检查中 ${run - failed.length} 项通过${failed.length ? `；失败：${failed.join('、')}` : ''}${skipped ? `（跳过 ${skipped} 项）` : ''}`,
    ),
  );
  return results;
}
