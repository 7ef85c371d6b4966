// `posix-servers check HOST:PORT`: black-box checks of any TCP echo server — a student's fork or
// thread server in C, this package's models, the C references, tcpserver, socat. Each check drives
// real clients (the labs' kit), names the lecture point it tests, and says what it saw; with the
// server's pid it reads /proc too (watch.ts). A diagnosis says only what was observed: the
// lecture's fork or thread fix is named only when /proc showed the server's children or threads.
// Once the server is gone, the check during which it died fails — saying how, where /proc shows
// it — and every later check is reported as not run: nothing is checked on a dead server.
import { randomBytes } from 'node:crypto';
import { Client, counterRise, destroyAll, eventually, now, sleep, tcpExtCounters, tcpTable } from '../labs/kit';
import type { Lang } from '../util/i18n';
import { signalName } from '../util/os-names';
import { boolean, integerIn, invalidValue, numericHost, oneOf } from '../util/validate';
import {
  CHECK_NAMES,
  CheckName,
  CheckReport,
  CheckResult,
  conclude,
  diagnosis,
  Diagnosis,
  noServer,
  resultLines,
  summaryLines,
  Text,
  text,
} from './report';
import { acceptQueue, ServerEnd, ServerWatch } from './watch';

export { CHECK_NAMES, reportInLang } from './report';
export type { CheckName, CheckReport, CheckResult, Diagnosis, DiagnosisId, Text } from './report';

export interface CheckOptions {
  /** Numeric IPv4 or IPv6 address of the server. */
  host: string;
  port: number;
  /** The process that listens (a fork server's parent): enables the /proc checks and diagnoses. */
  pid?: number;
  /** The limit the server claims: N clients are served at once. */
  maxClients?: number;
  /**
   * What the server claims to do with client N+1 while N are served (needs maxClients): 'refuse'
   * (close it at once, the lecture's INFO[N]; the default) or 'wait' (leave it connected and
   * unanswered until one leaves, as tcpserver -c, socat max-children or a prefork pool do).
   */
  whenFull?: 'refuse' | 'wait';
  /** 'concurrent': the concurrency check fails a server that serves one client at a time. */
  require?: 'concurrent';
  /** Fail the run when any check was skipped. */
  strict?: boolean;
  lang?: Lang;
  /** Run only these checks (the others are reported as skipped). Default: all. */
  only?: CheckName[];
}

interface Resolved {
  host: string;
  port: number;
  pid?: number;
  maxClients?: number;
  whenFull: 'refuse' | 'wait';
  require?: 'concurrent';
  strict: boolean;
  lang: Lang;
  only?: CheckName[];
  /** HOST:PORT, [IPv6]:PORT. */
  target: string;
}

// Bounds of every wait: a broken server makes a check fail, never hang.
const CONNECT_MS = 3000;
const REPLY_MS = 5000;
// All clients echoed within this while all are connected: concurrent. An iterative server never
// answers the second client while the first stays, however long: the bound is only there for a
// busy machine's sake, and an iterative server costs the check this long once.
const CONCURRENT_MS = 3000;
const NEXT_MS = 3000; // one at a time: the next client's echo after the previous one left
const REFUSE_MS = 2000; // client N+1: refused within this, or else it is waiting
const FREED_MS = 5000; // a place freed by a client that left is offered again
const SETTLE_MS = 3000; // /proc: zombies reaped, descriptors closed, threads gone; a dying process gone
const VANISH_BYTES = 8 << 20;
const BURST = 5; // zombies: children that exit together (UNP 5.9's client opens five)
const ECHO_SIZES = [1, 100, 4096, 65536, 1 << 20];
const SIGPIPE = 13;

