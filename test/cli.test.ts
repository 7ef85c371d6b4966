// The CLI as a user runs it: a real process, real signals, real sockets.
import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH, parseBenchArgs } from '../lib/cli/bench';
import type { Command } from '../lib/cli/flags';
import { LAB } from '../lib/cli/lab';
import { parseServeArgs, SERVE } from '../lib/cli/serve';
import type { BenchReport } from '../lib/bench/runner';
import { Client, ServerProcessMark, exchange, isAlive, listenQueue, waitFor } from './helpers';

const CLI = join(__dirname, '..', 'dist', 'cli', 'main.js');

interface Run {
  child: ChildProcessWithoutNullStreams;
  out: string[];
  err: string[];
  exit: Promise<number | null>;
}

function run(args: string[], env: NodeJS.ProcessEnv = process.env): Run {
  const child = spawn(process.execPath, [CLI, ...args], { env });
  const out: string[] = [];
  const err: string[] = [];
  const collect = (into: string[]) => {
    let buf = '';
    return (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        into.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    };
  };
  child.stdout.on('data', collect(out));
  child.stderr.on('data', collect(err));
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, out, err, exit };
}

const running: Run[] = [];
afterEach(() => {
  for (const r of running.splice(0)) if (r.child.exitCode === null) r.child.kill('SIGKILL');
});

function start(args: string[], env?: NodeJS.ProcessEnv): Run {
  const r = run(args, env);
  running.push(r);
  return r;
}

