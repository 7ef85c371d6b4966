// posix-servers check: it passes every good server — this package's models, the C references —
// and gives each broken one the verdict that names its mistake, in English and in Chinese: small C
// servers written as a student writes them (test/fixtures/c, compiled here with cc), tcpserver
// and socat, and a port nobody listens on.
import { ChildProcess, ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckName, CheckReport, CheckResult, DiagnosisId, runChecks } from '../lib/check/checks';
import { DIAGNOSES, resultLines, summaryLines } from '../lib/check/report';
import { parseCheckArgs, parseTarget } from '../lib/cli/check';
import { programBinary, REFERENCE_MODELS, startProgram, startReference } from '../lib/bench/reference';
import { fdLinks, socketInode, tcpTable } from '../lib/labs/kit';
import { LABS } from '../lib/labs';
import { MODELS, startServer } from '../lib';
import type { PosixServer } from '../lib';
import { readStat } from '../lib/util/proc';
import { needs } from './external';
import { inOwnNetwork, sleep, waitFor } from './helpers';

const ROOT = join(__dirname, '..');

const CLI = join(__dirname, '..', 'dist', 'cli', 'main.js');
const MAX = 5;

const statusOf = (results: CheckResult[]) =>
  Object.fromEntries(results.map((r) => [r.name, r.status])) as Record<CheckName, string>;
const resultOf = (report: CheckReport, name: CheckName) => report.results.find((r) => r.name === name)!;
/** What the report prints, in one language. */
const printed = (report: CheckReport, lang: 'en' | 'zh') =>
  [...report.results.flatMap((r) => resultLines(r, lang)), ...summaryLines(report, lang)].join('\n');

interface Served {
  child: ChildProcessWithoutNullStreams;
  port: number;
  pid: number;
}

// The server runs in a process of its own, as a student's would: /proc of that pid is the server's alone.
async function serve(args: string[]): Promise<Served> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--json', ...args]);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => out.includes('\n'), 10000, 'the listening line');
  const listening = JSON.parse(out.slice(0, out.indexOf('\n')));
  return { child, port: listening.port, pid: listening.pid };
}

async function stop(s: Served): Promise<void> {
  const exited = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGTERM');
  await exited;
}

describe.each(MODELS)('check against this package’s %s model', (model) => {
  test('every check passes; several clients are served at once (the iterative model: one at a time)', async () => {
    const iterative = model === 'iterative';
    // A prefork worker or prethread thread serves one client at a time: more of them than MAX, so
    // that the client past MAX finds one to accept and refuse it (with MAX it would wait in the backlog).
    const workers =
      model === 'cluster' || model === 'reuseport'
        ? ['--workers', '2']
        : model === 'prefork' || model === 'prethread'
          ? ['--workers', String(MAX + 3)]
          : [];
    const s = await serve(['--model', model, '--max-clients', String(MAX), ...workers]);
    try {
      const lines: string[] = [];
      // The iterative model ignores maxClients (waiting clients sit in the backlog): nothing to claim.
      // --strict: a full check, nothing skipped.
      const report = await runChecks(
        { host: '127.0.0.1', port: s.port, pid: s.pid, ...(iterative ? {} : { maxClients: MAX, strict: true }) },
        (l) => lines.push(l),
      );
      expect(report.results.filter((r) => r.status === 'fail')).toEqual([]); // shows what was seen
      expect(statusOf(report.results)).toEqual({
        echo: 'pass',
        'half-close': 'pass',
        concurrency: 'pass',
        vanish: 'pass',
        'max-clients': iterative ? 'skip' : 'pass',
        zombies: 'pass',
        resources: 'pass',
      });
      expect(resultOf(report, 'concurrency').verdict).toBe(iterative ? 'iterative' : 'concurrent');
      if (!iterative) expect(resultOf(report, 'max-clients').whenFull).toBe('refused');
      expect(report.exitCode).toBe(0);
      expect(lines.at(-1)).toBe(
        iterative
          ? 'PASSED: 6 of 6 checks passed; SKIPPED: max-clients — not a full check (--strict would fail it)'
          : 'PASSED: 7 of 7 checks passed',
      );
    } finally {
      await stop(s);
    }
  });
});

const refUring = needs('ref-uring', "check against ref-uring, the uring model's C reference: every check that applies passes");
describe.each(REFERENCE_MODELS)('check against the C reference ref-%s', (model) => {
  (model === 'uring' ? refUring.test : test)('every check that applies passes', async () => {
    // The pools get enough processes for the concurrency check's clients (a prefork child serves one).
    const ref = await startReference(
      model,
      model === 'prefork' || model === 'reuseport' || model === 'prethread' ? { workers: MAX + 3 } : {},
    );
    try {
      const report = await runChecks({ host: '127.0.0.1', port: ref.port, pid: ref.pid });
      expect(report.results.filter((r) => r.status === 'fail')).toEqual([]);
      expect(statusOf(report.results)['max-clients']).toBe('skip'); // the references claim no limit
      expect(resultOf(report, 'concurrency').verdict).toBe(model === 'iterative' ? 'iterative' : 'concurrent');
    } finally {
      await ref.close();
    }
  });
});

// ---- a student's homework: small C servers, compiled as a student compiles them ----

/** How a homework server is started: by us; by a shell that reaps it at once; by a parent that never reaps it. */
type Parent = 'direct' | 'reaping-parent' | 'non-reaping-parent';

