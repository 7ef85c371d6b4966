// Nothing leaks, nothing of Node's is disturbed, OS failures look like Node's own.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import cluster from 'node:cluster';
import { DisconnectEvent, Model, MODELS, PosixServer, ReapEvent, startServer } from '../lib';
import { readStat } from '../lib/util/proc';
import {
  Client,
  childrenOf,
  exchange,
  closeNet,
  isAlive,
  isPoolModel,
  listenNet,
  isProcessModel,
  optionsFor,
  port,
  portIsFree,
  snapshot,
  sleep,
  SUITE_WORKERS,
  waitFor,
  withVariants,
  zombiesOf,
} from './helpers';

describe.each(withVariants(MODELS))('%s model: after close() nothing is left', (_label, model, variant) => {
  test('no zombie, no extra fd, no extra thread, no child process, port free', async () => {
    // Warm up once so that lazily created Node internals are in the baseline.
    const warm = await startServer(optionsFor(model, variant));
    await exchange(port(warm), Buffer.from('warm'));
    await warm.close();

    const before = snapshot();
    const server = await startServer(optionsFor(model, variant));
    const p = port(server);
    await Promise.all(Array.from({ length: 10 }, (_, i) => exchange(p, Buffer.from(`short ${i}`))));
    // Connections still open at close(): the iterative model serves only one at a time.
    const heldCount = model === 'iterative' ? 1 : 3;
    const held = await Promise.all(Array.from({ length: heldCount }, () => Client.open(p)));
    for (const c of held) await c.echo('hi');
    expect(snapshot().fds).toBeGreaterThan(before.fds); // the clients' sockets, at least
    let members: number[] = [];
    if (model === 'fork') {
      const kids = childrenOf(server.pid).filter((c) => c.state !== 'Z');
      expect(kids.length).toBe(3); // one child per held connection
      expect(kids.every((k) => k.pgrp === server.pid)).toBe(true); // the master's own group
    }
    if (isPoolModel(model)) {
      const kids = childrenOf(server.pid).filter((c) => c.state !== 'Z');
      expect(kids.length).toBe(SUITE_WORKERS[model]); // the pool, however many connections
      expect(kids.every((k) => k.pgrp === server.pid)).toBe(true);
      members = kids.map((k) => k.pid);
    }
    if (model === 'cluster') expect(childrenOf(process.pid).length).toBe(before.children.length + 2); // two workers
    // Every native server has one thread more in Node's process: the one that drains its events.
    if (model === 'thread') expect(snapshot().tasks).toBeGreaterThanOrEqual(before.tasks + 5); // server + 3 workers + drain
    if (model === 'prethread') expect(snapshot().tasks).toBe(before.tasks + 2 + SUITE_WORKERS.prethread!); // server + the pool + drain
    if (model === 'epoll' || model === 'uring') expect(snapshot().tasks).toBe(before.tasks + 2); // one thread serves them all (+ drain)

    await server.close({ timeoutMs: 100 });
    for (const c of held) c.destroy();
    await sleep(20); // let Node release the client sockets we just destroyed

    expect(zombiesOf(process.pid)).toEqual([]);
    const after = snapshot();
    expect(after.fds).toBe(before.fds);
    expect(after.tasks).toBe(before.tasks);
    expect(after.children).toEqual(before.children);
    if (isProcessModel(model)) expect(isAlive(server.pid)).toBe(false);
    for (const pid of members) expect(isAlive(pid)).toBe(false);
    expect(await portIsFree(p)).toBe(true);
  });
});

// A client of a fixed port may connect before the code awaiting startServer() has resumed: its
// 'connection' arrives in the same batch as 'listening' and must still reach a listener added
// right after the await (the server holds such events for one turn of the event loop).
describe.each(MODELS)('%s model: events right after listening', (model) => {
  test('a client that connected before startServer() resolved is seen by the listeners added after it', async () => {
    const fixed = await listenNet();
    const p = (fixed.address() as { port: number }).port;
    await closeNet(fixed);
    // A separate process connects (retrying until the port listens), sends 'early', reads the echo.
    const client = spawn(process.execPath, [
      '-e',
      `const net = require('node:net'); const deadline = Date.now() + 10000;
       const go = () => { const s = net.connect(${p}, '127.0.0.1', () => s.write('early'));
         s.on('data', () => { s.end(); process.exit(0); });
         s.on('error', () => (Date.now() < deadline ? setTimeout(go, 5) : process.exit(1))); };
       go();`,
    ]);
    const exited = new Promise<number | null>((r) => client.once('exit', (code) => r(code)));
    const starting = startServer(optionsFor(model, { port: p }));
    // Node's thread sleeps while the server starts and the client connects: 'listening' and the
    // connection's events wait in the ring together (native models) and come in one drain.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
    const server = await starting;
    const connections: number[] = [];
    server.on('connection', (c) => connections.push(c.id));
    try {
      expect(await exited).toBe(0);
      await waitFor(() => server.stats().closed === 1, 5000, 'the early client closed');
      await sleep(50); // a drain or two after the counters
      expect(connections).toEqual([1]);
    } finally {
      client.kill();
      await server.close({ timeoutMs: 0 });
    }
  });
});