describe('serve flags', () => {
  test('the pool flags', () => {
    expect(parseServeArgs(['--model', 'prefork', '--workers', '3', '--accept-lock=pass'])).toMatchObject({
      model: 'prefork',
      workers: 3,
      acceptLock: 'pass',
    });
    expect(parseServeArgs(['--model', 'reuseport'])).toMatchObject({
      model: 'reuseport',
      workers: undefined,
      acceptLock: undefined,
    });
  });

  test('defaults and --flag=value', () => {
    expect(parseServeArgs([])).toMatchObject({
      model: 'fork',
      host: '127.0.0.1',
      port: 0,
      maxClients: 100,
      backlog: 511,
      handler: 'echo',
      json: false,
    });
    expect(
      parseServeArgs(['--max-connection-ms', '60000', '--min-bytes-per-second=100', '--rate-window-ms', '500']),
    ).toMatchObject({ maxConnectionMs: 60000, minBytesPerSecond: 100, rateWindowMs: 500 });
    expect(parseServeArgs(['--model=thread', '--port=0', '--max-clients', '3', '--json'])).toMatchObject({
      model: 'thread',
      port: 0,
      maxClients: 3,
      json: true,
    });
    expect(parseServeArgs(['--model', 'prethread', '--workers', '8', '--accept-lock=main'])).toMatchObject({
      model: 'prethread',
      workers: 8,
      acceptLock: 'main',
    });
    expect(parseServeArgs(['--model', 'cluster', '--scheduling-policy', 'none'])).toMatchObject({ schedulingPolicy: 'none' });
    expect(parseServeArgs(['--model', 'uring', '--uring-receive', 'single'])).toMatchObject({ uringReceive: 'single' });
    expect(parseServeArgs(['--handler', 'rpc', '--rpc-max-bytes', '65536'])).toMatchObject({ rpcMaxBytes: 65536 });
    expect(() => parseServeArgs(['--rpc-max-bytes', '65536'])).toThrow(/--rpc-max-bytes applies only with --handler rpc/);
  });

  test.each([
    [['--model', 'prethreaded'], /--model must be one of/],
    [['--port', 'eighty'], /--port must be an integer/],
    [['--port', '70000'], /--port must be from 0 to 65535/],
    [['--max-clients'], /--max-clients needs a value/],
    [['--frobnicate'], /unknown flag '--frobnicate'/],
    [['--json=yes'], /--json takes no value/],
    [['--workers', '0', '--model', 'cluster'], /--workers must be from 1 to 64, got 0/],
    [['--workers', '2'], /--workers applies only to --model cluster, prefork, reuseport, prethread/],
    [['--model', 'epoll', '--workers', '2'], /--workers applies only to --model cluster, prefork, reuseport, prethread/],
    [['--workers', '65', '--model', 'prefork'], /--workers must be from 1 to 64, got 65/],
    [['--accept-lock', 'mutex'], /--accept-lock applies only to --model prefork, prethread/],
    [['--model', 'thread', '--accept-lock', 'main'], /--accept-lock applies only to --model prefork, prethread/],
    [['--model', 'prefork', '--accept-lock', 'sem'], /--accept-lock must be one of none, flock, mutex, pass, main, got 'sem'/],
    [
      ['--model', 'prefork', '--accept-lock', 'main'],
      /--accept-lock for --model prefork must be one of none, flock, mutex, pass, got 'main'/,
    ],
    [
      ['--model', 'prethread', '--accept-lock', 'flock'],
      /--accept-lock for --model prethread must be one of mutex, main, got 'flock'/,
    ],
    [['--model', 'cluster', '--scheduling-policy', 'lifo'], /--scheduling-policy must be one of rr, none, got 'lifo'/],
    [['--model', 'prethread', '--scheduling-policy', 'rr'], /--scheduling-policy applies only to --model cluster/],
    [['--model', 'epoll', '--uring-receive', 'single'], /--uring-receive applies only to --model uring/],
    [['--model', 'uring', '--uring-receive', 'twice'], /--uring-receive must be one of multishot, single, got 'twice'/],
    [['--model', 'node', '--trace'], /--trace applies only to the native models/],
    [['--rate-window-ms', '500'], /--rate-window-ms applies only with --min-bytes-per-second/],
    [['--min-bytes-per-second', '-1'], /--min-bytes-per-second must be from 0/],
  ])('%j is refused with a message naming the flag', (argv, message) => {
    expect(() => parseServeArgs(argv)).toThrow(message);
  });

  test('--svg FILE and --ui [PORT]', () => {
    expect(parseServeArgs([])).toMatchObject({ svg: null, ui: null });
    expect(parseServeArgs(['--ui'])).toMatchObject({ ui: 0 });
    expect(parseServeArgs(['--ui', '8080', '--json'])).toMatchObject({ ui: 8080, json: true });
    expect(parseServeArgs(['--ui=0', '--svg', 'out.svg'])).toMatchObject({ ui: 0, svg: 'out.svg' });
    expect(() => parseServeArgs(['--ui=70000'])).toThrow(/--ui port must be from 0 to 65535, got 70000/);
    expect(() => parseServeArgs(['--ui=abc'])).toThrow(/--ui takes a port number, got 'abc'/);
    expect(() => parseServeArgs(['--svg'])).toThrow(/--svg needs a value/);
    expect(() => parseServeArgs(['--svg', '/no/such/dir/x.svg'])).toThrow(/--svg: cannot write/);
  });

  test('--exec takes the program after --, untouched; --handler chargen; the door flags', () => {
    expect(parseServeArgs(['--exec', '--port', '9000', '--', '/usr/bin/bc', '-l', '--model', 'x'])).toMatchObject({
      model: 'fork',
      port: 9000,
      handler: { exec: ['/usr/bin/bc', '-l', '--model', 'x'] },
    });
    expect(parseServeArgs(['--exec', '--exec-stderr', 'socket', '--', 'cat'])!.handler).toEqual({
      exec: ['cat'],
      stderr: 'socket',
    });
    expect(parseServeArgs(['--handler', 'chargen'])!.handler).toBe('chargen');
    expect(
      parseServeArgs([
        '--max-per-source',
        '3',
        '--max-connections-per-second=50',
        '--allow',
        '10.0.0.0/8,::1',
        '--deny',
        '10.1.0.0/16',
      ]),
    ).toMatchObject({ maxPerSource: 3, maxConnectionsPerSecond: 50, allow: ['10.0.0.0/8', '::1'], deny: ['10.1.0.0/16'] });
    expect(() => parseServeArgs(['--exec'])).toThrow(/--exec needs the program after --/);
    expect(() => parseServeArgs(['--exec', '--handler', 'upper', '--', 'cat'])).toThrow(
      /--exec and --handler exclude each other/,
    );
    expect(() => parseServeArgs(['--', 'cat'])).toThrow(/arguments after -- are the program of --exec: 'cat'/);
    expect(() => parseServeArgs(['--exec-stderr', 'socket'])).toThrow(/--exec-stderr applies only with --exec/);
    expect(() => parseServeArgs(['--handler', 'exec'])).toThrow(
      /--handler must be one of echo, upper, discard, chargen, daytime, time, rpc/,
    );
    expect(() => parseServeArgs(['--max-per-source', '-1'])).toThrow(/--max-per-source must be from 0 to 4096/);
  });

  test('--when-full refuse|wait', () => {
    expect(parseServeArgs([])!.whenFull).toBeUndefined(); // the API's default: refuse
    expect(parseServeArgs(['--when-full', 'wait', '--model', 'prefork'])).toMatchObject({ whenFull: 'wait', model: 'prefork' });
    expect(parseServeArgs(['--when-full=refuse', '--model', 'node'])).toMatchObject({ whenFull: 'refuse' });
    expect(() => parseServeArgs(['--when-full', 'queue'])).toThrow(/--when-full must be one of refuse, wait/);
    expect(() => parseServeArgs(['--when-full', 'wait', '--model', 'cluster'])).toThrow(
      /--when-full wait applies only to --model fork, thread, prefork, reuseport, prethread, epoll, uring$/,
    );
    expect(() => parseServeArgs(['--when-full', 'refuse', '--model', 'iterative'])).toThrow(
      /--when-full does not apply to --model iterative/,
    );
  });

  test('bench flags', () => {
    expect(parseBenchArgs(['--models', 'fork,node', '--connections=1,8', '--duration', '0.5'])!.config).toMatchObject({
      models: ['fork', 'node'],
      connections: [1, 8],
      durationMs: 500,
    });
    expect(() => parseBenchArgs(['--models', 'fork,apache'])).toThrow(/unknown model 'apache'/);
    expect(() => parseBenchArgs(['--repeat', '0'])).toThrow(/--repeat/);
  });

  test('bench --warmup: 0.25 s of unmeasured load before each run by default; 0 turns it off; only seconds in [0, 60]', () => {
    expect(parseBenchArgs([])!.config.warmupMs).toBe(250);
    expect(parseBenchArgs(['--warmup', '0'])!.config.warmupMs).toBe(0);
    expect(parseBenchArgs(['--warmup=1.5'])!.config.warmupMs).toBe(1500);
    for (const bad of ['-1', '61', 'soon', ' ']) {
      expect(() => parseBenchArgs(['--warmup', bad])).toThrow(/--warmup must be seconds in \[0, 60\]/);
    }
    expect(() => parseBenchArgs(['--sustained', '--warmup', '1'])).toThrow(/--warmup does not apply with --sustained/);
  });

  test("bench --workload: today's runs by default; rpc brings the UNP table's designs unless --models names others", () => {
    expect(parseBenchArgs([])!.config).toMatchObject({ workloads: ['pingpong', 'churn'], replyBytes: 4000 });
    const rpc = parseBenchArgs(['--workload', 'rpc', '--reply-bytes', '1'])!.config;
    expect(rpc).toMatchObject({ workloads: ['rpc'], replyBytes: 1 });
    expect(() => parseBenchArgs(['--workload', 'rpc', '--reply-bytes', '0'])).toThrow(/--reply-bytes/);
    expect(rpc.models).toEqual(expect.arrayContaining(['prefork-flock', 'prethread-main', 'ref-prefork-pass', 'cluster-none']));
    expect(rpc.models).not.toContain('socat');
    expect(parseBenchArgs(['--workload', 'churn,rpc', '--models', 'fork,ref-fork'])!.config.models).toEqual(['fork', 'ref-fork']);
    expect(() => parseBenchArgs(['--workload', 'web'])).toThrow(/unknown workload 'web'/);
    expect(() => parseBenchArgs(['--workload', 'rpc', '--models', 'fork,socat'])).toThrow(/socat cannot serve rpc/);
    expect(() => parseBenchArgs(['--reply-bytes', '10'])).toThrow(/--reply-bytes applies only with --workload rpc/);
    expect(() => parseBenchArgs(['--workload', 'rpc', '--reply-bytes', '1048577'])).toThrow(/--reply-bytes/);
    expect(() => parseBenchArgs(['--sustained', '--workload', 'rpc'])).toThrow(/--workload does not apply with --sustained/);
  });

  test('bench --target HOST:PORT[,…] and --target-pid PID[,…]: servers already running join the comparison', () => {
    const one = parseBenchArgs(['--target', '127.0.0.1:9000'])!.config;
    expect(one.targets).toEqual([{ name: '127.0.0.1:9000', host: '127.0.0.1', port: 9000 }]);
    const two = parseBenchArgs([
      '--target',
      '127.0.0.1:9000,[::1]:9001',
      '--target-pid',
      `${process.pid},${process.pid}`,
    ])!.config;
    expect(two.targets).toEqual([
      { name: '127.0.0.1:9000', host: '127.0.0.1', port: 9000, pid: process.pid },
      { name: '[::1]:9001', host: '::1', port: 9001, pid: process.pid },
    ]);
    expect(parseBenchArgs([])!.config.targets).toBeUndefined();
    expect(() => parseBenchArgs(['--target', 'localhost:9000'])).toThrow(/--target takes HOST:PORT.*got 'localhost:9000'/);
    expect(() => parseBenchArgs(['--target', '127.0.0.1'])).toThrow(/--target takes HOST:PORT/);
    expect(() => parseBenchArgs(['--target', '::1:9000'])).toThrow(/an IPv6 one in brackets/);
    expect(() => parseBenchArgs(['--target', '127.0.0.1:0'])).toThrow(/a port 1\.\.65535/);
    expect(() => parseBenchArgs(['--target', '127.0.0.1:9,127.0.0.1:9'])).toThrow(/--target names 127\.0\.0\.1:9 twice/);
    expect(() => parseBenchArgs(['--target-pid', '1'])).toThrow(/--target-pid applies only with --target/);
    expect(() => parseBenchArgs(['--target', '127.0.0.1:9', '--target-pid', '1,2'])).toThrow(/one PID per --target \(1\), got 2/);
    expect(() => parseBenchArgs(['--target', '127.0.0.1:9', '--target-pid', 'abc'])).toThrow(/--target-pid takes process ids/);
    expect(() => parseBenchArgs(['--sustained', '--target', '127.0.0.1:9'])).toThrow(/--target does not apply with --sustained/);
  });

  test('bench --sustained flags: its own defaults, one connection count, no comparison-only flags', () => {
    expect(parseBenchArgs(['--sustained'])!.sustained).toEqual({
      models: ['fork', 'thread', 'node', 'cluster', 'ref-fork', 'ref-thread', 'ref-epoll'],
      connections: 50,
      size: 64,
      durationMs: 2000,
      rounds: 10,
    });
    expect(
      parseBenchArgs(['--sustained', '--rounds', '4', '--connections=8', '--duration', '0.5', '--models', 'fork,ref-fork'])!
        .sustained,
    ).toEqual({ models: ['fork', 'ref-fork'], connections: 8, size: 64, durationMs: 500, rounds: 4 });
    expect(parseBenchArgs([])!.sustained).toBeUndefined();
    expect(() => parseBenchArgs(['--rounds', '3'])).toThrow(/--rounds applies only with --sustained/);
    expect(() => parseBenchArgs(['--sustained', '--rounds', '1'])).toThrow(/--rounds must be at least 2/);
    expect(() => parseBenchArgs(['--sustained', '--connections', '1,50'])).toThrow(/--connections takes one number/);
    expect(() => parseBenchArgs(['--sustained', '--repeat', '2'])).toThrow(/--repeat does not apply with --sustained/);
  });
});