interface Homework {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

let binDir = '';
const FIXTURES = join(__dirname, 'fixtures', 'c');

beforeAll(() => {
  // Fixtures, not part of the package: built here, as `gcc -o myserver myserver.c` would, into a
  // directory of their own that goes away with the tests.
  binDir = mkdtempSync(join(tmpdir(), 'posix-servers-homework-'));
  for (const file of readdirSync(FIXTURES).filter((f) => f.endsWith('.c'))) {
    execFileSync('cc', ['-o', join(binDir, file.slice(0, -2)), join(FIXTURES, file), '-pthread'], { stdio: 'pipe' });
  }
});
afterAll(() => rmSync(binDir, { recursive: true, force: true }));

/** The port of the socket `pid` listens on, from /proc; null while it listens on none. */
function listeningPort(pid: number): number | null {
  const held = new Set([...(fdLinks(pid)?.values() ?? [])].map((l) => socketInode(l)).filter((i) => i !== null));
  return tcpTable().find((e) => e.state === 'LISTEN' && held.has(e.inode))?.local.port ?? null;
}

/** Starts a program that binds a port of its own choosing, and finds that port in /proc. */
async function startListening(child: ChildProcess, pidOf: () => Promise<number>, label: string): Promise<Homework> {
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (e) => reject(new Error(`${label} could not be started (${e.message}): is it installed?`)));
  });
  await spawned;
  const exited = new Promise<void>((r) =>
    child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r()),
  );
  const pid = await pidOf();
  let port: number | null = null;
  await waitFor(() => (port = listeningPort(pid)) !== null || child.exitCode !== null, 5000, `${label} to listen`).catch(
    () => undefined,
  );
  if (port === null) {
    child.kill('SIGKILL');
    throw new Error(`${label} did not listen: ${stderr}`);
  }
  return {
    pid,
    port,
    async stop() {
      for (const p of [pid, child.pid!]) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await exited;
    },
  };
}

