// `posix-servers check HOST:PORT`: black-box checks of any TCP echo server — a student's fork or
// thread server in C, this package's models, the C references, tcpserver, socat. Each check drives
// real clients (the labs' kit), names the lecture point it tests, and says what it saw; with the
// server's pid it reads /proc too (watch.ts). A diagnosis says only what was observed: the
// lecture's fork or thread fix is named only when /proc showed the server's children or threads.
// Once the server is gone, the check during which it died fails — saying how, where /proc shows
// it — and every later check is reported as not run: nothing is checked on a dead server.
// This file is the run (options, the order, a dead server's diagnosis); the checks are in echo.ts,
// concurrency.ts and resources.ts, what they share in context.ts.
import { Client, eventually, tcpTable } from '../labs/kit';
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
import { ServerEnd, ServerWatch } from './watch';
import {
  Ctx,
  CheckDef,
  Outcome,
  Resolved,
  ServerGone,
  NoServer,
  listening,
  fail,
  t,
  plural,
  SETTLE_MS,
  CONNECT_MS,
  SIGPIPE,
} from './context';
import { ECHO, HALF_CLOSE, VANISH } from './echo';
import { CONCURRENCY, MAX_CLIENTS } from './concurrency';
import { ZOMBIES, RESOURCES } from './resources';

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