describe.each(['fork', 'thread', 'iterative', 'node', 'cluster', 'prefork', 'reuseport', 'prethread', 'epoll', 'uring'])(
  'posix-servers serve --model %s --json',
  (model) => {
    test('listens, reports what clients do, and closes on SIGTERM with the final stats', async () => {
      const pool = ['cluster', 'prefork', 'reuseport', 'prethread'].includes(model);
      const r = start(['serve', '--model', model, '--port', '0', '--json', ...(pool ? ['--workers', '2'] : [])]);
      await waitFor(() => r.out.length >= 1, 10000, 'the listening line');
      const listening = JSON.parse(r.out[0]);
      expect(listening).toMatchObject({ event: 'listening', model, address: '127.0.0.1' });
      expect(listening.port).toBeGreaterThan(0);
      expect((await exchange(listening.port, Buffer.from('via the cli'))).toString()).toBe('via the cli');
      const events = () => r.out.slice(1).map((l) => JSON.parse(l));
      await waitFor(() => events().some((e) => e.event === 'disconnect'), 5000, 'disconnect line');
      if (model === 'fork') await waitFor(() => events().some((e) => e.event === 'reap'), 5000, 'reap line');
      const conn = events().find((e) => e.event === 'connection');
      expect(conn).toMatchObject({ id: 1, peer: { address: '127.0.0.1' } });
      if (model === 'fork') {
        expect(events().find((e) => e.event === 'reap')).toMatchObject({ pid: conn.pid, exitCode: 0 });
      }
      r.child.kill('SIGTERM');
      expect(await r.exit).toBe(0);
      const close = events().find((e) => e.event === 'close');
      expect(close.stats).toMatchObject({ accepted: 1, closed: 1, bytesIn: 11, bytesOut: 11 });
      if (model === 'fork' || model === 'prefork' || model === 'reuseport') expect(isAlive(listening.pid)).toBe(false); // the master is gone too
      if (model === 'prefork' || model === 'reuseport') {
        expect(conn).toMatchObject({ worker: expect.any(Number), pid: expect.any(Number) });
        expect(close.stats.perWorker).toHaveLength(2);
        expect(close.stats.reaped).toBe(2); // both workers left at close and were waited for
        expect(isAlive(conn.pid)).toBe(false);
      }
      if (model === 'cluster') {
        expect(close.stats.reaped).toBe(2); // both workers exited and were waited for
        expect(isAlive(conn.pid)).toBe(false);
      }
      if (pool) {
        expect([0, 1]).toContain(conn.worker);
        expect(close.stats.perWorker).toHaveLength(2);
        expect(close.stats.perWorker[conn.worker]).toBe(1);
      }
      expect(r.err).toEqual([]);
    });
  },
);