function homework(name: string, parent: Parent = 'direct'): Promise<Homework> {
  const bin = join(binDir, name);
  if (parent === 'direct') {
    const child = spawn(bin, ['0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    return startListening(child, async () => child.pid!, name);
  }
  // A shell starts it and prints its pid; then waits for it (reaping it as soon as it dies), or
  // becomes a program that never waits (it stays a zombie, its exit status readable in /proc).
  const script = parent === 'reaping-parent' ? '"$0" 0 & echo $!; wait' : '"$0" 0 & echo $!; exec sleep 600';
  const child = spawn('sh', ['-c', script, bin], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  return startListening(
    child,
    async () => {
      await waitFor(() => out.includes('\n'), 5000, `${name}'s pid`);
      return Number(out.trim());
    },
    name,
  );
}

/** The ports of tcpserver and socat come from /proc too: both are given port 0. */
function external(program: string, args: string[]): Promise<Homework> {
  const child = spawn(program, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  return startListening(
    child,
    async () => child.pid!,
    `${program} (Debian: apt-get install ${program === 'tcpserver' ? 'ucspi-tcp' : program})`,
  );
}

describe('check against a student’s C servers (test/fixtures/c)', () => {
  let server: Homework | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  test('a fork server that never reaps, without --pid: zombies and resources are SKIPPED, loudly, and --strict fails the run', async () => {
    server = await homework('fork-no-reap');
    const lines: string[] = [];
    const report = await runChecks({ host: '127.0.0.1', port: server.port, strict: true }, (l) => lines.push(l));
    expect(statusOf(report.results)).toEqual({
      echo: 'pass',
      'half-close': 'pass',
      concurrency: 'pass',
      vanish: 'pass',
      'max-clients': 'skip',
      zombies: 'skip',
      resources: 'skip',
    });
    expect(report.exitCode).toBe(1);
    expect(report.outcome).toBe('failed');
    expect(report.strictFailed).toEqual(['max-clients', 'zombies', 'resources']);
    expect(lines).toContain('SKIPPED zombies: needs --pid');
    expect(lines).toContain('SKIPPED max-clients: needs --max-clients N');
    expect(lines.at(-1)).toBe(
      'FAILED: 4 of 4 checks passed; SKIPPED: max-clients, zombies, resources — --strict fails a run with any check skipped',
    );
    expect(printed(report, 'zh')).toMatch(/^跳过 zombies：需要 --pid$/m);
    expect(summaryLines(report, 'zh')).toEqual([
      '未通过：4 项检查中 4 项通过；跳过：max-clients、zombies、resources —— 有检查被跳过，--strict 判为失败',
    ]);
  });

  test('a fork server that never reaps, with --pid: zombies fail, and only zombies; the fix is the fork fix it needs', async () => {
    server = await homework('fork-no-reap');
    const report = await runChecks({ host: '127.0.0.1', port: server.port, pid: server.pid, strict: true });
    expect(statusOf(report.results)).toEqual({
      echo: 'pass',
      'half-close': 'pass',
      concurrency: 'pass',
      vanish: 'pass', // its children die of SIGPIPE; the server (the parent) lives on
      'max-clients': 'skip',
      zombies: 'fail',
      resources: 'pass',
    });
    expect(report.exitCode).toBe(1);
    const z = resultOf(report, 'zombies');
    expect(z.seen.en).toMatch(new RegExp(`^\\d+ children of ${server.pid} in state Z after the clients left: \\d+`));
    expect(z.seen.zh).toMatch(new RegExp(`^客户端离开后，${server.pid} 有 \\d+ 个子进程处于 Z 状态`));
    expect(z.diagnosis).toMatchObject({ id: 'zombies', lab: 'zombies' });
    expect(z.diagnosis!.text.en).toContain('install a SIGCHLD handler that loops waitpid(-1, &status, WNOHANG)');
    expect(z.diagnosis!.text.zh).toContain('安装 SIGCHLD 处理函数');
    expect(printed(report, 'en')).toMatch(/^ {4}see: posix-servers lab zombies$/m);
    expect(printed(report, 'zh')).toMatch(/^ {4}参见：posix-servers lab zombies$/m);
  });

  test('a fork server whose SIGCHLD handler calls wait() once: children that exit together stay zombies', async () => {
    server = await homework('fork-wait-once');
    // One client at a time first (each exit its own SIGCHLD, each reaped), then the burst.
    const report = await runChecks({ host: '127.0.0.1', port: server.port, pid: server.pid, only: ['echo', 'zombies'] });
    expect(statusOf(report.results)).toMatchObject({ echo: 'pass', zombies: 'fail' });
    const z = resultOf(report, 'zombies');
    expect(z.seen.en).toMatch(
      new RegExp(
        `^no child of ${server.pid} in state Z after the clients left; 5 children exited together while ${server.pid} was stopped \\(SIGSTOP, then SIGCONT: their SIGCHLDs merged into one\\): 4 of them stayed in state Z: \\d+, \\d+, \\d+, \\d+$`,
      ),
    );
    expect(z.seen.zh).toMatch(new RegExp(`5 个子进程在 ${server.pid} 暂停时同时退出.*：其中 4 个一直处于 Z 状态`));
    expect(z.diagnosis).toMatchObject({ id: 'zombies', lab: 'zombies' });
    expect(z.diagnosis!.text.en).toMatch(
      /^pid \d+ reaps children one at a time as they exit, but not several at once: .*signal is not queued \(UNP 5\.9\)/,
    );
    expect(z.diagnosis!.text.zh).toMatch(/^进程 \d+ 能逐个回收陆续退出的子进程，但回收不了同时退出的多个/);
    expect(readStat(server.pid)?.state).not.toBe('T'); // continued after the burst
  });

  test('the naive iterative server dies of SIGPIPE at vanish (no --pid): one failure there, and every later check NOT RUN', async () => {
    server = await homework('iterative-sigpipe');
    const lines: string[] = [];
    const report = await runChecks({ host: '127.0.0.1', port: server.port, maxClients: 2 }, (l) => lines.push(l));
    expect(statusOf(report.results)).toEqual({
      echo: 'pass',
      'half-close': 'pass',
      concurrency: 'pass',
      vanish: 'fail',
      'max-clients': 'not-run',
      zombies: 'not-run',
      resources: 'not-run',
    });
    expect(report).toMatchObject({ exitCode: 1, diedDuring: 'vanish' });
    const v = resultOf(report, 'vanish');
    expect(v.seen.en).toMatch(
      /^the server died during this check, as a client that sent until the server stopped reading, without reading itself, reset the connection the server was writing to: connections to 127\.0\.0\.1:\d+ are refused after it had answered/,
    );
    expect(v.seen.zh).toMatch(
      /^服务器在这项检查中死了（当时一个不读取、一直发送到服务器不再读取为止的客户端重置了服务器正在写入的连接）：它应答过之后，连接 127\.0\.0\.1:\d+ 被拒绝/,
    );
    // Without --pid, how it ended is not seen: no SIGPIPE claim, only its classic moment, and the lab.
    expect(v.diagnosis).toMatchObject({ id: 'died-at-reset', lab: 'sigpipe' });
    expect(v.diagnosis!.text.en).toMatch(
      /^how it ended is not visible without --pid PID.*; a server that dies just as a client resets a connection it is writing to is most often killed by SIGPIPE$/,
    );
    expect(v.diagnosis!.text.zh).toMatch(/最常见的是被 SIGPIPE 杀死$/);
    expect(printed(report, 'en')).toMatch(/^ {4}see: posix-servers lab sigpipe$/m);
    expect(lines).toContain('NOT RUN zombies: the server had died during vanish');
    expect(lines.at(-1)).toBe(
      'FAILED: 3 of 4 checks passed; failed: vanish; not run (the server had died during vanish): max-clients, zombies, resources',
    );
    expect(printed(report, 'zh')).toMatch(/^未运行 zombies：服务器已在 vanish 检查中死去$/m);
    expect(summaryLines(report, 'zh')).toEqual([
      '未通过：4 项检查中 3 项通过；失败：vanish；未运行（服务器已在 vanish 检查中死去）：max-clients、zombies、resources',
    ]);
  });

  test('…with --pid, started by a shell that reaps it: gone, SIGPIPE at its default action — the SIGPIPE fix', async () => {
    server = await homework('iterative-sigpipe', 'reaping-parent');
    const lines: string[] = [];
    const report = await runChecks({ host: '127.0.0.1', port: server.port, pid: server.pid }, (l) => lines.push(l));
    expect(lines[0]).toMatch(
      new RegExp(
        `^baseline of pid ${server.pid}: \\d+ descriptors, 1 thread, 0 children; SIGPIPE at its default action, which ends the process$`,
      ),
    );
    expect(statusOf(report.results)).toEqual({
      echo: 'pass',
      'half-close': 'pass',
      concurrency: 'pass',
      vanish: 'fail',
      'max-clients': 'not-run', // it would be skipped (no --max-clients), but nothing runs on a dead server
      zombies: 'not-run', // never a pass for a process that no longer exists
      resources: 'not-run',
    });
    const v = resultOf(report, 'vanish');
    expect(v.seen.en).toContain(
      `pid ${server.pid} is gone, and its parent has already reaped it, so its exit status cannot be read; before the checks /proc/${server.pid}/status showed SIGPIPE at its default action`,
    );
    expect(v.seen.zh).toContain(`进程 ${server.pid} 不见了，它的父进程已经回收了它，所以读不到它的退出状态`);
    expect(v.diagnosis).toMatchObject({ id: 'sigpipe', lab: 'sigpipe' });
    expect(v.diagnosis!.text.en).toContain('ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)) or send with MSG_NOSIGNAL');
    expect(v.diagnosis!.text.zh).toContain('忽略 SIGPIPE（signal(SIGPIPE, SIG_IGN)）或用 MSG_NOSIGNAL 发送');
  });

  test('…with --pid, started by a parent that never reaps it: its exit status in /proc says SIGPIPE killed it', async () => {
    server = await homework('iterative-sigpipe', 'non-reaping-parent');
    const report = await runChecks({ host: '127.0.0.1', port: server.port, pid: server.pid });
    expect(statusOf(report.results)).toMatchObject({ vanish: 'fail', zombies: 'not-run', resources: 'not-run' });
    expect(readStat(server.pid)?.state).toBe('Z'); // what check read
    const v = resultOf(report, 'vanish');
    expect(v.seen.en).toContain(
      `pid ${server.pid} was killed by SIGPIPE (its exit status, read from /proc/${server.pid}/stat while it was a zombie)`,
    );
    expect(v.seen.zh).toContain(
      `进程 ${server.pid} 被 SIGPIPE 杀死（它的退出状态，在它还是僵尸进程时从 /proc/${server.pid}/stat 读到）`,
    );
    expect(v.diagnosis).toMatchObject({ id: 'sigpipe', lab: 'sigpipe' });
    expect(v.diagnosis!.text.en).toMatch(
      /^killed by SIGPIPE: .*ignore SIGPIPE \(signal\(SIGPIPE, SIG_IGN\)\) or send with MSG_NOSIGNAL/,
    );
    expect(v.diagnosis!.text.zh).toMatch(/^被 SIGPIPE 杀死：/);
  });

  test('a server that answers one read() and closes: half-close loses the reply to a reset — lab lingering-close', async () => {
    server = await homework('echo-once');
    const report = await runChecks({ host: '127.0.0.1', port: server.port, only: ['half-close'] });
    const h = resultOf(report, 'half-close');
    expect(h.status).toBe('fail');
    expect(h.diagnosis).toMatchObject({ id: 'reset-on-close', lab: 'lingering-close' });
    expect(h.diagnosis!.text.en).toMatch(/^the server closed the connection while bytes the client had sent were still unread/);
    expect(h.diagnosis!.text.zh).toMatch(/^服务器在客户端发来的字节还未读完/);
    expect(printed(report, 'zh')).toMatch(/^ {4}参见：posix-servers lab lingering-close$/m);
  });

  test('a server that reads everything before it closes is not told it reset anyone', async () => {
    server = await homework('iterative');
    const report = await runChecks({ host: '127.0.0.1', port: server.port, only: ['echo', 'half-close'] });
    expect(statusOf(report.results)).toMatchObject({ echo: 'pass', 'half-close': 'pass' });
    expect(report.results.map((r) => r.diagnosis)).toEqual([undefined, undefined]);
  });

  test('an iterative server that survives: passes (one at a time); --require concurrent fails it', async () => {
    server = await homework('iterative');
    const plain = await runChecks({ host: '127.0.0.1', port: server.port, pid: server.pid, only: ['concurrency'] });
    expect(resultOf(plain, 'concurrency')).toMatchObject({ status: 'pass', verdict: 'iterative', servedAtOnce: 1 });
    expect(plain.exitCode).toBe(0);
    const required = await runChecks({ host: '127.0.0.1', port: server.port, pid: server.pid, require: 'concurrent' });
    expect(statusOf(required.results)).toEqual({
      echo: 'pass',
      'half-close': 'pass',
      concurrency: 'fail',
      vanish: 'pass',
      'max-clients': 'skip',
      zombies: 'pass',
      resources: 'pass',
    });
    expect(required.exitCode).toBe(1);
    const c = resultOf(required, 'concurrency');
    expect(c.verdict).toBe('iterative');
    expect(c.seen.en).toMatch(/^iterative: 1 of 3 clients served while all were connected/);
    expect(c.seen.zh).toMatch(/^iterative：所有客户端都连接时只有 1\/3 个得到服务/);
    expect(c.diagnosis).toMatchObject({ id: 'iterative', lab: 'iterative' });
    expect(c.diagnosis!.text.en).toMatch(/^--require concurrent: this server serves one client at a time/);
    expect(c.diagnosis!.text.zh).toMatch(/^--require concurrent：这个服务器一次只服务一个客户端/);
  });

  test('a thread server that passes &cfd: with --pid, threads seen, so the &cfd diagnosis; without, no fix is guessed', async () => {
    // The concurrency check alone, on a fresh server each time: once cfd is shared, a thread left
    // from an earlier client reads and closes whichever descriptor cfd holds by then — the next
    // check's client, at the scheduler's whim.
    server = await homework('thread-shared-cfd');
    const report = await runChecks({ host: '127.0.0.1', port: server.port, pid: server.pid, only: ['concurrency'] });
    const c = resultOf(report, 'concurrency');
    // Every thread ends up reading and writing the newest client through &cfd: the others are
    // never answered (their lines usually reach client 3: `client 3 got the line client 1 had sent`).
    expect(c).toMatchObject({ status: 'fail', verdict: 'broken' });
    expect(c.seen.en).toMatch(/^broken: /);
    expect(c.seen.zh).toMatch(/^broken：/);
    expect(c.diagnosis).toMatchObject({ id: 'shared-cfd', lab: 'shared-cfd' });
    expect(c.diagnosis!.text.en).toMatch(
      new RegExp(`^pid ${server.pid} runs \\d+ threads: is cfd passed to the threads by address \\(&cfd\\)\\?`),
    );
    expect(c.diagnosis!.text.zh).toMatch(
      new RegExp(`^进程 ${server.pid} 有 \\d+ 个线程：是不是把 cfd 的地址（&cfd）传给了线程？`),
    );
    expect(printed(report, 'en')).toMatch(/^ {4}see: posix-servers lab shared-cfd$/m);

    await server.stop();
    server = await homework('thread-shared-cfd');
    const blind = await runChecks({ host: '127.0.0.1', port: server.port, only: ['concurrency'] });
    const b = resultOf(blind, 'concurrency');
    expect(b).toMatchObject({ status: 'fail', verdict: 'broken' });
    expect(b.diagnosis!.id).toBe('clients-lost');
    expect(b.diagnosis!.text.en).toContain(
      'Without --pid PID check cannot see whether the server forks or runs threads, so it names no fix',
    );
    expect(b.diagnosis!.text.zh).toContain('不给 --pid PID，check 看不出服务器是多进程还是多线程，因此不指出改法');
    expect(JSON.stringify([b.seen, b.diagnosis])).not.toMatch(/&cfd|INFO\[/);
  });
});

/** A loopback port that was just in use and is free again: nobody listens on it. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as { port: number }).port;
  await new Promise((r) => probe.close(r));
  return port;
}

describe('check against a port nobody listens on', () => {
  test('one failure, "nothing is listening on HOST:PORT", exit code 2', async () => {
    const port = await freePort();
    const lines: string[] = [];
    const report = await runChecks({ host: '127.0.0.1', port, pid: process.pid, strict: true }, (l) => lines.push(l));
    expect(report).toMatchObject({ outcome: 'no-server', exitCode: 2, results: [] });
    expect(lines).toEqual([`✗ nothing is listening on 127.0.0.1:${port}`]);
    expect(summaryLines(report, 'zh')).toEqual([`✗ 127.0.0.1:${port} 上没有程序在监听`]);
  });
});

describe('check against a port whose server has just gone, leaving TIME_WAIT behind', () => {
  test('nothing listening, exit 2, and the TIME_WAIT rows of the port point to lab time-wait', async () => {
    // In a network namespace of its own, whose TIME_WAIT table the other suites' churn does not
    // fill (helpers: inOwnNetwork): a server that closes first (the side that closes first keeps
    // TIME_WAIT), then goes away; then check.
    const script = `
      const { createServer, connect } = require('node:net');
      const { runChecks } = require(${JSON.stringify(join(ROOT, 'dist', 'check', 'checks'))});
      const { summaryLines } = require(${JSON.stringify(join(ROOT, 'dist', 'check', 'report'))});
      const { tcpTable } = require(${JSON.stringify(join(ROOT, 'dist', 'labs', 'kit'))});
      (async () => {
        const srv = createServer((s) => s.destroy());
        await new Promise((r) => srv.listen(0, '127.0.0.1', r));
        const port = srv.address().port;
        await new Promise((resolve) => {
          const c = connect(port, '127.0.0.1');
          c.on('error', () => undefined).on('close', () => resolve());
        });
        await new Promise((r) => srv.close(r));
        const rows = tcpTable(port).filter((e) => e.local.port === port && e.state === 'TIME_WAIT').length;
        const lines = [];
        const report = await runChecks({ host: '127.0.0.1', port }, (l) => lines.push(l));
        console.log(JSON.stringify({ port, rows, report, lines, zh: summaryLines(report, 'zh') }));
      })();`;
    const { port, rows, report, lines, zh } = await inOwnNetwork<{
      port: number;
      rows: number;
      report: CheckReport;
      lines: string[];
      zh: string[];
    }>(['-e', script]);
    expect(rows).toBe(1);
    expect(report).toMatchObject({ outcome: 'no-server', exitCode: 2, results: [] });
    expect(report.diagnosis).toMatchObject({ id: 'time-wait', lab: 'time-wait' });
    expect(lines[0]).toBe(`✗ nothing is listening on 127.0.0.1:${port}`);
    expect(lines[1]).toMatch(
      new RegExp(
        `^ {4}diagnosis: the kernel still holds 1 connection of port ${port} in TIME_WAIT .*EADDRINUSE unless it sets SO_REUSEADDR before bind\\(\\)$`,
      ),
    );
    expect(lines[2]).toBe('    see: posix-servers lab time-wait');
    expect(zh[2]).toBe('    参见：posix-servers lab time-wait');
  });
});

describe('check against servers that keep their limit by making clients wait', () => {
  let server: Homework | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  const peers = {
    tcpserver: needs('tcpserver', "check's verdicts on a limit that makes clients wait, against tcpserver -c 2"),
    socat: needs('socat', "check's verdicts on a limit that makes clients wait, against socat max-children=2"),
  };
  describe.each<[string, keyof typeof peers, string[]]>([
    ['tcpserver -c 2 (ucspi-tcp)', 'tcpserver', ['-RHl0', '-c', '2', '127.0.0.1', '0', 'cat']],
    ['socat max-children=2', 'socat', ['TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,max-children=2', 'EXEC:cat']],
  ])('%s', (_label, program, args) => {
    peers[program].test(
      'described as waiting: --when-full refuse (the default) fails it saying so, --when-full wait passes it',
      async () => {
        server = await external(program, args);
        // No claim: concurrent, two at a time, the third waits for a place.
        const free = await runChecks({ host: '127.0.0.1', port: server.port, only: ['concurrency'] });
        const c = resultOf(free, 'concurrency');
        expect(c).toMatchObject({ status: 'pass', verdict: 'concurrent', servedAtOnce: 2 });
        expect(c.seen.en).toBe(
          'concurrent, at most 2 at once: 2 of 3 clients served while all were connected; client 3 waited until one left, then was served — a limit that makes clients wait',
        );
        expect(c.seen.zh).toBe(
          'concurrent，最多同时 2 个：所有客户端都连接时有 2/3 个得到服务；客户端 3 一直等到有客户端离开才得到服务 —— 用让客户端等待的方式保持上限',
        );

        const refuse = await runChecks({ host: '127.0.0.1', port: server.port, pid: server.pid, maxClients: 2 });
        expect(statusOf(refuse.results)).toEqual({
          echo: 'pass',
          'half-close': 'pass',
          concurrency: 'pass',
          vanish: 'pass',
          'max-clients': 'fail',
          zombies: 'pass',
          resources: 'pass',
        });
        const m = resultOf(refuse, 'max-clients');
        expect(m.whenFull).toBe('waited');
        // Never "a new client was NOT served": the waiting client was served once one left.
        expect(m.seen.en).toMatch(
          /^2 of 2 clients served at once; client 3: connected, but not accepted: it waited in the listen backlog \(accept queue 1, \/proc\/net\/tcp\); after one left, it was served$/,
        );
        expect(m.seen.zh).toMatch(
          /^2 个客户端中有 2 个同时得到服务；第 3 个：已连接但没有被 accept：它在监听队列里等待（accept 队列 1，\/proc\/net\/tcp）；一个离开后，它得到了服务$/,
        );
        expect(m.diagnosis).toMatchObject({ id: 'waits-when-full', lab: 'slot-table' });
        expect(m.diagnosis!.text.en).toContain(
          'this server keeps its limit by making client 3 wait until one leaves, as tcpserver -c and socat max-children do',
        );
        expect(m.diagnosis!.text.zh).toContain('这个服务器用让第 3 个客户端等到有人离开的方式保持上限');

        const wait = await runChecks({
          host: '127.0.0.1',
          port: server.port,
          pid: server.pid,
          maxClients: 2,
          whenFull: 'wait',
          strict: true,
        });
        expect(wait.results.filter((r) => r.status !== 'pass')).toEqual([]);
        expect(resultOf(wait, 'max-clients').whenFull).toBe('waited');
        expect(wait.exitCode).toBe(0);
      },
    );
  });

  test("this package's prefork pool of 2 (no maxClients): client 3 waits in the backlog, as --when-full wait claims", async () => {
    const pool = await startServer({ model: 'prefork', workers: 2 });
    try {
      const report = await runChecks({
        host: '127.0.0.1',
        port: pool.address()!.port,
        pid: pool.pid,
        maxClients: 2,
        whenFull: 'wait',
        only: ['max-clients'],
      });
      expect(resultOf(report, 'max-clients')).toMatchObject({ status: 'pass', whenFull: 'waited' });
    } finally {
      await pool.close({ timeoutMs: 0 });
    }
  });
});

describe('check against broken servers: each fails the check that names its mistake', () => {
  let server: PosixServer | undefined;
  afterEach(async () => {
    await server?.close({ timeoutMs: 0 });
    server = undefined;
  });

  test("fork with reap: 'none' (no SIGCHLD handler): zombies fail, and only zombies", async () => {
    // maxClients well above what the checks use: unreaped children keep their place in the child
    // table, so with a small limit the zombies would also make later clients be refused.
    server = await startServer({ model: 'fork', reap: 'none' });
    const report = await runChecks({ host: '127.0.0.1', port: server.address()!.port, pid: server.pid });
    expect(statusOf(report.results)).toEqual({
      echo: 'pass',
      'half-close': 'pass',
      concurrency: 'pass',
      vanish: 'pass',
      'max-clients': 'skip',
      zombies: 'fail',
      resources: 'pass',
    });
    expect(resultOf(report, 'zombies').seen.en).toMatch(/children of \d+ in state Z/);
  });

  test("thread with threadArg: 'shared-cfd' (the &cfd race): concurrency fails, a client is never served", async () => {
    server = await startServer({ model: 'thread', threadArg: 'shared-cfd', labHoldMs: 300 });
    // No --pid: this server's threads live in the test's own process.
    const report = await runChecks({ host: '127.0.0.1', port: server.address()!.port });
    const concurrency = resultOf(report, 'concurrency');
    expect(concurrency.status).toBe('fail');
    expect(concurrency.verdict).toBe('broken');
    // Two workers on one client: the other is never answered, or closed unanswered when the second
    // worker closes the descriptor they share.
    expect(concurrency.seen.en).toMatch(
      /(never got (its|their) own line back|closed by the server without (its line|their lines) back)/,
    );
    expect(concurrency.diagnosis!.id).toBe('clients-lost');
    expect(statusOf(report.results)).toMatchObject({ echo: 'pass', 'half-close': 'pass' });
  });

  test("the lecture's fix 1 (lab-nonblocking: one cfd variable): concurrency fails, one process seen, and the lost descriptor stays open", async () => {
    const p = await startProgram('lab-nonblocking', programBinary('labs', 'nonblocking'), []);
    try {
      const report = await runChecks({ host: '127.0.0.1', port: p.port, pid: p.pid });
      const c = resultOf(report, 'concurrency');
      expect(c).toMatchObject({ status: 'fail', verdict: 'broken' });
      expect(c.diagnosis).toMatchObject({ id: 'one-cfd', lab: 'nonblocking' });
      expect(c.diagnosis!.text.en).toContain(`pid ${p.pid} is one process with one thread serving every client itself`);
      expect(statusOf(report.results)).toMatchObject({ echo: 'pass', zombies: 'pass', resources: 'fail' });
      // The first client's descriptor, overwritten in cfd, is never closed: a leak /proc shows.
      const r = resultOf(report, 'resources');
      expect(r.seen.en).toMatch(/^descriptors (\d+) → (?!\1)\d+,/);
      expect(r.diagnosis!.text.en).toMatch(/descriptors more than before: a client's cfd is not closed when it leaves/);
    } finally {
      await p.close();
    }
  });

  test('fix 1 even when every line was already waiting at accept(): the second round, all connected, fails', async () => {
    const p = await startProgram('lab-nonblocking', programBinary('labs', 'nonblocking'), []);
    try {
      // Stopped, it accepts nobody: the kernel completes the handshakes and queues the lines, and
      // once it runs again each accept() finds its client's line waiting and answers it.
      process.kill(p.pid, 'SIGSTOP');
      const resumed = sleep(300).then(() => process.kill(p.pid, 'SIGCONT'));
      const report = await runChecks({ host: '127.0.0.1', port: p.port, only: ['concurrency'] });
      await resumed;
      expect(statusOf(report.results)).toEqual({
        echo: 'skip',
        'half-close': 'skip',
        concurrency: 'fail',
        vanish: 'skip',
        'max-clients': 'skip',
        zombies: 'skip',
        resources: 'skip',
      });
      const r = resultOf(report, 'concurrency');
      expect(r.verdict).toBe('broken');
      expect(r.seen.en).toMatch(/each client got its first line back, but clients 1, 2 got no second one/);
    } finally {
      process.kill(p.pid, 'SIGCONT');
      await p.close();
    }
  });

  test("not an echo server (the rpc handler, as UNP's ch. 30 servers): no client gets a byte, and no &cfd is guessed", async () => {
    server = await startServer({ model: 'fork', handler: 'rpc' });
    const report = await runChecks({ host: '127.0.0.1', port: server.address()!.port, pid: server.pid });
    expect(statusOf(report.results)).toMatchObject({ echo: 'fail', concurrency: 'fail' });
    const c = resultOf(report, 'concurrency');
    expect(c.diagnosis!.id).toBe('no-echo');
    expect(c.diagnosis!.text.en).toBe(
      'none of the 3 clients got a single byte back: this server does not echo what it is sent, so its concurrency cannot be judged by echoes',
    );
    expect(JSON.stringify(report.results.map((r) => [r.seen, r.diagnosis]))).not.toMatch(/&cfd|INFO\[/);
  });

  test('a claimed limit the server does not keep: max-clients fails', async () => {
    server = await startServer({ model: 'thread', maxClients: 20 });
    const report = await runChecks({ host: '127.0.0.1', port: server.address()!.port, maxClients: 3 });
    const r = resultOf(report, 'max-clients');
    expect(r).toMatchObject({ status: 'fail', whenFull: 'served' });
    expect(r.seen.en).toMatch(/client 4: served, like the first 3$/);
    expect(r.diagnosis!.id).toBe('limit-not-kept');
  });

  test('a server that refuses when full, checked with --when-full wait: max-clients fails, saying it refused', async () => {
    server = await startServer({ model: 'thread', maxClients: 2 });
    const report = await runChecks({
      host: '127.0.0.1',
      port: server.address()!.port,
      maxClients: 2,
      whenFull: 'wait',
      only: ['max-clients'],
    });
    const r = resultOf(report, 'max-clients');
    expect(r).toMatchObject({ status: 'fail', whenFull: 'refused' });
    expect(r.seen.en).toMatch(
      /client 3: refused — closed by the server without an answer; after one left, a new client was served$/,
    );
    expect(r.diagnosis!.id).toBe('refuses-when-full');
  });
});

test('every lab a diagnosis points to exists', () => {
  const labs = LABS.map((l) => l.name);
  for (const [id, d] of Object.entries(DIAGNOSES) as Array<[DiagnosisId, { lab?: string }]>) {
    if (d.lab !== undefined) expect([id, labs.includes(d.lab)]).toEqual([id, true]);
  }
});

describe('posix-servers check on the command line', () => {
  function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
    const child = spawn(process.execPath, [CLI, 'check', ...args]);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    return new Promise((resolve) => child.once('close', (code) => resolve({ code, out, err })));
  }

  test('exit 0 when all pass, each check naming its lecture point; exit 1 with the failed check marked', async () => {
    const ref = await startReference('fork');
    try {
      const ok = await run([`127.0.0.1:${ref.port}`, '--pid', String(ref.pid)]);
      expect(ok.code).toBe(0);
      expect(ok.out).toMatch(/^✓ zombies: pass — point 7, homework 1/m);
      expect(ok.out).toMatch(/^SKIPPED max-clients: needs --max-clients N$/m);
      expect(ok.out).toMatch(/^PASSED: 6 of 6 checks passed; SKIPPED: max-clients/m);
      const strict = await run([`127.0.0.1:${ref.port}`, '--pid', String(ref.pid), '--strict', '--json']);
      expect(strict.code).toBe(1);
      const json = JSON.parse(strict.out);
      expect(json).toMatchObject({ outcome: 'failed', exitCode: 1, strictFailed: ['max-clients'] });
      expect(json.results.find((r: { name: string }) => r.name === 'zombies')).toMatchObject({ status: 'pass' });
    } finally {
      await ref.close();
    }
    const server = await startServer({ model: 'fork', reap: 'none' });
    try {
      const bad = await run([`127.0.0.1:${server.address()!.port}`, '--pid', String(server.pid), '--lang', 'zh']);
      expect(bad.code).toBe(1);
      expect(bad.out).toMatch(/^✗ zombies: 失败 — 第 7 点/m);
      expect(bad.out).toMatch(/^ {4}参见：posix-servers lab zombies$/m);
      expect(bad.out).toMatch(/^未通过：.*失败：zombies/m);
    } finally {
      await server.close({ timeoutMs: 0 });
    }
  });

  test('nothing listening: one line, exit 2', async () => {
    const port = await freePort();
    const r = await run([`127.0.0.1:${port}`]);
    expect(r).toEqual({ code: 2, out: `✗ nothing is listening on 127.0.0.1:${port}\n`, err: '' });
    const json = await run([`127.0.0.1:${port}`, '--json', '--lang', 'zh']);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.out)).toEqual({
      target: `127.0.0.1:${port}`,
      outcome: 'no-server',
      exitCode: 2,
      failure: `127.0.0.1:${port} 上没有程序在监听`,
      results: [],
    });
  });

  test('bad arguments: one line on stderr naming what is wrong, exit 2 (no verdict)', async () => {
    const listener = createServer();
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    const port = (listener.address() as { port: number }).port;
    try {
      for (const [args, message] of [
        [[], /which server\?/],
        [['localhost'], /HOST:PORT/],
        [['127.0.0.1:0'], /PORT must be from 1 to 65535/],
        [['127.0.0.1:9', '--pid', 'x'], /--pid must be an integer/],
        [['127.0.0.1:9', '--frob'], /unknown flag '--frob'/],
        [['127.0.0.1:9', '--when-full', 'wait'], /--when-full needs --max-clients N/],
        [['127.0.0.1:9', '--max-clients', '2', '--when-full', 'maybe'], /--when-full must be one of refuse, wait/],
        [['127.0.0.1:9', '--require', 'iterative'], /--require must be one of concurrent/],
        [['local host:9'], /"host" option must be a numeric IPv4 or IPv6 address or a host name/],
        // A process that does not hold the listening socket: no verdict on anyone.
        [[`127.0.0.1:${port}`, '--pid', '1'], /--pid 1: (that process does not hold the listening socket|no such process)/],
      ] as Array<[string[], RegExp]>) {
        const r = await run(args);
        expect([args, r.code]).toEqual([args, 2]);
        expect(r.err.trim().split('\n')).toHaveLength(1);
        expect(r.err).toMatch(message);
      }
    } finally {
      await new Promise((r) => listener.close(r));
    }
  });

  test('parseTarget and parseCheckArgs', () => {
    expect(parseTarget('127.0.0.1:9000')).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(parseTarget('[::1]:9000')).toEqual({ host: '::1', port: 9000 });
    expect(
      parseCheckArgs([
        '[::1]:80',
        '--max-clients=100',
        '--when-full',
        'wait',
        '--pid',
        '42',
        '--json',
        '--strict',
        '--require',
        'concurrent',
      ]),
    ).toMatchObject({
      host: '::1',
      port: 80,
      maxClients: 100,
      whenFull: 'wait',
      pid: 42,
      json: true,
      strict: true,
      require: 'concurrent',
    });
    expect(parseCheckArgs(['127.0.0.1:80'])).not.toHaveProperty('whenFull');
  });
});
