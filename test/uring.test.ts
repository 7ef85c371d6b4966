// The uring model's own: what io_uring does that epoll does not (multishot requests armed once,
// completions reaped in batches, a receive cancelled for backpressure), where it is refused (no
// io_uring in the kernel, a seccomp filter, kernel.io_uring_disabled, a kernel before 5.19) and
// that a refusal leaves nothing behind, and that Node killed with a ring full of requests leaves
// nothing either. What every model does is in the shared suites (behaviour, lifecycle, …).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PosixServer, TraceEvent, startServer } from '../lib';
import { uringAdvice, UringFacts } from '../lib/server/uring';
import { runLoad } from '../lib/bench/loadgen';
import { uringCompletion, uringEnter } from '../lib/trace/uring';
import { Client, isAlive, listenQueue, port, portIsFree, random, readBytes, sleep, waitFor } from './helpers';

jest.setTimeout(60000);

let server: PosixServer | undefined;
afterEach(async () => {
  await server?.close({ timeoutMs: 0 });
  server = undefined;
});

function traced(s: PosixServer): TraceEvent[] {
  const out: TraceEvent[] = [];
  s.on('trace', (t) => out.push(t));
  return out;
}

const cqes = (trace: TraceEvent[], op: string, id: number) =>
  trace.filter((t) => t.call === 'uring-cqe' && t.id === id).filter((t) => uringCompletion(t).op === op);

describe('requests armed once, completions reaped in batches', () => {
  test('multishot: one receive armed for a connection serves all its messages; one io_uring_enter per turn', async () => {
    server = await startServer({ model: 'uring', trace: true });
    const trace = traced(server);
    const c = await Client.open(port(server));
    const messages = 40;
    for (let i = 0; i < messages; i++) expect((await c.echo(`message ${i}`)).toString()).toBe(`message ${i}`);
    c.end();
    await c.closedByPeer();
    await waitFor(() => trace.some((t) => t.call === 'close-conn'), 5000, 'the close');
    const arms = trace.filter((t) => t.call === 'uring-arm' && t.id === 1);
    expect(arms.map((t) => t.result)).toEqual([2]); // one multishot receive, never re-armed
    const recvs = cqes(trace, 'recv', 1).map(uringCompletion);
    // Each message completed the same request (MORE), and the client's EOF ended it.
    expect(recvs.slice(0, -1).every((r) => r.more && r.res > 0)).toBe(true);
    expect(recvs[recvs.length - 1]).toEqual({ op: 'recv', res: 0, more: false });
    expect(recvs.slice(0, -1).reduce((n, r) => n + r.res, 0)).toBe(server.stats().bytesIn);
    expect(cqes(trace, 'send', 1).length).toBeGreaterThanOrEqual(messages);
    // No syscall of its own per message: every completion came back from an io_uring_enter, which
    // handed over the sends and collected the receives (at 1 connection: two per message).
    const enters = trace.filter((t) => t.call === 'io_uring_enter').map(uringEnter);
    const completions = enters.reduce((n, e) => n + e.completions, 0);
    expect(completions).toBe(trace.filter((t) => t.call === 'uring-cqe').length);
    expect(enters.length).toBeLessThanOrEqual(2 * messages + 10);
  });

  test('single-shot (uringReceive single): a receive per message, armed again once the echo is out', async () => {
    server = await startServer({ model: 'uring', uringReceive: 'single', trace: true });
    const trace = traced(server);
    const c = await Client.open(port(server));
    for (let i = 0; i < 20; i++) expect((await c.echo(`message ${i}`)).toString()).toBe(`message ${i}`);
    c.end();
    await c.closedByPeer();
    await waitFor(() => trace.some((t) => t.call === 'close-conn'), 5000, 'the close');
    // The first arm is recorded (kind 3: single-shot), the 20 re-arms are not; each completion ends its request.
    expect(trace.filter((t) => t.call === 'uring-arm' && t.id === 1).map((t) => t.result)).toEqual([3]);
    const recvs = cqes(trace, 'recv', 1).map(uringCompletion);
    expect(recvs).toHaveLength(21);
    expect(recvs.every((r) => !r.more)).toBe(true);
  });

  test('many connections: a turn collects the completions of several clients at once', async () => {
    server = await startServer({ model: 'uring', trace: true });
    const trace = traced(server);
    // The native load generator: 50 connections in a closed loop, each with a message in flight.
    const r = await runLoad({ port: port(server), mode: 'pingpong', connections: 50, size: 64, durationMs: 200 });
    expect(r.messages).toBeGreaterThan(0);
    await waitFor(() => server!.stats().active === 0, 5000, 'the load to be gone');
    const enters = trace.filter((t) => t.call === 'io_uring_enter').map(uringEnter);
    const completions = enters.reduce((n, e) => n + e.completions, 0);
    // More completions than calls: io_uring_enter returned several at once, again and again.
    expect(completions).toBeGreaterThan(enters.length);
    expect(Math.max(...enters.map((e) => e.completions))).toBeGreaterThan(1);
    expect(Math.max(...enters.map((e) => e.submitted))).toBeGreaterThan(1);
  });
});