describe('posix-servers as inetd', () => {
  test('serve --exec --json -- /bin/cat: the program echoes; reap carries its exit code', async () => {
    const mark = new ServerProcessMark();
    try {
      const r = start(['serve', '--exec', '--json', '--', '/bin/cat'], { ...process.env });
      await waitFor(() => r.out.length >= 1, 10000, 'the listening line');
      const { port: p } = JSON.parse(r.out[0]);
      expect((await exchange(p, Buffer.from('cat via the cli'))).toString()).toBe('cat via the cli');
      const events = () => r.out.slice(1).map((l) => JSON.parse(l));
      await waitFor(() => events().some((e) => e.event === 'reap'), 5000, 'reap line');
      expect(events().find((e) => e.event === 'reap')).toMatchObject({ exitCode: 0, signal: null });
      expect(mark.scan().length).toBeGreaterThanOrEqual(1); // the master (its programs have exited)
      r.child.kill('SIGTERM');
      expect(await r.exit).toBe(0);
      await mark.expectNoneLeft();
    } finally {
      mark.dispose();
    }
  });

  test('serve --max-clients 1 --when-full wait: the second client waits in the listen backlog, as under tcpserver -c 1', async () => {
    const r = start(['serve', '--max-clients', '1', '--when-full', 'wait', '--json']);
    await waitFor(() => r.out.length >= 1, 10000, 'the listening line');
    const { port: p } = JSON.parse(r.out[0]);
    const queued = () => listenQueue(p).queued;
    const first = await Client.open(p);
    expect((await first.echo('one')).toString()).toBe('one');
    const second = await Client.open(p);
    second.sock.write('two');
    await waitFor(() => queued() === 1, 5000, 'the second client in the backlog');
    expect(await second.silentFor(200)).toBe(true);
    first.end();
    expect((await second.read(3)).toString()).toBe('two');
    first.destroy();
    second.destroy();
    r.child.kill('SIGTERM');
    expect(await r.exit).toBe(0);
    expect(r.out.some((l) => JSON.parse(l).event === 'reject')).toBe(false);
  });

  test('serve --handler chargen --deny 127.0.0.2: RFC 864 lines for 127.0.0.1, a refusal for 127.0.0.2', async () => {
    const r = start(['serve', '--handler', 'chargen', '--deny', '127.0.0.2', '--model', 'thread']);
    await waitFor(() => r.out.length >= 2, 10000, 'two lines');
    const p = Number(/:(\d+) /.exec(r.out[0])![1]);
    const c = await Client.open(p);
    expect((await c.read(74)).toString('latin1')).toBe(
      `${Array.from({ length: 72 }, (_, i) => String.fromCharCode(32 + i)).join('')}\r\n`,
    );
    c.destroy();
    const refused = await Client.open(p, 2000, '127.0.0.1', '127.0.0.2');
    await refused.closedByPeer();
    refused.destroy();
    await waitFor(() => r.out.some((l) => l.includes('denied')), 5000, 'the reject line');
    expect(r.out).toContain(`reject #2 from 127.0.0.2:${refused.localPort}: denied`);
    r.child.kill('SIGINT');
    expect(await r.exit).toBe(0);
  });
});