/** Validates options as the API does: TypeError/RangeError naming the option. */
function resolveCheckOptions(o: CheckOptions): Resolved {
  const host = numericHost(o.host);
  const port = integerIn('port', o.port, 1, 65535);
  const out: Resolved = {
    host,
    port,
    target: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
    lang: o.lang === undefined ? 'en' : oneOf('lang', o.lang, ['en', 'zh'] as const),
    whenFull: 'refuse',
    strict: o.strict === undefined ? false : boolean('strict', o.strict),
  };
  if (o.pid !== undefined) out.pid = integerIn('pid', o.pid, 1, 2 ** 22);
  if (o.maxClients !== undefined) out.maxClients = integerIn('maxClients', o.maxClients, 1, 4096);
  if (o.whenFull !== undefined) {
    out.whenFull = oneOf('whenFull', o.whenFull, ['refuse', 'wait'] as const);
    if (out.maxClients === undefined) {
      throw invalidValue(`The "whenFull" option needs the "maxClients" option (the limit it applies to). Received ${o.whenFull}`);
    }
  }
  if (o.only !== undefined) {
    if (!Array.isArray(o.only) || o.only.some((n) => !(CHECK_NAMES as readonly string[]).includes(n))) {
      throw new TypeError(`The "only" option must be an array of ${CHECK_NAMES.join(', ')}. Received ${JSON.stringify(o.only)}`);
    }
    out.only = [...o.only];
  }
  if (o.require !== undefined) {
    out.require = oneOf('require', o.require, ['concurrent'] as const);
    if (out.only !== undefined && !out.only.includes('concurrency')) {
      throw invalidValue(`The "require" option needs the concurrency check, which "only" leaves out`);
    }
  }
  return out;
}

/** A connect() refused after the server had answered: nothing listens there any more. */
class ServerGone extends Error {}

/** The first connect of the run failed: there is no server to check. */
class NoServer extends Error {
  constructor(readonly why: Text) {
    super(why.en);
  }
}

/** True if some socket listens on `port` in this network namespace (/proc/net/tcp, tcp6). */
const listening = (port: number) => tcpTable(port).some((e) => e.local.port === port && e.state === 'LISTEN');

/** What every check is given. */
interface Ctx {
  o: Resolved;
  watch: ServerWatch | null;
  /**
   * A client of the server. Throws NoServer when the run's first connect fails (nothing to check),
   * ServerGone when a later one is refused (the server is gone).
   */
  open(): Promise<Client>;
  /** A client has connected: the server answered once. */
  answered: boolean;
  /** A connect() was refused after that. */
  refused: boolean;
  /** The echo check passed (a single client is echoed). */
  echoPassed: boolean;
  /** The concurrency check saw at most this many clients served at once (the others waited). */
  servedAtOnce?: number;
}

/** A check's result, without the name and point that its definition gives. */
type Outcome = Omit<CheckResult, 'name' | 'point'>;

interface CheckDef {
  name: CheckName;
  point: Text;
  run(ctx: Ctx): Promise<Outcome>;
  /** What the check was doing when a server dies during it, if that tells something. */
  circumstance?: Text;
}

const pass = (seen: Text, more: Partial<Outcome> = {}): Outcome => ({ status: 'pass', seen, ...more });
const fail = (seen: Text, more: Partial<Outcome> = {}): Outcome => ({ status: 'fail', seen, ...more });
const skip = (seen: Text): Outcome => ({ status: 'skip', seen });

const t = (lang: Lang, m: Text) => m[lang];
const size = (n: number) => (n >= 1 << 20 ? `${n >> 20} MiB` : n >= 1024 ? `${n >> 10} KiB` : `${n} B`);
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
/** Client numbers as a list: `1, 2` / `1、2`. */
const list = (xs: number[]) => text(xs.join(', '), xs.join('、'));
/** Joins texts with `; ` / `；`. */
const joinTexts = (ts: Text[]) => text(ts.map((t) => t.en).join('; '), ts.map((t) => t.zh).join('；'));
const withDiagnosis = (d: Diagnosis | undefined): Partial<Outcome> => (d ? { diagnosis: d } : {});

/**
 * A reply cut short while the kernel counted a close() with unread data (TcpExt TCPAbortOnClose in
 * /proc/net/netstat, since `before`): the server's close() reset the connection. The counter is the
 * machine's, so it is the evidence only together with a short reply; libuv reports such a reset
 * after data as an ordinary end, so the client's error code alone would miss it.
 */
function resetOnClose(before: Map<string, number>): Diagnosis | undefined {
  if (counterRise(before, tcpExtCounters(), 'TCPAbortOnClose') === 0) return undefined;
  return diagnosis(
    'reset-on-close',
    text(
      'the server closed the connection while bytes the client had sent were still unread in its receive buffer (TCPAbortOnClose rose in /proc/net/netstat): the kernel then sends RST instead of FIN, and the client loses what it had not read yet; shut down the write side (shutdown(cfd, SHUT_WR)), read until EOF, then close(cfd)',
      '服务器在客户端发来的字节还未读完（仍在接收缓冲区中）时关闭了连接（/proc/net/netstat 中 TCPAbortOnClose 增加）：内核于是发送 RST 而不是 FIN，客户端会丢掉尚未读到的数据；先 shutdown(cfd, SHUT_WR) 关闭写方向，读到 EOF，再 close(cfd)',
    ),
  );
}