describe('backpressure and the end of a connection', () => {
  test('a client that stops reading: its multishot receive is cancelled, and armed again once it reads', async () => {
    server = await startServer({ model: 'uring', trace: true });
    const trace = traced(server);
    const p = port(server);
    const stuck = connect(p, '127.0.0.1');
    await new Promise((resolve) => stuck.once('connect', resolve));
    stuck.pause();
    const payload = random(8 << 20);
    stuck.write(payload);
    await waitFor(() => trace.some((t) => t.call === 'uring-cancel' && t.result === 1), 10000, 'the cancel');
    expect((await readBytes(stuck, payload.length)).equals(payload)).toBe(true);
    // Re-armed (kind 2, 0x100: again), its last one having ended as cancelled.
    const rearm = trace.find((t) => t.call === 'uring-arm' && t.result === 0x102);
    expect(rearm).toMatchObject({ errno: 'ECANCELED', id: 1 });
    stuck.destroy();
  });

  test('a connection ends only when the ring holds none of its requests: the idle one is cancelled, then closed', async () => {
    server = await startServer({ model: 'uring', idleTimeoutMs: 200, trace: true });
    const trace = traced(server);
    const gone: string[] = [];
    server.on('disconnect', (d) => gone.push(d.reason));
    const c = await Client.open(port(server));
    await c.echo('hello');
    await c.closedByPeer(3000);
    await waitFor(() => gone.length === 1, 3000, 'the disconnect');
    expect(gone).toEqual(['idle']);
    const cancel = trace.findIndex((t) => t.call === 'uring-cancel' && t.result === 2 && t.id === 1);
    const ended = trace.findIndex((t) => t.call === 'uring-cqe' && t.id === 1 && uringCompletion(t).res === -125);
    const closed = trace.findIndex((t) => t.call === 'close-conn' && t.id === 1);
    expect(cancel).toBeGreaterThanOrEqual(0);
    expect(ended).toBeGreaterThan(cancel); // the receive's last completion: ECANCELED
    expect(closed).toBeGreaterThan(ended); // and only then close(cfd)
  });
});

describe("whenFull 'wait': nothing accepted beyond maxClients", () => {
  test('the accept is single-shot and armed only while a slot is free; full, lfd is polled for its hang-up alone, and close() closes it at once', async () => {
    server = await startServer({ model: 'uring', maxClients: 2, whenFull: 'wait', trace: true });
    const trace = traced(server);
    const p = port(server);
    const listenerArms = () =>
      trace.filter((t) => t.call === 'uring-arm' && [1, 4, 5, 6].includes(t.result % 256)).map((t) => t.result);
    const a = await Client.open(p);
    const b = await Client.open(p);
    expect((await a.echo('a')).toString()).toBe('a');
    expect((await b.echo('b')).toString()).toBe('b');
    const c = await Client.open(p);
    c.sock.write('c');
    await waitFor(() => listenQueue(p).queued === 1, 5000, 'the third client in the listen backlog');
    expect(await c.silentFor(200)).toBe(true);
    // The first arm (kind 5: single-shot) is recorded, the re-arm after the first client is not;
    // once full, the hang-up poll (kind 6) and no accept.
    await waitFor(() => listenerArms().length >= 2, 3000, 'the records of the arms'); // events come up to 10 ms later
    expect(listenerArms()).toEqual([5, 6]);
    a.end();
    await a.closedByPeer(5000);
    expect((await c.read(1, 5000)).toString()).toBe('c');
    await waitFor(() => listenerArms().length >= 3, 3000, 'the record of the arm after the server was full');
    expect(listenerArms()).toEqual([5, 6, 0x100 | 5]); // accepting again after the server was full
    expect(server.stats()).toMatchObject({ accepted: 3, rejected: 0 });
    // Full again (b and c): close() frees the listener at once, while both are still served.
    const closing = server.close({ timeoutMs: 5000 });
    await waitFor(() => trace.some((t) => t.call === 'close-lfd'), 3000, 'close(lfd)');
    expect((await b.echo('still b')).toString()).toBe('still b');
    b.end();
    c.end();
    await closing;
    server = undefined;
  });
});