describe('fork model: processes and signals', () => {
  let server: PosixServer | undefined;
  afterEach(async () => {
    await server?.close({ timeoutMs: 0 });
    server = undefined;
  });

  test('each connection has its own child; reap events carry its pid and exit status', async () => {
    server = await startServer({ model: 'fork' });
    const connPids: number[] = [];
    const reaps: ReapEvent[] = [];
    server.on('connection', (c) => connPids.push(c.pid!));
    server.on('reap', (r) => reaps.push(r));
    const c = await Client.open(port(server));
    await c.echo('x');
    await waitFor(() => connPids.length === 1, 5000, 'connection event');
    const child = connPids[0];
    // The child is a real process, forked by the master, not by Node.
    expect(childrenOf(server.pid).map((k) => k.pid)).toContain(child);
    expect(childrenOf(process.pid).map((k) => k.pid)).not.toContain(child);
    c.end();
    await waitFor(() => reaps.length === 1, 5000, 'reap event');
    expect(reaps[0]).toEqual({ pid: child, id: 1, exitCode: 0, signal: null });
    expect(isAlive(child)).toBe(false);
    expect(zombiesOf(server.pid)).toEqual([]); // reaped by SIGCHLD + waitpid, not left as Z
  });

  test('a child killed by a signal is reaped and reported with that signal; the server serves on', async () => {
    server = await startServer({ model: 'fork' });
    const reaps: ReapEvent[] = [];
    const pids: number[] = [];
    server.on('connection', (c) => pids.push(c.pid!));
    server.on('reap', (r) => reaps.push(r));
    const c = await Client.open(port(server));
    await c.echo('x');
    await waitFor(() => pids.length === 1, 5000, 'connection');
    process.kill(pids[0], 'SIGKILL');
    await waitFor(() => reaps.length === 1, 5000, 'reap');
    expect(reaps[0]).toMatchObject({ pid: pids[0], exitCode: null, signal: 'SIGKILL' });
    expect((await exchange(port(server), Buffer.from('next'))).toString()).toBe('next');
  });

  test('accept() interrupted by SIGCHLD is retried and counted (eintrRetries > 0)', async () => {
    server = await startServer({ model: 'fork' });
    for (let i = 0; i < 30; i++) await exchange(port(server), Buffer.from(`burst ${i}`));
    await waitFor(() => server!.stats().reaped === 30, 5000, '30 reaps');
    expect(server.stats().eintrRetries).toBeGreaterThan(0);
  });

  test('child_process.spawnSync still gets its exit status during and after a fork server', async () => {
    server = await startServer({ model: 'fork' });
    const churn = Promise.all(Array.from({ length: 20 }, (_, i) => exchange(port(server!), Buffer.from(`c${i}`))));
    const during = spawnSync(process.execPath, ['-e', 'process.exit(7)']);
    await churn;
    expect(during.status).toBe(7);
    await server.close();
    server = undefined;
    const after = spawnSync(process.execPath, ['-e', 'process.exit(5)']);
    expect(after.status).toBe(5);
  });

  test("a process.on('SIGTERM') handler is not triggered by stopping a fork server", async () => {
    let fired = 0;
    const onTerm = () => fired++;
    process.on('SIGTERM', onTerm);
    try {
      server = await startServer({ model: 'fork' });
      await exchange(port(server), Buffer.from('x'));
      await server.close(); // close() sends SIGTERM to the master
      server = undefined;
      await sleep(200);
      expect(fired).toBe(0);
    } finally {
      process.off('SIGTERM', onTerm);
    }
  });

  test('the master starts clean: default signal dispositions, nothing blocked, only its own descriptors', async () => {
    const onInt = () => undefined;
    process.on('SIGINT', onInt); // Node now catches SIGINT: the master must not inherit that
    try {
      server = await startServer({ model: 'fork' });
      const master = server.pid;
      const status = readFileSync(`/proc/${master}/status`, 'utf8');
      // Signals 1–31 only: glibc keeps its own handlers for real-time signals 32 and 33.
      const classic = (1n << 31n) - 1n;
      const mask = (name: string) => BigInt('0x' + new RegExp(`^${name}:\\s*([0-9a-f]+)$`, 'm').exec(status)![1]) & classic;
      const bit = (sig: number) => 1n << BigInt(sig - 1);
      const { SIGCHLD, SIGTERM, SIGUSR1, SIGHUP, SIGPIPE } = osConstants.signals;
      expect(mask('SigBlk')).toBe(0n);
      // SIGHUP: its parent-death signal (Node is gone: it takes its session with it).
      expect(mask('SigCgt')).toBe(bit(SIGCHLD) | bit(SIGTERM) | bit(SIGUSR1) | bit(SIGHUP));
      expect(mask('SigIgn')).toBe(bit(SIGPIPE));
      // stdio and the EMFILE reserve on /dev/null, the listener, the event pipe: nothing of Node's.
      const fds = readdirSync(`/proc/${master}/fd`).map((fd) => [Number(fd), readlinkSync(`/proc/${master}/fd/${fd}`)]);
      expect(fds.length).toBe(6);
      expect(fds.filter(([fd]) => (fd as number) <= 2).map(([, target]) => target)).toEqual([
        '/dev/null',
        '/dev/null',
        '/dev/null',
      ]);
      expect(fds.filter(([, t]) => t === '/dev/null').length).toBe(4);
      expect(fds.filter(([, t]) => String(t).startsWith('socket:')).length).toBe(1);
      expect(fds.filter(([, t]) => String(t).startsWith('pipe:')).length).toBe(1);
      // A child holds its client, the event pipe and stdio only (the listener was closed).
      const pids: number[] = [];
      server.on('connection', (c) => pids.push(c.pid!));
      const c = await Client.open(port(server));
      await c.echo('x');
      await waitFor(() => pids.length === 1, 5000, 'connection');
      const childFds = readdirSync(`/proc/${pids[0]}/fd`).map((fd) => readlinkSync(`/proc/${pids[0]}/fd/${fd}`));
      expect(childFds.filter((t) => t.startsWith('socket:')).length).toBe(1);
      expect(childFds.length).toBe(5);
      c.end();
    } finally {
      process.off('SIGINT', onInt);
    }
  });

  test('the master holds none of Node’s descriptors: a thread server closed meanwhile frees its port', async () => {
    const thread = await startServer({ model: 'thread' });
    const p = port(thread);
    server = await startServer({ model: 'fork' }); // forked while the thread server's lfd is open
    await thread.close();
    expect(await portIsFree(p)).toBe(true);
    expect((await exchange(port(server), Buffer.from('fork ok'))).toString()).toBe('fork ok');
  });

  test('a master that dies unexpectedly is reported as an error and the server closes', async () => {
    server = await startServer({ model: 'fork' });
    const errors: Error[] = [];
    server.on('error', (e) => errors.push(e));
    const closed = new Promise<void>((r) => server!.once('close', () => r()));
    process.kill(server.pid, 'SIGKILL');
    await closed;
    expect(errors.map((e) => e.message)).toEqual([`fork server master ${server.pid} was killed by SIGKILL`]);
    expect(server.listening).toBe(false);
  });
});