describe('serve in human-readable form', () => {
  test('says where it listens and how to connect; SIGINT closes it', async () => {
    const r = start(['serve', '--model', 'thread', '--port', '0']);
    await waitFor(() => r.out.length >= 2, 10000, 'two lines');
    const m = /^thread server listening on 127\.0\.0\.1:(\d+) \(pid (\d+)\)$/.exec(r.out[0]);
    expect(m).not.toBeNull();
    expect(Number(m![2])).toBe(r.child.pid);
    expect(r.out[1]).toBe(`connect with: nc 127.0.0.1 ${m![1]}`);
    await exchange(Number(m![1]), Buffer.from('hi'));
    await waitFor(() => r.out.some((l) => l.startsWith('disconnect #1')), 5000, 'disconnect line');
    expect(r.out).toContain('disconnect #1: 2 bytes in, 2 bytes out (end)');
    r.child.kill('SIGINT');
    expect(await r.exit).toBe(0);
    expect(r.out[r.out.length - 1]).toMatch(/^closed: accepted 1, rejected 0, closed 1/);
  });
});

describe('errors: one line on stderr, exit code 1', () => {
  test('a bad flag', async () => {
    const r = start(['serve', '--model', 'nope']);
    expect(await r.exit).toBe(1);
    expect(r.err).toEqual([expect.stringMatching(/^posix-servers: --model must be one of .* got 'nope'$/)]);
    expect(r.out).toEqual([]);
  });

  test('a port in use: EADDRINUSE', async () => {
    const taken = createServer();
    await new Promise<void>((res) => taken.listen(0, '127.0.0.1', () => res()));
    const p = (taken.address() as { port: number }).port;
    try {
      const r = start(['serve', '--model', 'fork', '--port', String(p)]);
      expect(await r.exit).toBe(1);
      expect(r.err).toEqual([`posix-servers: bind EADDRINUSE: address already in use 127.0.0.1:${p}`]);
    } finally {
      await new Promise<void>((res) => taken.close(() => res()));
    }
  });

  test('an unknown command', async () => {
    const r = start(['frobnicate']);
    expect(await r.exit).toBe(1);
    expect(r.err).toEqual([expect.stringContaining("unknown command 'frobnicate'")]);
  });

  test('help exits 0', async () => {
    const r = start(['help']);
    expect(await r.exit).toBe(0);
    expect(r.out.join('\n')).toContain('posix-servers <command> --help');
  });

  test('a command that needs the addon, where it cannot load: one line naming it', async () => {
    const r = start(['serve', '--model', 'thread'], { ...process.env, POSIX_SERVERS_ADDON: MISSING_ADDON });
    expect(await r.exit).toBe(1);
    expect(r.err).toEqual([
      expect.stringMatching(/^posix-servers: the native addon of posix-servers could not be loaded: .*nowhere/),
    ]);
    expect(r.out).toEqual([]);
  });
});