// ---- Where io_uring is off: each refusal forced, in a process of its own ----

const FIXTURES = join(__dirname, 'fixtures');
let seccompExec = '';
let workDir = '';

beforeAll(() => {
  // A small C program that installs a seccomp filter and execs (test/fixtures/seccomp-exec.c).
  workDir = mkdtempSync(join(tmpdir(), 'posix-servers-uring-'));
  seccompExec = join(workDir, 'seccomp-exec');
  execFileSync('cc', ['-O2', '-o', seccompExec, join(FIXTURES, 'seccomp-exec.c')]);
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

interface Refusal {
  error: { name: string; code: string; errno: number; syscall: string; message: string } | null;
  before: { fds: number; tasks: number };
  after: { fds: number; tasks: number };
  echoed: string;
  uid: number;
}

function refusal(prefix: string[], options: object = {}, spawnOptions: { uid?: number; gid?: number } = {}): Refusal {
  const script = join(FIXTURES, 'uring-refusal.js');
  const [command, ...args] = [...prefix, process.execPath, script, JSON.stringify(options)];
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 30000, ...spawnOptions });
  if (r.status !== 0) throw new Error(`the fixture failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Refusal;
}

function expectNothingLeft(r: Refusal): void {
  expect(r.after).toEqual(r.before); // no descriptor (ring, listener, pipe) and no thread left
  expect(r.echoed).toBe('epoll still works');
}

describe('refused where io_uring is off: the syscall’s code, which cause, what to do; nothing left', () => {
  const ENOSYS = 38;
  const EPERM = 1;
  const EINVAL = 22;
  const IORING_REGISTER_PBUF_RING = 22;

  test('no io_uring in the kernel (io_uring_setup answers ENOSYS, as without CONFIG_IO_URING or under qemu-user)', () => {
    const r = refusal([seccompExec, String(ENOSYS), '0', '0', '--']);
    expect(r.error).toMatchObject({ name: 'Error', code: 'ENOSYS', errno: -ENOSYS, syscall: 'io_uring_setup' });
    expect(r.error!.message).toMatch(
      /^io_uring_setup ENOSYS: function not implemented \(model 'uring': this kernel has no io_uring/,
    );
    expect(r.error!.message).toContain("or use model 'epoll'");
    expectNothingLeft(r);
  });

  test("a seccomp filter like Docker's default profile (io_uring_setup answers EPERM)", () => {
    const r = refusal([seccompExec, String(EPERM), '0', '0', '--']);
    expect(r.error).toMatchObject({ code: 'EPERM', errno: -EPERM, syscall: 'io_uring_setup' });
    expect(r.error!.message).toContain('a seccomp filter of this process refuses io_uring_setup');
    expect(r.error!.message).toContain('allows io_uring_setup, io_uring_enter and io_uring_register');
    expectNothingLeft(r);
  });

  test('a kernel before 5.19: no provided-buffer rings, no multishot accept (IORING_REGISTER_PBUF_RING answers EINVAL)', () => {
    const r = refusal([seccompExec, '0', String(IORING_REGISTER_PBUF_RING), String(EINVAL), '--']);
    expect(r.error).toMatchObject({ code: 'EINVAL', errno: -EINVAL, syscall: 'io_uring_register' });
    expect(r.error!.message).toContain("this kernel's io_uring is older than Linux 5.19");
    expectNothingLeft(r);
  });

  // kernel.io_uring_disabled is the machine's, not the process's: set to 1 it refuses only
  // processes without CAP_SYS_ADMIN (outside kernel.io_uring_group), so the other tests, run as
  // root, are not disturbed while a child runs as nobody. (2 refuses everyone: uringAdvice below.)
  const SYSCTL = '/proc/sys/kernel/io_uring_disabled';
  const canSet = (() => {
    try {
      return process.getuid!() === 0 && existsSync(SYSCTL) && readFileSync(SYSCTL, 'utf8').trim() === '0';
    } catch {
      return false;
    }
  })();
  (canSet ? test : test.skip)('kernel.io_uring_disabled = 1, a process without CAP_SYS_ADMIN (EPERM)', () => {
    writeFileSync(SYSCTL, '1');
    let r: Refusal;
    try {
      r = refusal([], {}, { uid: 65534, gid: 65534 });
    } finally {
      writeFileSync(SYSCTL, '0');
    }
    expect(r.uid).toBe(65534);
    expect(r.error).toMatchObject({ code: 'EPERM', errno: -EPERM, syscall: 'io_uring_setup' });
    expect(r.error!.message).toContain('kernel.io_uring_disabled is 1: only processes with CAP_SYS_ADMIN');
    expectNothingLeft(r);
  });

  test('what each cause is told (uringAdvice)', () => {
    const facts: UringFacts = { built: true, disabled: 0, group: -1, seccomp: 0 };
    expect(uringAdvice('EPERM', 'io_uring_setup', { ...facts, disabled: 2 })).toMatch(
      /^kernel.io_uring_disabled is 2: io_uring is off for every process\. As root: sysctl -w kernel.io_uring_disabled=0, or use model 'epoll'/,
    );
    expect(uringAdvice('EPERM', 'io_uring_setup', { ...facts, disabled: 1, group: 1001 })).toContain(
      'or in group 1001 may create an io_uring. Add this user to that group',
    );
    expect(uringAdvice('EPERM', 'io_uring_setup', facts)).toMatch(/^a security policy \(a seccomp filter, an LSM\) refuses/);
    expect(uringAdvice('ENOSYS', 'io_uring_setup', { ...facts, built: false })).toMatch(
      /^this build of posix-servers has no io_uring: .* linux-libc-dev\) and run npm rebuild posix-servers --build-from-source/,
    );
    expect(uringAdvice('EINVAL', 'io_uring_setup', facts)).toContain('older than Linux 5.19');
    expect(uringAdvice('ENOMEM', 'io_uring_setup', facts)).toBeNull();
  });
});

test('Node killed (SIGKILL) with requests in the ring: the client is closed and the port freed within 2 s', async () => {
  const node = spawn(process.execPath, [join(FIXTURES, 'server-then-wait.js'), 'uring'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    let out = '';
    node.stdout.setEncoding('utf8');
    node.stdout.on('data', (d: string) => (out += d));
    await waitFor(() => out.includes('\n'), 10000, 'the server to start');
    const { port: p } = JSON.parse(out.split('\n')[0]) as { port: number };
    // One client served, one that stops reading: a multishot receive and a blocked send in flight.
    const c = await Client.open(p);
    await c.echo('hello');
    const stuck = connect(p, '127.0.0.1');
    // Its server dies with its bytes unread: the kernel resets the connection (ECONNRESET), and
    // Node reports that on a write still in progress.
    stuck.on('error', () => undefined);
    await new Promise((resolve) => stuck.once('connect', resolve));
    stuck.pause();
    stuck.write(random(8 << 20));
    await sleep(200);
    node.kill('SIGKILL');
    const t0 = Date.now();
    await waitFor(() => !isAlive(node.pid!), 2000, 'Node to die');
    await c.closedByPeer(2000);
    while (!(await portIsFree(p))) {
      if (Date.now() - t0 > 2000) throw new Error('port still busy after 2 s');
      await sleep(20);
    }
    stuck.destroy();
  } finally {
    node.kill('SIGKILL');
  }
});