describe('cluster model: workers', () => {
  let server: PosixServer | undefined;
  afterEach(async () => {
    await server?.close({ timeoutMs: 0 });
    server = undefined;
  });

  test('a killed worker: its connection ends as crash, it is reaped, a new worker takes its place', async () => {
    server = await startServer({ model: 'cluster', workers: 2 });
    const pids: number[] = [];
    const gone: DisconnectEvent[] = [];
    const reaps: ReapEvent[] = [];
    server.on('connection', (c) => pids.push(c.pid!));
    server.on('disconnect', (d) => gone.push(d));
    server.on('reap', (r) => reaps.push(r));
    const victim = await Client.open(port(server));
    await victim.echo('x');
    const workersBefore = childrenOf(process.pid).map((k) => k.pid);
    process.kill(pids[0], 'SIGKILL');
    await victim.closedByPeer(3000);
    await waitFor(() => reaps.length === 1 && gone.length === 1, 5000, 'reap and disconnect');
    expect(reaps[0]).toEqual({ pid: pids[0], id: 0, exitCode: null, signal: 'SIGKILL' });
    expect(gone[0]).toMatchObject({ id: 1, reason: 'crash', pid: pids[0] });
    expect(zombiesOf(process.pid)).toEqual([]);
    // The pool is back to two workers, and both serve.
    await waitFor(
      () => childrenOf(process.pid).filter((k) => k.state !== 'Z').length === workersBefore.length,
      5000,
      'a new worker',
    );
    const replacement = childrenOf(process.pid)
      .map((k) => k.pid)
      .filter((p) => !workersBefore.includes(p));
    expect(replacement.length).toBe(1);
    // (The replacement takes connections once it has started and reported ready: up to 5 s.)
    for (let i = 0; i < 100 && new Set(pids.slice(1)).size < 2; i++) {
      expect((await exchange(port(server), Buffer.from(`next ${i}`))).toString()).toBe(`next ${i}`);
      await sleep(50);
    }
    expect(new Set(pids.slice(1))).toEqual(new Set([...workersBefore.filter((p) => p !== pids[0]), ...replacement]));
    await waitFor(() => server!.stats().closed === pids.length, 5000, 'every connection closed');
    expect(server.stats()).toMatchObject({ accepted: pids.length, rejected: 0, active: 0, reaped: 1 });
  });

  test('started inside a cluster worker, it is refused with a clear error', () => {
    const script = join(__dirname, 'fixtures', 'cluster-in-worker.js');
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 20000 });
    expect(JSON.parse(r.stdout.trim())).toBe('The cluster model must be started in a primary process, not in a cluster worker');
  });

  test("the application's own cluster.settings are left as they were", async () => {
    const before = cluster.settings;
    server = await startServer({ model: 'cluster', workers: 1 });
    expect(cluster.settings).toBe(before);
    expect((await exchange(port(server), Buffer.from('one worker'))).toString()).toBe('one worker');
  });
});