// ---- echo: RFC 862, byte for byte ----

const ECHO: CheckDef = {
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

const HALF_CLOSE: CheckDef = {
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

/** What a client got back where its own line was due. */
type Answer =
  | { kind: 'own' }
  /** The line another client (by index) had sent: the server crossed two connections. */
  | { kind: 'other'; from: number }
  | { kind: 'garbled' }
  /** The server closed (or reset) the connection first. */
  | { kind: 'closed' }
  /** Nothing, or not all of it, within the wait. */
  | { kind: 'silent' };

/** Sends `lines[i]` on `c` and resolves with what came back in its place. */
function answerOf(c: Client, i: number, lines: Buffer[], timeoutMs: number): Promise<Answer> {
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

const CONCURRENCY: CheckDef = {
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

// ---- vanish: a client that resets mid-write does not take the server with it ----

const VANISH: CheckDef = {
  name: 'vanish',
  point: text(
    "a write to a client that has gone raises SIGPIPE, which kills a process by default: send with MSG_NOSIGNAL or ignore SIGPIPE, and treat EPIPE/ECONNRESET as that client's end",
    '向已经离开的客户端写数据会产生 SIGPIPE，默认会杀死进程：用 MSG_NOSIGNAL 发送或忽略 SIGPIPE，把 EPIPE/ECONNRESET 当作这个客户端的结束',
  ),
  circumstance: text(
    `, as a client that had sent ${size(VANISH_BYTES)} without reading reset the connection the server was writing to`,
    `（当时一个发送了 ${size(VANISH_BYTES)} 却不读取的客户端重置了服务器正在写入的连接）`,
  ),
  async run(ctx) {
    const c = await ctx.open();
    try {
      c.sock.pause(); // we never read: the server's writes back to us block once our buffers are full
      c.sock.write(randomBytes(VANISH_BYTES));
      await sleep(300);
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
            `a client sent ${size(VANISH_BYTES)} without reading and reset the connection; the server${pid ? ` (pid ${pid}) is alive and` : ''} serves the next client`,
            `一个客户端发送 ${size(VANISH_BYTES)} 且不读取，然后重置连接；服务器${pid ? `（进程 ${pid}）仍然存活并且` : ''}能服务下一个客户端`,
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

// ---- max-clients: N served; client N+1 refused (or kept waiting, as claimed); a freed place reused ----

const MAX_CLIENTS: CheckDef = {
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

// ---- /proc after everyone left: zombies, then descriptors and threads ----

const REAP_FIX = text(
  'install a SIGCHLD handler that loops waitpid(-1, &status, WNOHANG) until it returns 0 (point 7, homework 1); accept() interrupted by the signal then returns -1 with EINTR, which is not an error: call it again (point 2)',
  '安装 SIGCHLD 处理函数，在其中循环调用 waitpid(-1, &status, WNOHANG) 直到返回 0（第 7 点，作业 1）；被信号打断的 accept() 返回 -1、errno 为 EINTR，这不是错误：再调用一次（第 2 点）',
);

/**
 * Children that exit together: BURST clients served, then the server is stopped (SIGSTOP), they
 * all leave, their children exit, and the server continues (SIGCONT). A stopped process keeps one
 * pending SIGCHLD however many children exited — signals are not queued — so a handler that reaps
 * one child per signal (UNP's wait() of 5.9) leaves the others zombies, every time; a handler
 * that loops waitpid(-1, WNOHANG) reaps them all. Resolves with how many children exited so, or
 * a reason it could not be tried.
 */
async function exitTogether(ctx: Ctx, watch: ServerWatch): Promise<{ exited: number } | { untried: Text }> {
  // No more clients than the server serves at once: a waiting one would only cost time.
  const n = Math.min(BURST, ctx.o.maxClients ?? BURST, ctx.servedAtOnce ?? BURST);
  const before = watch.resources()?.children ?? 0;
  const clients: Client[] = [];
  let stopped = false;
  // Never leave the server stopped: should check itself be ended meanwhile (Ctrl-C, SIGTERM, an
  // exit), the server is continued first.
  const resume = () => {
    if (!stopped) return;
    stopped = false;
    try {
      process.kill(watch.pid, 'SIGCONT');
    } catch {
      // gone
    }
  };
  const onSignal = (signal: NodeJS.Signals) => {
    resume();
    process.removeListener('SIGINT', onSignal).removeListener('SIGTERM', onSignal);
    process.kill(process.pid, signal); // as the signal would have done without this listener
  };
  try {
    for (let i = 0; i < n; i++) clients.push(await ctx.open());
    const lines = clients.map((_, i) => Buffer.from(`together ${i + 1}\n`));
    await Promise.all(clients.map((c, i) => answerOf(c, i, lines, CONCURRENT_MS)));
    const serving = (watch.resources()?.children ?? before) - before;
    process.once('exit', resume).once('SIGINT', onSignal).once('SIGTERM', onSignal);
    try {
      process.kill(watch.pid, 'SIGSTOP');
      stopped = true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? String(e);
      return {
        untried: text(`check could not stop pid ${watch.pid} (${code})`, `check 无法让进程 ${watch.pid} 暂停（${code}）`),
      };
    }
    await eventually(() => watch.state() === 'T', SETTLE_MS);
    destroyAll(clients);
    // Each child reads its client's FIN and exits; its parent, stopped, cannot reap it yet.
    await eventually(() => (watch.resources()?.children ?? 0) <= before, SETTLE_MS);
    const stillServing = (watch.resources()?.children ?? before) - before;
    const exited = Math.max(0, serving - stillServing);
    if (exited < 2) {
      return {
        untried: text(
          `${exited === 0 ? 'no child' : 'one child'} of ${watch.pid} exited while it was stopped with ${n} clients gone`,
          `${n} 个客户端离开后，${watch.pid} 暂停期间只有 ${exited} 个子进程退出`,
        ),
      };
    }
    return { exited };
  } finally {
    resume();
    process.removeListener('exit', resume).removeListener('SIGINT', onSignal).removeListener('SIGTERM', onSignal);
    destroyAll(clients);
  }
}

const ZOMBIES: CheckDef = {
  name: 'zombies',
  point: text(
    'point 7, homework 1: the parent reaps every child (SIGCHLD handler looping waitpid(-1, WNOHANG)): no zombie is left, even of children that exit together',
    '第 7 点，作业 1：父进程回收每个子进程（SIGCHLD 处理函数中循环 waitpid(-1, WNOHANG)）：不留僵尸进程，同时退出的子进程也一样',
  ),
  async run(ctx) {
    const watch = ctx.watch;
    if (watch === null) return skip(text('needs --pid', '需要 --pid'));
    const pid = watch.pid;
    const zombies = () => (watch.end() === null ? watch.zombies().sort((a, b) => a - b) : []);
    const shown = (z: number[]) =>
      text(
        `${z.slice(0, 10).join(', ')}${z.length > 10 ? ', …' : ''}`,
        `${z.slice(0, 10).join('、')}${z.length > 10 ? '、…' : ''}`,
      );
    await eventually(() => zombies().length === 0, SETTLE_MS);
    let z = zombies();
    if (z.length > 0) {
      return fail(
        text(
          `${plural(z.length, 'child', 'children')} of ${pid} in state Z after the clients left: ${shown(z).en}`,
          `客户端离开后，${pid} 有 ${z.length} 个子进程处于 Z 状态：${shown(z).zh}`,
        ),
        {
          diagnosis: diagnosis(
            'zombies',
            text(`pid ${pid} leaves its children unreaped: ${REAP_FIX.en}`, `进程 ${pid} 没有回收子进程：${REAP_FIX.zh}`),
          ),
        },
      );
    }
    const reaped = text(`no child of ${pid} in state Z after the clients left`, `客户端离开后，${pid} 没有处于 Z 状态的子进程`);
    // A child per client seen: do children that exit together get reaped too?
    if (!watch.design().childPerClient) return pass(reaped);
    const together = await exitTogether(ctx, watch);
    if ('untried' in together) {
      return pass(
        joinTexts([
          reaped,
          text(
            `${together.untried.en}, so children exiting together were not tried`,
            `${together.untried.zh}，因此没有试验同时退出的子进程`,
          ),
        ]),
      );
    }
    await eventually(() => zombies().length === 0, SETTLE_MS);
    z = zombies();
    const what = text(
      `${plural(together.exited, 'child', 'children')} exited together while ${pid} was stopped (SIGSTOP, then SIGCONT: their SIGCHLDs merged into one)`,
      `${together.exited} 个子进程在 ${pid} 暂停时同时退出（先 SIGSTOP 再 SIGCONT：它们的 SIGCHLD 合并成了一个）`,
    );
    if (z.length === 0) {
      return pass(joinTexts([reaped, text(`${what.en}: all reaped`, `${what.zh}：全部被回收`)]));
    }
    return fail(
      joinTexts([
        reaped,
        text(
          `${what.en}: ${z.length} of them stayed in state Z: ${shown(z).en}`,
          `${what.zh}：其中 ${z.length} 个一直处于 Z 状态：${shown(z).zh}`,
        ),
      ]),
      {
        diagnosis: diagnosis(
          'zombies',
          text(
            `pid ${pid} reaps children one at a time as they exit, but not several at once: a SIGCHLD handler runs once for many children, since a signal is not queued (UNP 5.9), so one wait() per signal leaves the others zombies; ${REAP_FIX.en}`,
            `进程 ${pid} 能逐个回收陆续退出的子进程，但回收不了同时退出的多个：信号不排队，多个子进程退出时 SIGCHLD 处理函数只运行一次（UNP 5.9），每个信号只 wait() 一次就会留下其他僵尸；${REAP_FIX.zh}`,
          ),
        ),
      },
    );
  },
};

const RESOURCES: CheckDef = {
  name: 'resources',
  point: text(
    'points 5, 9, 10: every cfd is closed once its client leaves (by the one process or thread that owns it), and every worker thread or child is gone',
    '第 5、9、10 点：客户端离开后每个 cfd 都被关闭（由拥有它的那个进程或线程关闭），每个子线程或子进程都已结束',
  ),
  async run(ctx) {
    const watch = ctx.watch;
    if (watch === null) return skip(text('needs --pid', '需要 --pid'));
    const base = watch.baseline;
    let r = watch.resources();
    const back = () => r !== null && r.fds <= base.fds && r.threads <= base.threads && r.children <= base.children;
    await eventually(() => {
      r = watch.resources();
      return back();
    }, SETTLE_MS);
    if (r === null) return fail(text(`pid ${watch.pid} is gone`, `进程 ${watch.pid} 不见了`));
    const now = r;
    const seen = text(
      `descriptors ${base.fds} → ${now.fds}, threads ${base.threads} → ${now.threads}, live children ${base.children} → ${now.children} (before → after the clients)`,
      `描述符 ${base.fds} → ${now.fds}，线程 ${base.threads} → ${now.threads}，存活子进程 ${base.children} → ${now.children}（客户端之前 → 之后）`,
    );
    if (back()) return pass(seen);
    const design = watch.design().kind;
    const fixes: Text[] = [];
    if (now.fds > base.fds) {
      fixes.push(
        design === 'fork'
          ? text(
              `${now.fds - base.fds} descriptors more than before: the parent must close(cfd) right after fork(), since the child has its own copy (point 5)`,
              `描述符比之前多 ${now.fds - base.fds} 个：父进程必须在 fork() 之后立即 close(cfd)，子进程有自己的副本（第 5 点）`,
            )
          : design === 'threads'
            ? text(
                `${now.fds - base.fds} descriptors more than before: the thread that serves a client must close its cfd when the client leaves — it is the only one holding it (point 10)`,
                `描述符比之前多 ${now.fds - base.fds} 个：服务客户端的线程必须在客户端离开时关闭它的 cfd —— 只有它持有这个描述符（第 10 点）`,
              )
            : text(
                `${now.fds - base.fds} descriptors more than before: a client's cfd is not closed when it leaves (one cfd variable overwritten by the next accept() loses it: point 4)`,
                `描述符比之前多 ${now.fds - base.fds} 个：客户端离开时它的 cfd 没有被关闭（一个 cfd 变量被下一次 accept() 覆盖，描述符就丢了：第 4 点）`,
              ),
      );
    }
    if (now.threads > base.threads) {
      fixes.push(
        text(
          `${now.threads - base.threads} threads more than before: a worker thread must end (return) when its client leaves, and be detached (pthread_detach) so that nobody needs to join it (point 9)`,
          `线程比之前多 ${now.threads - base.threads} 个：工作线程必须在客户端离开时结束（return），并且已分离（pthread_detach），不需要别人 join（第 9 点）`,
        ),
      );
    }
    if (now.children > base.children) {
      fixes.push(
        text(
          `${now.children - base.children} live children more than before: a child must close(cfd) and exit(0) when its client leaves (point 5)`,
          `存活子进程比之前多 ${now.children - base.children} 个：子进程必须在客户端离开时 close(cfd) 并 exit(0)（第 5 点）`,
        ),
      );
    }
    return fail(seen, { diagnosis: diagnosis('leak', joinTexts(fixes)) });
  },
};

const CHECKS: CheckDef[] = [ECHO, HALF_CLOSE, CONCURRENCY, VANISH, MAX_CLIENTS, ZOMBIES, RESOURCES];

// ---- the server's end ----

const signalText = (s: number) => signalName(s) ?? `signal ${s}`;

const SIGPIPE_FIX = text(
  'ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)) or send with MSG_NOSIGNAL, and treat EPIPE/ECONNRESET as the end of that one client',
  '忽略 SIGPIPE（signal(SIGPIPE, SIG_IGN)）或用 MSG_NOSIGNAL 发送，并把 EPIPE/ECONNRESET 当作这一个客户端的结束',
);

const SIGPIPE_ACTION: Record<ServerWatch['sigpipe'], Text> = {
  default: text('at its default action, which ends the process', '处于默认动作：结束进程'),
  ignored: text('ignored', '被忽略'),
  caught: text('caught by a handler', '由处理函数捕获'),
  blocked: text('blocked', '被阻塞'),
};

/**
 * Nothing listens on `port`, but connections of that port linger in TIME_WAIT: a server ran there
 * a moment ago, closed its connections first, and a restart could not bind() (EADDRINUSE) — unless
 * it sets SO_REUSEADDR before bind().
 */
function timeWaitOf(port: number): Diagnosis | undefined {
  const rows = tcpTable(port).filter((e) => e.local.port === port && e.state === 'TIME_WAIT').length;
  if (rows === 0) return undefined;
  return diagnosis(
    'time-wait',
    text(
      `the kernel still holds ${plural(rows, 'connection')} of port ${port} in TIME_WAIT (/proc/net/tcp): a server there closed them first, and a server restarted on the port now fails at bind() with EADDRINUSE unless it sets SO_REUSEADDR before bind()`,
      `内核仍把端口 ${port} 的 ${rows} 个连接保持在 TIME_WAIT 状态（/proc/net/tcp）：之前的服务器先关闭了它们，现在在这个端口重启的服务器若不在 bind() 之前设置 SO_REUSEADDR，bind() 就会失败（EADDRINUSE）`,
    ),
  );
}

/** The result of a check during which the server was found gone: what was seen, and how it ended where /proc shows it. */
function diedDuring(check: CheckDef, r: CheckResult, end: ServerEnd, ctx: Ctx): CheckResult {
  const { target, port } = ctx.o;
  const pid = ctx.watch?.pid;
  const during = check.circumstance ?? text('', '');
  let how: Text;
  let d: Diagnosis;
  if (end.kind === 'refused') {
    how = text(
      `connections to ${target} are refused after it had answered: nothing listens there any more`,
      `它应答过之后，连接 ${target} 被拒绝：那里已经没有程序在监听`,
    );
    const unseen = text(
      'how it ended is not visible without --pid PID: with it, check reads its exit status (while its parent has not reaped it) and what it does with SIGPIPE from /proc',
      '不给 --pid PID 就看不到它是怎么结束的：给了之后，check 会从 /proc 读取它的退出状态（在父进程回收它之前）以及它对 SIGPIPE 的处理方式',
    );
    d =
      check === VANISH
        ? diagnosis(
            'died-at-reset',
            text(
              `${unseen.en}; a server that dies just as a client resets a connection it is writing to is most often killed by SIGPIPE`,
              `${unseen.zh}；在客户端重置它正在写入的连接时死去的服务器，最常见的是被 SIGPIPE 杀死`,
            ),
          )
        : diagnosis('died', unseen);
  } else if (end.kind === 'zombie') {
    const s = end.status;
    const ended =
      s.signal !== undefined
        ? text(
            `was killed by ${signalText(s.signal)}${s.core ? ' (core dumped)' : ''}`,
            `被 ${signalText(s.signal)} 杀死${s.core ? '（产生了 core dump）' : ''}`,
          )
        : text(`exited with status ${s.exitCode ?? '?'}`, `以状态 ${s.exitCode ?? '?'} 退出`);
    how = text(
      `pid ${pid} ${ended.en} (its exit status, read from /proc/${pid}/stat while it was a zombie)`,
      `进程 ${pid} ${ended.zh}（它的退出状态，在它还是僵尸进程时从 /proc/${pid}/stat 读到）`,
    );
    d =
      s.signal === SIGPIPE
        ? diagnosis(
            'sigpipe',
            text(
              `killed by SIGPIPE: a write to a connection the client had reset raised it, and SIGPIPE's default action ends the process; ${SIGPIPE_FIX.en}`,
              `被 SIGPIPE 杀死：向客户端已经重置的连接写数据产生了 SIGPIPE，而它的默认动作是结束进程；${SIGPIPE_FIX.zh}`,
            ),
          )
        : diagnosis(
            'died',
            s.signal !== undefined
              ? text(`${signalText(s.signal)} ended it, not SIGPIPE`, `结束它的是 ${signalText(s.signal)}，不是 SIGPIPE`)
              : text(
                  `it ended itself (exit status ${s.exitCode ?? '?'}); its own error output says why`,
                  `它自己退出了（退出状态 ${s.exitCode ?? '?'}）；它自己的错误输出会说明原因`,
                ),
          );
  } else if (end.kind === 'gone') {
    const action = ctx.watch!.sigpipe;
    how = text(
      `pid ${pid} is gone, and its parent has already reaped it, so its exit status cannot be read; before the checks /proc/${pid}/status showed SIGPIPE ${SIGPIPE_ACTION[action].en}`,
      `进程 ${pid} 不见了，它的父进程已经回收了它，所以读不到它的退出状态；检查之前 /proc/${pid}/status 显示 SIGPIPE ${SIGPIPE_ACTION[action].zh}`,
    );
    d =
      action === 'default' && check === VANISH
        ? diagnosis(
            'sigpipe',
            text(
              `SIGPIPE was at its default action and the server died as a client reset a connection it was writing to: a write there raises SIGPIPE, which ends such a process; ${SIGPIPE_FIX.en}`,
              `SIGPIPE 处于默认动作，而服务器正是在客户端重置它正在写入的连接时死去的：向这样的连接写数据会产生 SIGPIPE，从而结束这样的进程；${SIGPIPE_FIX.zh}`,
            ),
          )
        : diagnosis(
            'died',
            action === 'default'
              ? text(
                  "its parent reaped it before check could read its exit status (a parent that does not reap at once leaves it readable in /proc); the server's own error output may say why it ended",
                  '父进程在 check 读到它的退出状态之前就回收了它（不立即回收的父进程会让它留在 /proc 里可读）；服务器自己的错误输出也许会说明它为什么结束',
                )
              : text(
                  `SIGPIPE is ${SIGPIPE_ACTION[action].en}, so SIGPIPE did not end it; its own error output says why it ended`,
                  `SIGPIPE ${SIGPIPE_ACTION[action].zh}，所以不是 SIGPIPE 结束了它；它自己的错误输出会说明原因`,
                ),
          );
  } else {
    how = text(
      `pid ${pid} lives, but no longer holds the listening socket of port ${port}: connections to ${target} are refused`,
      `进程 ${pid} 还活着，但不再持有端口 ${port} 的监听套接字：连接 ${target} 被拒绝`,
    );
    d = diagnosis(
      'stopped-listening',
      text(
        'something closed the listening socket lfd, or the process stopped listening; in a thread server a close(lfd) in any thread closes it for all (point 10)',
        '监听套接字 lfd 被关闭了，或者进程不再监听；在多线程服务器中，任何一个线程 close(lfd) 都会让所有线程失去它（第 10 点）',
      ),
    );
  }
  const stopped = end.kind === 'not-listening';
  const died = text(
    `the server ${stopped ? 'stopped listening' : 'died'} during this check${during.en}: ${how.en}`,
    `服务器在这项检查中${stopped ? '停止了监听' : '死了'}${during.zh}：${how.zh}`,
  );
  // What the check itself had seen fail, unless it was only the refusal that showed the death.
  const before = r.status === 'fail' && !ctx.refused ? r.seen : null;
  return {
    ...r,
    status: 'fail',
    seen: before ? text(`${died.en}. The check had seen: ${before.en}`, `${died.zh}。这项检查看到的是：${before.zh}`) : died,
    diagnosis: d,
  };
}

/** null while the server still serves; otherwise how it was found gone. */
async function stillServing(ctx: Ctx): Promise<ServerEnd | null> {
  const { host, port } = ctx.o;
  const watch = ctx.watch;
  if (watch !== null) {
    // A process that exits closes its descriptors (the listener too) before it becomes a zombie:
    // a refused connect, or a live process without its listener, may be one that is exiting.
    // Give it a moment to show which.
    const exiting = () => {
      const end = watch.end();
      return end === null ? ctx.refused : end.kind === 'not-listening';
    };
    if (exiting()) await eventually(() => !exiting(), SETTLE_MS);
    return watch.end() ?? (ctx.refused ? { kind: 'refused' } : null);
  }
  if (ctx.refused) return { kind: 'refused' };
  const probe = await Client.open(port, CONNECT_MS, host).catch((e: NodeJS.ErrnoException) => e);
  if (!(probe instanceof Client)) return probe.code === 'ECONNREFUSED' ? { kind: 'refused' } : null;
  probe.destroy();
  return null;
}

/**
 * Runs every check, printing each result through `out` as it comes and a summary at the end;
 * resolves with the report (exit code included). Checks needing `pid` or `maxClients` are skipped
 * without them, loudly. Never rejects for a broken server — what went wrong is the report — but
 * throws for bad options (TypeError/RangeError) and for a `pid` that is not the listening process.
 */
export async function runChecks(options: CheckOptions, out: (line: string) => void = () => undefined): Promise<CheckReport> {
  const o = resolveCheckOptions(options);
  const finish = (report: CheckReport): CheckReport => {
    for (const line of summaryLines(report, o.lang)) out(line);
    return report;
  };

  // Nothing is connected to find out whether anything listens: the first client of the first
  // check does (a broken server must meet only the clients of the checks). Until one has been
  // answered, a refused or failed connect means there is no server to check. With --pid, /proc
  // says it first.
  const nothingListening = () => text(`nothing is listening on ${o.target}`, `${o.target} 上没有程序在监听`);
  let watch: ServerWatch | null = null;
  if (o.pid !== undefined) {
    try {
      watch = ServerWatch.attach(o.pid, o.port);
    } catch (e) {
      if (!listening(o.port)) return finish(noServer(o.target, nothingListening(), timeWaitOf(o.port)));
      throw e;
    }
    const b = watch.baseline;
    out(
      t(
        o.lang,
        text(
          `baseline of pid ${watch.pid}: ${plural(b.fds, 'descriptor')}, ${plural(b.threads, 'thread')}, ${plural(b.children, 'child', 'children')}; SIGPIPE ${SIGPIPE_ACTION[watch.sigpipe].en}`,
          `进程 ${watch.pid} 的基线：${b.fds} 个描述符，${b.threads} 个线程，${b.children} 个子进程；SIGPIPE ${SIGPIPE_ACTION[watch.sigpipe].zh}`,
        ),
      ),
    );
  }
  // Lines wait until the server has answered once: a run that finds nobody prints one line.
  const held: string[] = [];
  const print = (lines: string[]) => {
    if (ctx.answered) lines.forEach((l) => out(l));
    else held.push(...lines);
  };
  const ctx: Ctx = {
    o,
    watch,
    answered: false,
    refused: false,
    echoPassed: false,
    async open() {
      try {
        const c = await Client.open(o.port, CONNECT_MS, o.host);
        if (!ctx.answered) {
          ctx.answered = true;
          held.splice(0).forEach((l) => out(l));
        }
        return c;
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (!ctx.answered) {
          throw new NoServer(
            err.code === 'ECONNREFUSED'
              ? nothingListening()
              : text(`no answer from ${o.target}: ${err.message}`, `${o.target} 没有应答：${err.message}`),
          );
        }
        if (err.code !== 'ECONNREFUSED') throw e;
        ctx.refused = true;
        throw new ServerGone(err.message);
      }
    },
  };

  const results: CheckResult[] = [];
  let died: CheckName | undefined;
  for (const check of CHECKS) {
    let r: CheckResult;
    if (o.only !== undefined && !o.only.includes(check.name)) {
      r = { name: check.name, status: 'skip', point: check.point, seen: text('not asked for', '未要求') };
    } else if (died !== undefined) {
      r = {
        name: check.name,
        status: 'not-run',
        point: check.point,
        seen: text(`the server had died during ${died}`, `服务器已在 ${died} 检查中死去`),
      };
    } else {
      let noServerFound: Text | null = null;
      const outcome = await check.run(ctx).catch((e: Error): Outcome => {
        if (e instanceof NoServer) noServerFound = e.why;
        return fail(
          e instanceof ServerGone
            ? text(`connection refused: ${e.message}`, `连接被拒绝：${e.message}`)
            : text(`could not connect: ${e.message}`, `无法连接：${e.message}`),
        );
      });
      if (noServerFound !== null) return finish(noServer(o.target, noServerFound, timeWaitOf(o.port)));
      r = { name: check.name, point: check.point, ...outcome };
      if (r.status !== 'skip') {
        const end = await stillServing(ctx);
        if (end !== null) {
          died = check.name;
          r = diedDuring(check, r, end, ctx);
        }
      }
    }
    results.push(r);
    print(resultLines(r, o.lang));
  }
  return finish(conclude(o.target, results, o.strict, died));
}
