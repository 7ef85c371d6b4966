// The exec handler (fork and prefork models): any program on the port, as inetd, tcpserver and
// socat EXEC: run one. Real programs, real clients: what the program reads and writes is the
// connection, its environment is ucspi-tcp's, its exit is the reap event's, and nothing of the
// server leaks — after every test no process the server started, or any process those started,
// is left anywhere in /proc (ServerProcessMark), however the server ended.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DisconnectEvent, EXEC_MODELS, PosixServer, ReapEvent, ServerOptions, TraceEvent, startServer } from '../lib';
import { execveLimits } from '../lib/server/exec';
import { readStat } from '../lib/util/proc';
import {
  Client,
  ServerProcessMark,
  exchange,
  isAlive,
  optionsFor,
  port,
  random,
  snapshot,
  sleep,
  waitFor,
  zombiesOf,
} from './helpers';

interface Log {
  disconnects: DisconnectEvent[];
  reaps: ReapEvent[];
  traces: TraceEvent[];
  connections: Array<{ id: number; pid?: number }>;
}

function watch(server: PosixServer): Log {
  const log: Log = { disconnects: [], reaps: [], traces: [], connections: [] };
  server.on('connection', (c) => log.connections.push(c));
  server.on('disconnect', (d) => log.disconnects.push(d));
  server.on('reap', (r) => log.reaps.push(r));
  server.on('trace', (t) => log.traces.push(t));
  return log;
}