/** The JSON lines a fixture prints (server-then-wait.js), parsed as they come. */
function jsonLines(stdout: Readable): Array<Record<string, unknown>> {
  const lines: Array<Record<string, unknown>> = [];
  stdout.setEncoding('utf8');
  let buffered = '';
  stdout.on('data', (d: string) => {
    buffered += d;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buffered.slice(0, nl)));
      buffered = buffered.slice(nl + 1);
    }
  });
  return lines;
}

// Nothing leaks even when Node itself is killed: the master and its children or pool workers die
// by PR_SET_PDEATHSIG, cluster workers by node:cluster's exit when their IPC channel closes.
describe.each(['fork', 'cluster', 'prefork', 'reuseport'] as Model[])('%s model: Node killed', (model) => {
  test('SIGKILL of the Node process leaves no server process, no child, and a free port within 2 s', async () => {
    const script = join(__dirname, 'fixtures', 'server-then-wait.js');
    const node = spawn(process.execPath, [script, model], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const lines = jsonLines(node.stdout);
      await waitFor(() => lines.length >= 1, 10000, 'the server to start');
      const { port: p, processes } = lines[0] as { port: number; processes: number[] };
      expect(processes.length).toBe(model === 'cluster' ? 2 : model === 'fork' ? 1 : 3); // pools: master + 2 workers
      const c = await Client.open(p);
      await c.echo('hello');
      await waitFor(() => lines.length >= 2, 5000, 'the connection event');
      const child = lines[1].connection as number;
      const all = [...new Set([...processes, child])];
      expect(all.every(isAlive)).toBe(true);

      node.kill('SIGKILL');
      const t0 = Date.now();
      await waitFor(() => !all.some(isAlive), 2000, 'every server process to die');
      await c.closedByPeer(2000);
      while (!(await portIsFree(p))) {
        if (Date.now() - t0 > 2000) throw new Error('port still busy after 2 s');
        await sleep(20);
      }
    } finally {
      node.kill('SIGKILL');
    }
  });
});

