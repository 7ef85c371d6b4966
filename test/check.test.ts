// posix-servers check: it passes every good server — this package's models, the C references —
// and fails each broken one on the check that names its mistake.
import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { join } from 'node:path';
import { CheckName, CheckResult, runChecks } from '../lib/check/checks';
import { parseCheckArgs, parseTarget } from '../lib/cli/check';
import { programBinary, REFERENCE_MODELS, startProgram, startReference } from '../lib/bench/reference';
import { MODELS, startServer } from '../lib';
import type { PosixServer } from '../lib';
import { sleep, waitFor } from './helpers';

const CLI = join(__dirname, '..', 'dist', 'cli', 'main.js');
const MAX = 5;

const statusOf = (results: CheckResult[]) =>
  Object.fromEntries(results.map((r) => [r.name, r.status])) as Record<CheckName, string>;

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
      const results = await runChecks(
        { host: '127.0.0.1', port: s.port, pid: s.pid, ...(iterative ? {} : { maxClients: MAX }) },
        (l) => lines.push(l),
      );
      expect(results.filter((r) => r.status === 'fail')).toEqual([]); // shows what was seen
      expect(statusOf(results)).toEqual({
        echo: 'pass',
        'half-close': 'pass',
        concurrency: 'pass',
        vanish: 'pass',
        'max-clients': iterative ? 'skip' : 'pass',
        zombies: 'pass',
        resources: 'pass',
      });
      expect(results.find((r) => r.name === 'concurrency')!.verdict).toBe(iterative ? 'iterative' : 'concurrent');
      expect(lines.at(-1)).toBe(iterative ? '6 of 6 checks passed (1 skipped)' : '7 of 7 checks passed');
    } finally {
      await stop(s);
    }
  });
});

describe.each(REFERENCE_MODELS)('check against the C reference ref-%s', (model) => {
  test('every check that applies passes', async () => {
    // The pools get enough processes for the concurrency check's clients (a prefork child serves one).
    const ref = await startReference(
      model,
      model === 'prefork' || model === 'reuseport' || model === 'prethread' ? { workers: MAX + 3 } : {},
    );
    try {
      const results = await runChecks({ host: '127.0.0.1', port: ref.port, pid: ref.pid });
      expect(results.filter((r) => r.status === 'fail')).toEqual([]);
      expect(statusOf(results)['max-clients']).toBe('skip'); // the references claim no limit
      expect(results.find((r) => r.name === 'concurrency')!.verdict).toBe(model === 'iterative' ? 'iterative' : 'concurrent');
    } finally {
      await ref.close();
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
    const results = await runChecks({ host: '127.0.0.1', port: server.address()!.port, pid: server.pid });
    expect(statusOf(results)).toEqual({
      echo: 'pass',
      'half-close': 'pass',
      concurrency: 'pass',
      vanish: 'pass',
      'max-clients': 'skip',
      zombies: 'fail',
      resources: 'pass',
    });
    expect(results.find((r) => r.name === 'zombies')!.seen).toMatch(/children of \d+ in state Z/);
  });

  test("thread with threadArg: 'shared-cfd' (the &cfd race): concurrency fails, a client is never served", async () => {
    server = await startServer({ model: 'thread', threadArg: 'shared-cfd', labHoldMs: 300 });
    // No --pid: this server's threads live in the test's own process.
    const results = await runChecks({ host: '127.0.0.1', port: server.address()!.port });
    const concurrency = results.find((r) => r.name === 'concurrency')!;
    expect(concurrency.status).toBe('fail');
    expect(concurrency.verdict).toBe('broken');
    expect(concurrency.seen).toMatch(/never got (its|their) own line back/);
    expect(statusOf(results)).toMatchObject({ echo: 'pass', 'half-close': 'pass' });
  });

  test("the lecture's fix 1 (lab-nonblocking: one cfd variable): concurrency fails, and the lost descriptor stays open", async () => {
    const p = await startProgram('lab-nonblocking', programBinary('labs', 'nonblocking'), []);
    try {
      const results = await runChecks({ host: '127.0.0.1', port: p.port, pid: p.pid });
      expect(results.find((r) => r.name === 'concurrency')).toMatchObject({ status: 'fail', verdict: 'broken' });
      expect(statusOf(results)).toMatchObject({ echo: 'pass', zombies: 'pass', resources: 'fail' });
      // The first client's descriptor, overwritten in cfd, is never closed: a leak /proc shows.
      expect(results.find((r) => r.name === 'resources')!.seen).toMatch(/^descriptors (\d+) → (?!\1)\d+,/);
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
      const results = await runChecks({ host: '127.0.0.1', port: p.port, only: ['concurrency'] });
      await resumed;
      expect(statusOf(results)).toEqual({
        echo: 'skip',
        'half-close': 'skip',
        concurrency: 'fail',
        vanish: 'skip',
        'max-clients': 'skip',
        zombies: 'skip',
        resources: 'skip',
      });
      const r = results.find((x) => x.name === 'concurrency')!;
      expect(r.verdict).toBe('broken');
      expect(r.seen).toMatch(/each client got its first line back, but clients 1, 2 got no second one/);
    } finally {
      process.kill(p.pid, 'SIGCONT');
      await p.close();
    }
  });

  test('a claimed limit the server does not keep: max-clients fails', async () => {
    server = await startServer({ model: 'thread', maxClients: 20 });
    const results = await runChecks({ host: '127.0.0.1', port: server.address()!.port, maxClients: 3 });
    const r = results.find((x) => x.name === 'max-clients')!;
    expect(r.status).toBe('fail');
    expect(r.seen).toMatch(/client 4: still open after \d+ ms, not refused/);
  });
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
      expect(ok.out).toMatch(/^6 of 6 checks passed \(1 skipped\)$/m);
    } finally {
      await ref.close();
    }
    const server = await startServer({ model: 'fork', reap: 'none' });
    try {
      const bad = await run([`127.0.0.1:${server.address()!.port}`, '--pid', String(server.pid), '--lang', 'zh']);
      expect(bad.code).toBe(1);
      expect(bad.out).toMatch(/^✗ zombies: 失败 — 第 7 点/m);
      expect(bad.out).toMatch(/失败：zombies/);
    } finally {
      await server.close({ timeoutMs: 0 });
    }
  });

  test('bad arguments: one line on stderr naming what is wrong, exit 1', async () => {
    for (const [args, message] of [
      [[], /which server\?/],
      [['localhost'], /HOST:PORT/],
      [['127.0.0.1:0'], /PORT must be from 1 to 65535/],
      [['127.0.0.1:9', '--pid', 'x'], /--pid must be an integer/],
      [['127.0.0.1:9', '--frob'], /unknown flag '--frob'/],
      [['local host:9'], /"host" option must be a numeric IPv4 or IPv6 address or a host name/],
      [[`127.0.0.1:9`, '--pid', String(process.pid)], /does not hold the listening socket of port 9/],
    ] as Array<[string[], RegExp]>) {
      const r = await run(args);
      expect(r.code).toBe(1);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(message);
    }
  });

  test('parseTarget and parseCheckArgs', () => {
    expect(parseTarget('127.0.0.1:9000')).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(parseTarget('[::1]:9000')).toEqual({ host: '::1', port: 9000 });
    expect(parseCheckArgs(['[::1]:80', '--max-clients=100', '--pid', '42', '--json'])).toMatchObject({
      host: '::1',
      port: 80,
      maxClients: 100,
      pid: 42,
      json: true,
    });
  });
});