describe.each(EXEC_MODELS)('%s model: the exec handler', (model) => {
  const opts = (extra: Omit<ServerOptions, 'model'>) => optionsFor(model, extra);
  let server: PosixServer | undefined;
  let dir: string;
  let mark: ServerProcessMark;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'posix-servers-exec-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(() => {
    mark = new ServerProcessMark();
  });
  afterEach(async () => {
    try {
      if (server !== undefined) mark.scan(server); // the master and its members, whatever the test left
      await server?.close({ timeoutMs: 0 });
      server = undefined;
      await mark.expectNoneLeft();
    } finally {
      mark.dispose();
    }
  });

  test('/bin/cat echoes a random 1 MiB binary payload byte for byte', async () => {
    server = await startServer(opts({ handler: { exec: ['/bin/cat'] } }));
    const log = watch(server);
    const payload = random(1 << 20);
    const back = await exchange(port(server), payload, 20000);
    expect(back.length).toBe(payload.length);
    expect(back.equals(payload)).toBe(true);
    await waitFor(() => log.reaps.length === 1, 5000, 'the reap');
    expect(log.reaps[0]).toMatchObject({ id: 1, exitCode: 0, signal: null, pid: log.connections[0].pid });
    // The program read and wrote the socket itself: the server counted no bytes of it.
    expect(log.disconnects[0]).toMatchObject({ id: 1, reason: 'end', bytesIn: 0, bytesOut: 0 });
  });

  test("a shell program sees ucspi-tcp's environment: PROTO, TCPREMOTEIP/PORT of the client's socket, TCPLOCALIP/PORT", async () => {
    server = await startServer(
      opts({ handler: { exec: ['sh', '-c', 'echo "$PROTO $TCPREMOTEIP $TCPREMOTEPORT $TCPLOCALIP $TCPLOCALPORT"'] } }),
    );
    const c = await Client.open(port(server), 2000, '127.0.0.1', '127.0.0.2');
    await c.closedByPeer();
    const words = c.take().toString().trim().split(' ');
    expect(words).toEqual(['TCP', '127.0.0.2', String(c.localPort), '127.0.0.1', String(port(server))]);
    c.destroy();
  });

  test('env replaces the environment (as spawn does); the ucspi-tcp variables win over it', async () => {
    server = await startServer(
      opts({
        handler: {
          exec: ['/bin/sh', '-c', 'echo "$GREETING|${HOME:-no home}|$PROTO|$TCPLOCALPORT"'],
          env: { GREETING: 'hello world', PROTO: 'not TCP', TCPLOCALPORT: '1', ...mark.env },
        },
      }),
    );
    const out = (await exchange(port(server), '')).toString();
    expect(out).toBe(`hello world|no home|TCP|${port(server)}\n`);
  });

  test("TCPREMOTEHOST, TCPREMOTEINFO, TCPLOCALHOST never reach the program: the server does not know them (Node's environment and env alike)", async () => {
    const program = ['/bin/sh', '-c', 'echo "${TCPREMOTEHOST-unset}|${TCPREMOTEINFO-unset}|${TCPLOCALHOST-unset}|$TCPREMOTEIP"'];
    const stale = { TCPREMOTEHOST: 'trusted.example', TCPREMOTEINFO: 'root', TCPLOCALHOST: 'mail.example' };
    Object.assign(process.env, stale);
    try {
      server = await startServer(opts({ handler: { exec: program } }));
    } finally {
      for (const name of Object.keys(stale)) delete process.env[name];
    }
    expect((await exchange(port(server), '')).toString()).toBe('unset|unset|unset|127.0.0.1\n');
    await server.close();
    server = await startServer(opts({ handler: { exec: program, env: { ...stale, ...mark.env } } }));
    expect((await exchange(port(server), '')).toString()).toBe('unset|unset|unset|127.0.0.1\n');
  });

  test("an argument over execve's MAX_ARG_STRLEN is a RangeError at start, as the kernel would refuse it (not exit 127 for every connection)", async () => {
    const { maxArgStrlen } = execveLimits();
    const longest = 'a'.repeat(maxArgStrlen - 1); // with its NUL, exactly MAX_ARG_STRLEN
    // The kernel's own word, from a spawn of the same argument: the longest is taken, one byte more is not.
    expect(spawnSync('/bin/true', [longest]).status).toBe(0);
    expect(spawnSync('/bin/true', [longest + 'a']).error).toMatchObject({ code: 'E2BIG' });
    server = await startServer(opts({ handler: { exec: ['/bin/sh', '-c', 'echo ${#1}', 'sh', longest] } }));
    expect((await exchange(port(server), '')).toString()).toBe(`${maxArgStrlen - 1}\n`);
    await server.close();
    server = undefined;
    const tooLong = () => {
      const started = startServer(opts({ handler: { exec: ['/bin/sh', '-c', 'true', 'sh', longest + 'a'] } }));
      void started.then((s) => s.close()); // (not reached: it throws)
      return started;
    };
    expect(tooLong).toThrow(RangeError);
    expect(tooLong).toThrow(
      new RegExp(
        `^The "handler\\.exec\\[4\\]" option must be at most ${maxArgStrlen - 1} bytes long .* Received ${maxArgStrlen} bytes$`,
      ),
    );
    expect(() => startServer(opts({ handler: { exec: ['/bin/true'], env: { LONG: longest } } }))).toThrow(
      /^The "handler\.env\.LONG" option, as LONG=value, must be at most/,
    );
    let error: unknown = null;
    try {
      void tooLong();
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
  });

  test("arguments and environment over execve's total (a quarter of RLIMIT_STACK) are E2BIG at start, exactly where the kernel's limit is", async () => {
    const { maxArgStrlen, total, pointer } = execveLimits();
    // ucspi-tcp's variables at their longest, which the server adds for each connection.
    const tcpVars: Record<string, string> = {
      PROTO: 'TCP',
      TCPREMOTEIP: 'f'.repeat(39),
      TCPREMOTEPORT: '65535',
      TCPLOCALIP: 'f'.repeat(39),
      TCPLOCALPORT: '65535',
    };
    /** An environment with which /bin/true's execve strings and pointers take exactly `bytes`. */
    const filling = (bytes: number): Record<string, string> => {
      const env: Record<string, string> = { ...mark.env };
      const entry = (k: string, v: string) => Buffer.byteLength(`${k}=${v}`) + 1 + pointer;
      let used = 2 * ('/bin/true'.length + 1) + pointer; // the file name, argv[0] and its pointer
      for (const [k, v] of Object.entries({ ...env, ...tcpVars })) used += entry(k, v);
      for (let i = 0; used < bytes; i++) {
        const name = `FILL${i}`;
        const room = bytes - used - (name.length + 2 + pointer);
        const value = 'x'.repeat(Math.max(0, Math.min(room, maxArgStrlen - name.length - 2)));
        env[name] = value;
        used += entry(name, value);
      }
      expect(used).toBe(bytes);
      return env;
    };
    const fits = filling(total);
    const over = filling(total + 1);
    // What the kernel says of the same strings (the server's variables included, at their longest).
    expect(spawnSync('/bin/true', [], { env: { ...fits, ...tcpVars } }).status).toBe(0);
    expect(spawnSync('/bin/true', [], { env: { ...over, ...tcpVars } }).error).toMatchObject({ code: 'E2BIG' });
    // The server: one runs for each connection; the other is refused at start, as spawn refuses it.
    server = await startServer(opts({ handler: { exec: ['/bin/true'], env: fits } }));
    const log = watch(server);
    await exchange(port(server), '');
    await waitFor(() => log.reaps.length === 1, 5000, 'the reap');
    expect(log.reaps[0]).toMatchObject({ exitCode: 0 });
    await server.close();
    server = undefined;
    let error: unknown = null;
    try {
      server = await startServer(opts({ handler: { exec: ['/bin/true'], env: over } }));
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'E2BIG', errno: -7, syscall: 'execve', path: '/bin/true' });
    expect((error as Error).message).toMatch(new RegExp(`would take ${total + 1} bytes .* allows ${total} `));
  });

  test('stderr: socket sends it to the client, null (the default) drops it', async () => {
    const program = ['/bin/sh', '-c', 'echo out; echo err >&2'];
    server = await startServer(opts({ handler: { exec: program, stderr: 'socket' } }));
    expect((await exchange(port(server), '')).toString()).toBe('out\nerr\n');
    await server.close();
    server = await startServer(opts({ handler: { exec: program } }));
    expect((await exchange(port(server), '')).toString()).toBe('out\n');
  });

  test('the program starts clean: signals at their defaults and unblocked, only descriptors 0, 1, 2', async () => {
    server = await startServer(
      // The shell reads its own status with builtins: a grep it forks would read it while the
      // shell, mid-fork or waiting, may have its signals blocked for a moment.
      opts({
        handler: {
          exec: [
            '/bin/sh',
            '-c',
            'while IFS= read -r l; do case $l in SigBlk*|SigIgn*) echo "$l";; esac; done < /proc/self/status; ls /proc/$$/fd',
          ],
        },
      }),
    );
    const lines = (await exchange(port(server), '')).toString().trim().split('\n');
    expect(lines).toEqual(['SigBlk:\t0000000000000000', 'SigIgn:\t0000000000000000', '0', '1', '2']);
  });

  test('a program that exits 3 is reported with exit code 3; one killed by a signal with that signal', async () => {
    server = await startServer(opts({ handler: { exec: ['/bin/sh', '-c', 'exit 3'] } }));
    let log = watch(server);
    await exchange(port(server), '');
    await waitFor(() => log.reaps.length === 1 && log.disconnects.length === 1, 5000, 'the reap');
    expect(log.reaps[0]).toMatchObject({ exitCode: 3, signal: null });
    expect(log.disconnects[0].reason).toBe('error');
    await server.close();

    server = await startServer(opts({ handler: { exec: ['/bin/sh', '-c', 'kill -USR2 $$'] } }));
    log = watch(server);
    await exchange(port(server), '');
    await waitFor(() => log.reaps.length === 1 && log.disconnects.length === 1, 5000, 'the reap');
    expect(log.reaps[0]).toMatchObject({ exitCode: null, signal: 'SIGUSR2' });
    expect(log.disconnects[0].reason).toBe('crash');
  });

  test('a program gone after the start: execve fails in the child, traced with its errno, exit 127', async () => {
    const file = join(dir, 'vanishing');
    copyFileSync('/bin/true', file);
    server = await startServer(opts({ handler: { exec: [file] }, trace: true }));
    const log = watch(server);
    rmSync(file);
    const c = await Client.open(port(server));
    await c.closedByPeer();
    c.destroy();
    await waitFor(() => log.reaps.length === 1, 5000, 'the reap');
    expect(log.reaps[0]).toMatchObject({ exitCode: 127, signal: null });
    await waitFor(() => log.traces.some((t) => t.call === 'execve' && t.errno !== null), 5000, 'the failed execve');
    expect(log.traces.filter((t) => t.call === 'execve').map((t) => [t.result, t.errno, t.program])).toEqual([
      [0, null, file],
      [-1, 'ENOENT', file],
    ]);
  });

  test('trace: dup2 onto 0 and 1 and execve (the program, the pid) in the child that serves the connection', async () => {
    server = await startServer(opts({ handler: { exec: ['/bin/cat'], stderr: 'socket' }, trace: true }));
    const log = watch(server);
    expect((await exchange(port(server), 'traced')).toString()).toBe('traced');
    await waitFor(() => log.reaps.length === 1, 5000, 'the reap');
    const child = log.connections[0].pid!; // fork: the child; prefork: the member that became the program
    const accept = log.traces.find((t) => (t.call === 'accept' || t.call === 'worker-accept') && t.id === 1)!;
    const mine = log.traces.filter((t) => t.pid === child && ['dup2', 'execve'].includes(t.call));
    expect(mine.map((t) => [t.call, t.fd, t.result, t.id])).toEqual([
      ['dup2', accept.result, 0, 1],
      ['dup2', accept.result, 1, 1],
      ['dup2', accept.result, 2, 1],
      ['execve', -1, 0, 1],
    ]);
    expect(mine[3].program).toBe('/bin/cat'); // resolved to an absolute path before the start
  });

  test("nothing leaks after 1,000 exec'd connections: no zombie, descriptor or process; the books are exact", async () => {
    const before = snapshot();
    server = await startServer(opts({ handler: { exec: ['/bin/true'] }, maxClients: 64 }));
    const log = watch(server);
    const p = port(server);
    const deadline = performance.now() + 90_000;
    let done = 0;
    // 1,000 connections, 16 at a time; each reads until the program's exit closes it.
    const worker = async () => {
      while (done < 1000 && performance.now() < deadline) {
        done++;
        const c = await Client.open(p, 5000);
        await c.closedByPeer(10000);
        c.destroy();
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    expect(done).toBe(1000);
    await waitFor(() => log.reaps.length === 1000, 20000, '1,000 reaps');
    expect(server.stats()).toMatchObject({ accepted: 1000, closed: 1000, reaped: 1000, active: 0, rejected: 0, zombies: 0 });
    expect(log.disconnects.length).toBe(1000);
    expect(new Set(log.disconnects.map((d) => d.id)).size).toBe(1000);
    expect(log.reaps.every((r) => r.exitCode === 0)).toBe(true);
    const master = server.pid;
    await server.close();
    server = undefined;
    await sleep(20);
    expect(zombiesOf(process.pid)).toEqual([]);
    expect(zombiesOf(master)).toEqual([]);
    expect(snapshot()).toEqual(before);
  }, 120_000);

  test('close() ends a program still running and reports it as aborted', async () => {
    server = await startServer(opts({ handler: { exec: ['/bin/sleep', '30'] } }));
    const log = watch(server);
    const c = await Client.open(port(server));
    await waitFor(() => log.connections.length === 1, 5000, 'the connection');
    const started = performance.now();
    await server.close({ timeoutMs: 100 });
    expect(performance.now() - started).toBeLessThan(3000);
    expect(log.disconnects).toEqual([expect.objectContaining({ id: 1, reason: 'aborted' })]);
    // fork: the master's SIGTERM to the child; prefork: the same, to the member that became it.
    expect(log.reaps.find((r) => r.pid === log.connections[0].pid)).toMatchObject({ signal: 'SIGTERM' });
    await c.closedByPeer();
    c.destroy();
    server = undefined;
  });

  test('close() ends the processes the program started too (the child leads its own process group)', async () => {
    server = await startServer(opts({ handler: { exec: ['/bin/sh', '-c', 'sleep 30 & echo $!; wait'] } }));
    const log = watch(server);
    const c = await Client.open(port(server));
    let line = '';
    await waitFor(() => (line += c.take().toString()).includes('\n'), 5000, "the background job's pid");
    const sleeper = Number(line.trim());
    expect(isAlive(sleeper)).toBe(true);
    await waitFor(() => log.connections.length === 1, 5000, 'the connection event');
    expect(readStat(sleeper)!.pgrp).toBe(log.connections[0].pid);
    await server.close({ timeoutMs: 50 });
    server = undefined;
    await waitFor(() => !isAlive(sleeper), 3000, 'the background sleep to be gone');
    c.destroy();
  });

  test('a script found in PATH runs, with its arguments as given (argv[0] the name)', async () => {
    const script = join(dir, 'show-args');
    writeFileSync(script, '#!/bin/sh\necho "$0" "$@"\n');
    chmodSync(script, 0o755);
    const oldPath = process.env.PATH;
    process.env.PATH = `${dir}:${oldPath}`;
    try {
      server = await startServer(opts({ handler: { exec: ['show-args', 'a b', '', '*'] } }));
    } finally {
      process.env.PATH = oldPath;
    }
    // sh's $0 for a script is its path: the kernel ran it from the resolved, absolute path.
    expect((await exchange(port(server), '')).toString()).toBe(`${script} a b  *\n`);
  });

  // ---- Every process a program starts dies with its connection's server ----

  /** The first line the program sent (`echo $!`: a background job's pid). */
  async function firstLine(c: Client): Promise<string> {
    let text = '';
    await waitFor(() => (text += c.take().toString()).includes('\n'), 5000, 'a line from the program');
    return text.slice(0, text.indexOf('\n'));
  }

  test('close(): SIGTERM to the program first, SIGKILL after the grace time (a program that traps SIGTERM is told, then killed)', async () => {
    const told = join(dir, `told-${model}`);
    rmSync(told, { force: true });
    const program = `trap 'echo TERM >> ${told}' TERM; echo ready; while :; do sleep 0.05; done`;
    server = await startServer(opts({ handler: { exec: ['/bin/sh', '-c', program] } }));
    const log = watch(server);
    const c = await Client.open(port(server));
    expect(await firstLine(c)).toBe('ready');
    await waitFor(() => log.connections.length === 1, 5000, 'the connection');
    await server.close({ timeoutMs: 0 });
    server = undefined;
    expect(readFileSync(told, 'utf8')).toBe('TERM\n'); // told once, and it went on
    expect(log.reaps.find((r) => r.pid === log.connections[0].pid)).toMatchObject({ signal: 'SIGKILL' });
    expect(log.disconnects).toEqual([expect.objectContaining({ id: 1, reason: 'aborted' })]);
    await c.closedByPeer();
    c.destroy();
  });

  test("close() ends what a program left behind when it exited: its background child, still holding the client's connection", async () => {
    server = await startServer(opts({ handler: { exec: ['/bin/sh', '-c', 'sleep 300 & echo $!'] } }));
    const log = watch(server);
    const c = await Client.open(port(server));
    const sleeper = Number(await firstLine(c));
    await waitFor(() => log.disconnects.length === 1, 5000, "the program's end");
    expect(log.disconnects[0]).toMatchObject({ id: 1, reason: 'end' });
    // As inetd: what a program leaves behind runs on while the server does (and keeps the
    // connection open: the client sees no EOF).
    expect(isAlive(sleeper)).toBe(true);
    expect(await c.silentFor(100)).toBe(true);
    await server.close({ timeoutMs: 2000 });
    const stats = server.stats();
    server = undefined;
    await c.closedByPeer();
    c.destroy();
    expect(readStat(sleeper)).toBeNull(); // gone, not even a zombie
    // It was no connection: one disconnect, no reap of it; fork's `reaped` counts the one child.
    expect(log.disconnects.length).toBe(1);
    expect(log.reaps.some((r) => r.pid === sleeper)).toBe(false);
    expect(stats).toMatchObject({ accepted: 1, closed: 1, active: 0 });
    if (model === 'fork') expect(stats.reaped).toBe(1);
  });

  test('a leftover that ignores SIGTERM is SIGKILLed after the grace time', async () => {
    server = await startServer(opts({ handler: { exec: ['/bin/sh', '-c', "(trap '' TERM; exec sleep 300) & echo $!"] } }));
    const c = await Client.open(port(server));
    const sleeper = Number(await firstLine(c));
    // Its SigIgn gets SIGTERM's bit (15) once the subshell has run its trap: SIGTERM will not end it.
    const ignoresTerm = () => {
      const m = /^SigIgn:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${sleeper}/status`, 'utf8'));
      return m !== null && (BigInt('0x' + m[1]) & (1n << 14n)) !== 0n;
    };
    await waitFor(ignoresTerm, 5000, 'the leftover to ignore SIGTERM');
    await server.close({ timeoutMs: 0 });
    server = undefined;
    await c.closedByPeer();
    c.destroy();
    expect(readStat(sleeper)).toBeNull();
  });

  test('a process that left the session (setsid) is reached too, once it is an orphan handed to the master', async () => {
    server = await startServer(opts({ handler: { exec: ['/bin/sh', '-c', 'setsid sleep 300 & echo $!'] } }));
    const c = await Client.open(port(server));
    const escaped = Number(await firstLine(c));
    await waitFor(() => readStat(escaped)?.session === escaped && readStat(escaped)?.ppid === server!.pid, 5000, 'the setsid');
    await server.close({ timeoutMs: 0 });
    server = undefined;
    await c.closedByPeer();
    c.destroy();
    expect(readStat(escaped)).toBeNull();
  });

  test('a program killed from outside takes its process group with it: the client is not left connected to its child', async () => {
    server = await startServer(opts({ handler: { exec: ['/bin/sh', '-c', 'cat; true'] } }));
    const log = watch(server);
    const c = await Client.open(port(server));
    expect((await c.echo('served by cat')).toString()).toBe('served by cat');
    await waitFor(() => log.connections.length === 1, 5000, 'the connection');
    const shell = log.connections[0].pid!;
    const cat = mark.scan().find((pid) => readStat(pid)?.ppid === shell)!;
    expect(readStat(cat)!.pgrp).toBe(shell);
    process.kill(shell, 'SIGKILL');
    await c.closedByPeer();
    c.destroy();
    await waitFor(() => readStat(cat) === null, 5000, 'cat to be gone');
    await waitFor(() => log.disconnects.length === 1, 5000, 'the disconnect');
    expect(log.disconnects[0]).toMatchObject({ id: 1, reason: 'crash' });
    expect((await exchange(port(server), 'still serving')).toString()).toBe('still serving'); // the server serves on
  });

  test("SIGKILL of the master: the program and what it started die, and the client's connection closes", async () => {
    server = await startServer(opts({ handler: { exec: ['/bin/sh', '-c', 'cat; true'] } }));
    const log = watch(server);
    const errors: Error[] = [];
    server.on('error', (e) => errors.push(e));
    const closed = new Promise<void>((resolve) => server!.once('close', () => resolve()));
    const c = await Client.open(port(server));
    expect((await c.echo('served by cat')).toString()).toBe('served by cat');
    await waitFor(() => log.connections.length === 1, 5000, 'the connection');
    expect(mark.scan(server).length).toBeGreaterThanOrEqual(3); // the master, sh, cat (prefork: and the members)
    process.kill(server.pid, 'SIGKILL');
    await closed;
    server = undefined;
    expect(errors.length).toBe(1);
    expect(log.disconnects).toEqual([expect.objectContaining({ id: 1, reason: 'crash' })]);
    await c.closedByPeer(2000);
    c.destroy();
    // afterEach: nothing of the server is left in /proc — 'close' came after init reaped them all.
  });

  test('Node SIGKILLed: the master takes the programs and what they started with it', async () => {
    const script = join(__dirname, 'fixtures', 'server-then-wait.js');
    const node = spawn(process.execPath, [script, model, JSON.stringify({ exec: ['/bin/sh', '-c', 'cat; true'] })], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env }, // the mark: the master, its members, the programs carry it too
    });
    const lines: Array<Record<string, unknown>> = [];
    let buffered = '';
    node.stdout.setEncoding('utf8');
    node.stdout.on('data', (d: string) => {
      buffered += d;
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        lines.push(JSON.parse(buffered.slice(0, nl)));
        buffered = buffered.slice(nl + 1);
      }
    });
    try {
      await waitFor(() => lines.length >= 1, 10000, 'the server to start');
      // The client is this process's: Node's death does not close it, only the server's end can.
      const c = await Client.open(lines[0].port as number);
      expect((await c.echo('served by cat')).toString()).toBe('served by cat');
      await waitFor(() => lines.length >= 2, 5000, 'the connection event');
      expect(mark.scan().length).toBeGreaterThanOrEqual(model === 'fork' ? 3 : 5); // master, sh, cat; prefork: 2 members
      node.kill('SIGKILL');
      await c.closedByPeer(5000);
      c.destroy();
      await mark.expectNoneLeft(5000); // init reaps them
    } finally {
      node.kill('SIGKILL');
    }
  });
});