// --help and --version never load the addon: they work where it cannot load.
const MISSING_ADDON = join(tmpdir(), 'nowhere', 'posix_servers.node');
const withoutAddon = { ...process.env, POSIX_SERVERS_ADDON: MISSING_ADDON };
const VERSION = (JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;

describe('--version and --help, without the addon', () => {
  test.each([['--version'], ['-v']])('%s prints the version', async (flag) => {
    const r = start([flag], withoutAddon);
    expect(await r.exit).toBe(0);
    expect({ out: r.out, err: r.err }).toEqual({ out: [VERSION], err: [] });
  });

  test.each([[['--help']], [['-h']], [[]]])('%j lists the commands', async (argv: string[]) => {
    const r = start(argv, withoutAddon);
    expect(await r.exit).toBe(0);
    const text = r.out.join('\n');
    for (const c of [SERVE, BENCH, LAB]) expect(text).toContain(`  ${c.name.padEnd(5)}  ${c.summary}\n`);
    expect(r.err).toEqual([]);
  });

  const commands: Array<[string, Command]> = [
    ['serve', SERVE],
    ['bench', BENCH],
    ['lab', LAB],
  ];
  describe.each(commands)('%s', (name, command) => {
    test.each([['--help'], ['-h']])(`${name} %s prints every flag of its table`, async (flag) => {
      const r = start([name, flag], withoutAddon);
      expect(await r.exit).toBe(0);
      const text = r.out.join('\n');
      expect(text).toContain(`Usage: posix-servers ${name}`);
      for (const f of command.flags) expect(text).toContain(`--${f.name}`);
      expect(text).toMatch(/-h, --help/);
      expect(r.err).toEqual([]);
    });

    test(`help ${name} is the same text`, async () => {
      const [a, b] = [start(['help', name], withoutAddon), start([name, '--help'], withoutAddon)];
      expect([await a.exit, await b.exit]).toEqual([0, 0]);
      expect(a.out).toEqual(b.out);
    });
  });

  test('lab --help lists the labs, in their groups', async () => {
    const r = start(['lab', '--help'], withoutAddon);
    expect(await r.exit).toBe(0);
    expect(r.out.join('\n')).toMatch(/^ {4}zombies {3,}without reaping/m);
    expect(r.out.join('\n')).toMatch(/^ {2}The lecture, in its order:$/m);
  });
});

describe('output to a closed pipe', () => {
  test('posix-servers lab fork | head -1: ends quietly, exit 0, and leaves no server behind', async () => {
    const r = start(['lab', 'fork']);
    await waitFor(() => r.out.length >= 1, 15000, 'the first line');
    r.child.stdout.destroy(); // as head does after one line
    expect(await r.exit).toBe(0);
    expect(r.err).toEqual([]);
    // The fork master carries Node's pid on its command line (nodePid=…): none may remain.
    const masters = () =>
      readdirSync('/proc')
        .filter((d) => /^\d+$/.test(d))
        .filter((d) => {
          try {
            return readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(`nodePid=${r.child.pid}\0`) && isAlive(Number(d));
          } catch {
            return false;
          }
        });
    await waitFor(() => masters().length === 0, 5000, 'no fork master of the lab');
  });
});

describe('bench', () => {
  const quick = ['bench', '--models', 'thread,node', '--connections', '1', '--duration', '0.2', '--repeat', '1'];

  test('--json without a file: the report on stdout, the table on stderr', async () => {
    const r = start([...quick, '--json']);
    expect(await r.exit).toBe(0);
    const report = JSON.parse(r.out.join('\n')) as BenchReport;
    expect(report.rounds.map((x) => x.model)).toEqual(['thread', 'thread', 'node', 'node']);
    expect(report.interrupted).toBeUndefined();
    expect(r.err.join('\n')).toMatch(/^thread\s+1\s/m);
  });

  test('progress counts the runs and gives an ETA; SIGINT writes what was measured, exit 130', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-interrupt-'));
    const json = join(dir, 'report.json');
    // 3 rounds × 2 models × (one ping-pong width + churn) = 12 runs of 1 s.
    const r = start([
      'bench',
      '--models',
      'thread,node',
      '--connections',
      '1',
      '--duration',
      '1',
      '--repeat',
      '3',
      '--json',
      json,
    ]);
    await waitFor(() => r.err.some((l) => / · run 3\/12 · /.test(l)), 30000, 'two runs done');
    expect(r.err[0]).toMatch(/^round 1\/3 · thread · run 1\/12 · \d+ s elapsed · ETA \d+ s$/);
    r.child.kill('SIGINT');
    const started = Date.now();
    expect(await r.exit).toBe(130);
    expect(Date.now() - started).toBeLessThan(8000); // stops at once: no waiting for the remaining runs
    const report = JSON.parse(readFileSync(json, 'utf8')) as BenchReport;
    expect(report.interrupted).toEqual({ completedRuns: report.rounds.length, totalRuns: 12 });
    expect(report.rounds.length).toBeGreaterThanOrEqual(2);
    expect(report.rounds.length).toBeLessThan(12);
    expect(r.out.join('\n')).toMatch(/^interrupted: \d+ of 12 runs completed/m);
    expect(r.err).toContain('posix-servers bench: interrupted; writing what was measured so far');
  });
});