// A cluster worker that reports to a primary which has just died writes into a broken channel
// (EPIPE) before it reads the channel's end; that is no error of the application's.
describe('cluster model: Node killed while a worker reports', () => {
  test("the worker leaves quietly: nothing on the application's stderr, no worker left", async () => {
    const script = join(__dirname, 'fixtures', 'server-then-wait.js');
    const node = spawn(process.execPath, [script, 'cluster'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    node.stderr.setEncoding('utf8');
    node.stderr.on('data', (d: string) => (stderr += d));
    // Every process holding the pipe (Node, the workers) has gone.
    const stderrEnd = new Promise<void>((r) => node.stderr.once('close', () => r()));
    const nodeExit = new Promise<void>((r) => node.once('exit', () => r()));
    let worker = 0;
    try {
      const lines = jsonLines(node.stdout);
      await waitFor(() => lines.length >= 1, 10000, 'the server to start');
      const { port: p, processes } = lines[0] as { port: number; processes: number[] };
      const c = await Client.open(p);
      await c.echo('hello');
      await waitFor(() => lines.length >= 2, 5000, 'the connection event');
      worker = lines[1].connection as number;
      // The worker, stopped, finds two things when it runs again, in this order: its client's
      // reset (its connection ends, and it reports that to the primary) and the end of its channel.
      process.kill(worker, 'SIGSTOP');
      await waitFor(() => readStat(worker)?.state === 'T', 2000, 'the worker to stop');
      c.sock.resetAndDestroy();
      await sleep(50);
      node.kill('SIGKILL');
      await nodeExit;
      process.kill(worker, 'SIGCONT');
      await Promise.race([stderrEnd, sleep(5000)]);
      await waitFor(() => !processes.some(isAlive), 2000, 'every worker to leave');
      expect(stderr).toBe('');
    } finally {
      node.kill('SIGKILL');
      if (worker !== 0 && isAlive(worker)) process.kill(worker, 'SIGKILL');
    }
  });
});

describe('OS failures look like Node’s own and leave nothing behind', () => {
  // Node's own servers report it from listen(): libuv binds lazily and keeps bind's error for
  // listen to return. That is what a Node user sees, so it is passed on untouched.
  test.each(MODELS)('%s: EADDRINUSE, with code, errno, syscall, address and port', async (model) => {
    const syscall = model === 'node' || model === 'cluster' ? 'listen' : 'bind';
    const taken = await listenNet();
    const p = (taken.address() as { port: number }).port;
    try {
      const before = snapshot();
      const err = await startServer(optionsFor(model, { port: p })).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(Error);
      expect(err).toMatchObject({ code: 'EADDRINUSE', syscall, errno: -98, address: '127.0.0.1', port: p });
      expect((err as Error).message).toBe(`${syscall} EADDRINUSE: address already in use 127.0.0.1:${p}`);
      expect(snapshot()).toEqual(before);
    } finally {
      await closeNet(taken);
    }
  });

  test("a master program that cannot be exec'd is an execve error, and nothing is left behind", async () => {
    // An addon copied alone to a directory of its own: its master program is not beside it.
    const dir = mkdtempSync(join(tmpdir(), 'posix-servers-'));
    try {
      const addon = process.env.POSIX_SERVERS_ADDON ?? join(__dirname, '..', 'build', 'Release', 'posix_servers.node');
      copyFileSync(addon, join(dir, 'posix_servers.node'));
      const script = `
        const { readdirSync } = require('node:fs');
        const { startServer } = require(${JSON.stringify(join(__dirname, '..', 'dist'))});
        const { childrenOf } = require(${JSON.stringify(join(__dirname, '..', 'dist', 'util', 'proc'))});
        const fds = () => readdirSync('/proc/self/fd').length;
        const before = fds();
        startServer({ model: 'fork' }).then(
          () => console.log(JSON.stringify({ started: true })),
          (e) => console.log(JSON.stringify({ message: e.message, code: e.code, syscall: e.syscall, extraFds: fds() - before, children: childrenOf(process.pid).length })),
        );`;
      const r = spawnSync(process.execPath, ['-e', script], {
        env: { ...process.env, POSIX_SERVERS_ADDON: join(dir, 'posix_servers.node') },
        encoding: 'utf8',
      });
      expect(r.status).toBe(0);
      const out = JSON.parse(r.stdout.trim());
      expect(out).toEqual({
        message: expect.stringMatching(/^execve ENOENT: no such file or directory \(starting posix-servers-master/),
        code: 'ENOENT',
        syscall: 'execve',
        extraFds: 0,
        children: 0, // the process that failed to exec was waited for
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('IPv6 loopback works when the machine has it', async () => {
    let server: PosixServer;
    try {
      server = await startServer({ model: 'thread', host: '::1' });
    } catch (e) {
      // No IPv6 on this machine: the failure must still be a proper system error.
      expect(e).toMatchObject({ syscall: expect.any(String), code: expect.stringMatching(/^E/) });
      return;
    }
    expect(server.address()).toMatchObject({ address: '::1', family: 'IPv6' });
    await server.close();
  });
});
