// The checks of what the server leaves behind, read in /proc once everyone left: zombies, then
// descriptors and threads.
import { Client, destroyAll, eventually } from '../labs/kit';
import { answerOf } from './concurrency';
import { CONCURRENT_MS, SETTLE_MS, BURST, Ctx, CheckDef, pass, fail, skip, plural, joinTexts } from './context';
import { diagnosis, Text, text } from './report';
import { ServerWatch } from './watch';

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

export const ZOMBIES: CheckDef = {
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
    // The reading that decides is the one that waited: a second reading after the wait could
    // catch a child that exited just then, a zombie for the instant before its parent reaps it
    // (the last client's, a moment after it left) — a correct server failed so, once in a few runs.
    let z: number[] = [];
    await eventually(() => (z = zombies()).length === 0, SETTLE_MS);
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
    await eventually(() => (z = zombies()).length === 0, SETTLE_MS);
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

export const RESOURCES: CheckDef = {
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
