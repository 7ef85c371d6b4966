// The native load generator against real servers: the reference C servers, the addon's own, and
// servers that misbehave on purpose (corrupting, silent).
import { spawnSync } from 'node:child_process';
import { createServer, Server as NetServer, Socket } from 'node:net';
import { join } from 'node:path';
import * as pkg from '../lib';
import { native } from '../lib/addon';
import { LoadResult, runLoad } from '../lib/bench/loadgen';
import { ReferenceServer, startReference } from '../lib/bench/reference';
import { PosixServer, startServer } from '../lib/server/server';
import { tasksOf } from '../lib/util/proc';
import { chargenPrefix, port, sleep, taskCount, waitFor } from './helpers';

function expectHealthy(r: LoadResult, size: number): void {
  expect(r.messages).toBeGreaterThan(0);
  expect(r.verifyFailures).toBe(0);
  expect(r.errors).toBe(0);
  expect(r.resets).toBe(0);
  expect(r.bytes).toBe(r.messages * size);
  expect(r.latencyUs.p50).toBeGreaterThan(0);
  expect(r.latencyUs.p50).toBeLessThanOrEqual(r.latencyUs.p90);
  expect(r.latencyUs.p90).toBeLessThanOrEqual(r.latencyUs.p99);
  expect(r.latencyUs.p99).toBeLessThanOrEqual(r.latencyUs.max);
  expect(r.latencyUs.mean).toBeGreaterThan(0);
  expect(r.latencyUs.mean).toBeLessThanOrEqual(r.latencyUs.max);
  expect(r.msgsPerSec).toBeCloseTo(r.messages / (r.durationMs / 1000), 6);
  expect(r.cpu.userMs + r.cpu.systemMs).toBeGreaterThan(0);
  // The generator's thread cannot have used more CPU than the wall-clock time it ran.
  expect(r.cpu.userMs + r.cpu.systemMs).toBeLessThanOrEqual(r.durationMs + 20);
}

describe('against ref-epoll', () => {
  let ref: ReferenceServer;
  beforeAll(async () => {
    ref = await startReference('epoll');
  });
  afterAll(() => ref.close());

  test('pingpong, 4 connections, 300 ms: every byte verified', async () => {
    const r = await runLoad({ mode: 'pingpong', port: ref.port, connections: 4, durationMs: 300 });
    expectHealthy(r, 64);
    expect(r).toMatchObject({ mode: 'pingpong', connections: 4, size: 64 });
    expect(r.connects).toBe(4);
    expect(r.durationMs).toBeGreaterThanOrEqual(300);
    expect(r.durationMs).toBeLessThan(1000);
  });

  test('churn, 4 clients, 300 ms: connects and echoes', async () => {
    const r = await runLoad({ mode: 'churn', port: ref.port, connections: 4, durationMs: 300 });
    expectHealthy(r, 64);
    expect(r.connects).toBeGreaterThan(0);
    expect(r.connects).toBe(r.messages); // one echo per connection
    expect(r.connsPerSec).toBeGreaterThan(0);
  });

  test('large messages (256 KiB) go out in pieces and still match', async () => {
    const size = 256 * 1024;
    const r = await runLoad({ mode: 'pingpong', port: ref.port, connections: 2, size, durationMs: 200 });
    expectHealthy(r, size);
    expect(r.mbPerSec).toBeGreaterThan(0);
  });

  test('runs on a thread of its own, joined before the promise resolves; the JS thread stays free', async () => {
    await runLoad({ mode: 'pingpong', port: ref.port, durationMs: 20 }); // warm-up
    const before = taskCount();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const run = runLoad({ mode: 'pingpong', port: ref.port, connections: 2, durationMs: 300 });
    await sleep(100);
    const during = taskCount();
    const r = await run;
    clearInterval(timer);
    expect(during).toBe(before + 1);
    expect(taskCount()).toBe(before);
    expect(ticks).toBeGreaterThanOrEqual(10); // timers kept firing during the run
    expect(r.messages).toBeGreaterThan(0);
  });
});

describe("against the addon's thread server", () => {
  let server: PosixServer;
  beforeAll(async () => {
    server = await startServer({ model: 'thread' });
  });
  afterAll(() => server.close());

  test('pingpong, 4 connections, 300 ms', async () => {
    const before = taskCount();
    const r = await runLoad({ mode: 'pingpong', port: port(server), connections: 4, durationMs: 300 });
    expectHealthy(r, 64);
    // Our thread is gone at once; the server's 4 workers leave as they see our connections close.
    await waitFor(() => taskCount() === before, 2000, 'the thread count to return to its baseline');
  });

  test('churn, 4 clients, 300 ms', async () => {
    const r = await runLoad({ mode: 'churn', port: port(server), connections: 4, durationMs: 300 });
    expectHealthy(r, 64);
    expect(r.connects).toBeGreaterThan(0);
  });
});

describe('eof mode: servers that speak first and hang up', () => {
  test('time (RFC 868): each cycle is connect, 4 bytes, EOF; bytes are what the server sent', async () => {
    const time = await startServer({ model: 'thread', handler: 'time' });
    try {
      const r = await runLoad({ mode: 'eof', port: port(time), connections: 4, durationMs: 300 });
      expect(r.errors + r.resets).toBe(0);
      expect(r.messages).toBeGreaterThan(0);
      expect(r.bytes).toBe(r.messages * 4);
      expect(r.connects).toBeGreaterThanOrEqual(r.messages);
      await waitFor(() => time.stats().closed === r.connects, 5000, 'every connection to be closed');
      expect(time.stats()).toMatchObject({ accepted: r.connects, bytesIn: 0, bytesOut: r.connects * 4 });
    } finally {
      await time.close();
    }
  });

  test('a server that never closes: the cycles stall and count as errors', async () => {
    const echo = await startServer({ model: 'thread' });
    try {
      const r = await runLoad({ mode: 'eof', port: port(echo), connections: 2, durationMs: 100 });
      expect(r.messages).toBe(0);
      expect(r.errors).toBeGreaterThanOrEqual(2);
    } finally {
      await echo.close({ timeoutMs: 0 });
    }
  });
});

describe('byte verification', () => {
  let upper: PosixServer;
  beforeAll(async () => {
    upper = await startServer({ model: 'thread', handler: 'upper' });
  });
  afterAll(() => upper.close());

  test("expect 'echo' against an upper-casing server: every message fails", async () => {
    const r = await runLoad({ mode: 'pingpong', port: port(upper), connections: 4, durationMs: 300, expect: 'echo' });
    expect(r.verifyFailures).toBeGreaterThan(0);
    expect(r.messages).toBe(0);
    expect(r.connects).toBeGreaterThan(4); // each failed connection was replaced
  });

  test('even 1-byte messages carry a lowercase letter to catch it', async () => {
    const r = await runLoad({ mode: 'churn', port: port(upper), connections: 2, size: 1, durationMs: 100 });
    expect(r.verifyFailures).toBeGreaterThan(0);
    expect(r.messages).toBe(0);
  });

  test("expect 'upper' against it: no failure", async () => {
    for (const mode of ['pingpong', 'churn'] as const) {
      const r = await runLoad({ mode, port: port(upper), connections: 4, durationMs: 200, expect: 'upper' });
      expectHealthy(r, 64);
    }
  });
});

describe('a server that accepts and never answers', () => {
  let silent: NetServer;
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    silent = createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
  });

  test.each(['pingpong', 'churn'] as const)('%s: the run ends by durationMs + 2 s, stalls counted as errors', async (mode) => {
    const before = taskCount();
    const started = Date.now();
    const r = await runLoad({
      mode,
      port: (silent.address() as { port: number }).port,
      connections: 3,
      durationMs: 300,
    });
    const elapsed = Date.now() - started;
    expect(elapsed).toBeLessThan(300 + 2000);
    expect(r.durationMs).toBeLessThan(300 + 2000);
    expect(r.messages).toBe(0);
    expect(r.connects).toBe(3);
    expect(r.errors).toBe(3);
    // The load thread is joined and gone when the promise resolves. (The process's task count can
    // fall meanwhile: a thread of an earlier test may still have been on its way out at `before`.)
    expect(tasksOf('self').filter((t) => t.name === native.constants.threadNames.loadgen)).toEqual([]);
    expect(taskCount()).toBeLessThanOrEqual(before);
  });
});

test('a refused port counts connect errors and still ends on time', async () => {
  const free: NetServer = createServer();
  await new Promise<void>((r) => free.listen(0, '127.0.0.1', () => r()));
  const p = (free.address() as { port: number }).port;
  await new Promise<void>((r) => free.close(() => r()));
  const r = await runLoad({ mode: 'pingpong', port: p, connections: 2, durationMs: 100 });
  expect(r.connects).toBe(0);
  expect(r.errors).toBeGreaterThan(2);
  expect(r.errors).toBeLessThan(200); // failed connects are retried after a pause, not in a busy loop
  expect(r.durationMs).toBeLessThan(500);
});

describe("rpc mode: UNP ch. 30's client against the rpc handler", () => {
  test.each([
    ['the thread model', 'thread'],
    ['the epoll model', 'epoll'],
  ] as const)('%s: 4 clients, 4000-byte replies, every byte checked; the server books agree', async (_what, model) => {
    const server = await startServer({ model, handler: 'rpc' });
    try {
      const before = taskCount();
      const r = await runLoad({ mode: 'rpc', port: port(server), connections: 4, size: 4000, durationMs: 300 });
      expectHealthy(r, 4000);
      expect(r.connects).toBe(r.messages); // every connection made was one whole exchange
      await waitFor(() => server.stats().closed === r.connects, 5000, 'every connection to be closed');
      expect(server.stats()).toMatchObject({ accepted: r.connects, bytesIn: r.connects * 5, bytesOut: r.connects * 4000 });
      await waitFor(() => taskCount() <= before, 2000, 'the load thread to be gone');
    } finally {
      await server.close();
    }
  });

  test("the C reference: a request over its bound (UNP's MAXN, 16384) is refused, closed without a reply: each a reset", async () => {
    const ref = await startReference('epoll', { handler: 'rpc' });
    try {
      const r = await runLoad({ mode: 'rpc', port: ref.port, connections: 2, size: 16385, durationMs: 200 });
      expect(r.messages).toBe(0);
      expect(r.resets).toBeGreaterThan(0);
      expect(r.verifyFailures).toBe(0);
      expect(r.bytes).toBe(0);
    } finally {
      await ref.close();
    }
  });

  test('the client closes first, after exactly the reply: a server that would send a second reply is never asked', async () => {
    // An rpc server that answers every line, and counts the EOFs it reads (the client's closes).
    let eofs = 0;
    const srv = createServer({ allowHalfOpen: true }, (s: Socket) => {
      s.on('data', (d) => {
        for (const line of d
          .toString()
          .split('\n')
          .filter((l) => l !== ''))
          s.write(chargenPrefix(Number(line)));
      });
      s.on('end', () => {
        eofs++;
        s.end();
      });
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    try {
      const p = (srv.address() as { port: number }).port;
      const r = await runLoad({ mode: 'rpc', port: p, connections: 2, size: 100, durationMs: 200 });
      expectHealthy(r, 100);
      await waitFor(() => eofs === r.connects, 2000, 'an EOF for every connection');
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });

  test('an echo server answers the request with the request: every reply fails verification', async () => {
    const echo = await startServer({ model: 'thread' });
    try {
      const r = await runLoad({ mode: 'rpc', port: port(echo), connections: 2, size: 4000, durationMs: 200 });
      expect(r.messages).toBe(0);
      expect(r.verifyFailures).toBeGreaterThan(0);
    } finally {
      await echo.close({ timeoutMs: 0 });
    }
  });

  test("expect 'any': the reply's bytes are counted, not checked, as for UNP's own servers (an uninitialised buffer); its length still is", async () => {
    // Answers each line with that many zero bytes (web_child's `result` array, as a fresh stack
    // page holds it), plus `extra`; closes when the client does.
    const make = (extra: number) =>
      createServer({ allowHalfOpen: true }, (s: Socket) => {
        s.on('data', (d) => {
          for (const line of d
            .toString()
            .split('\n')
            .filter((l) => l !== ''))
            s.write(Buffer.alloc(Number(line) + extra));
        });
        s.on('end', () => s.end());
        s.on('error', () => undefined);
      });
    for (const [extra, replies, field] of [
      [0, 'echo', 'verifyFailures'],
      [0, 'any', 'messages'],
      [1, 'any', 'verifyFailures'],
    ] as const) {
      const srv = make(extra);
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
      try {
        const p = (srv.address() as { port: number }).port;
        const r = await runLoad({ mode: 'rpc', port: p, connections: 2, size: 100, durationMs: 200, expect: replies });
        expect(r[field]).toBeGreaterThan(0);
        if (field === 'messages') expect(r.verifyFailures + r.errors + r.resets).toBe(0);
        else expect(r.messages).toBe(0);
      } finally {
        await new Promise<void>((r) => srv.close(() => r()));
      }
    }
  });

  test('a server that sends one byte too few, or one too many, is caught', async () => {
    const make = (delta: number) =>
      createServer((s: Socket) => {
        s.once('data', (d) => {
          const n = Number(d.toString().trim());
          s.end(chargenPrefix(n + delta));
        });
        s.on('error', () => undefined);
      });
    for (const [delta, field] of [
      [-1, 'resets'],
      [1, 'verifyFailures'],
    ] as const) {
      const srv = make(delta);
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
      try {
        const p = (srv.address() as { port: number }).port;
        const r = await runLoad({ mode: 'rpc', port: p, connections: 2, size: 100, durationMs: 200 });
        expect(r.messages).toBe(0);
        expect(r[field]).toBeGreaterThan(0);
      } finally {
        await new Promise<void>((r) => srv.close(() => r()));
      }
    }
  });
});

describe('bad options throw before anything starts', () => {
  const base = { mode: 'pingpong' as const, port: 9 };
  test.each([
    [{ ...base, mode: 'flood' }, TypeError, /"mode".*'flood'/],
    [{ mode: 'pingpong' }, TypeError, /"port".*undefined/],
    [{ ...base, port: 0 }, RangeError, /"port".*0/],
    [{ ...base, port: 65536 }, RangeError, /"port".*65536/],
    [{ ...base, port: '80' }, TypeError, /"port".*'80'/],
    [{ ...base, host: 'localhost' }, TypeError, /"host".*'localhost'/],
    [{ ...base, connections: 0 }, RangeError, /"connections".*0/],
    [{ ...base, connections: 10001 }, RangeError, /"connections".*10001/],
    [{ ...base, size: 0 }, RangeError, /"size".*0/],
    [{ ...base, size: 1024 * 1024 + 1 }, RangeError, /"size".*1048577/],
    [{ ...base, mode: 'rpc', size: 0 }, RangeError, /"size".*0/],
    [{ ...base, mode: 'rpc', size: 1024 * 1024 + 1 }, RangeError, /"size".*1048577/],
    [{ ...base, durationMs: 1.5 }, RangeError, /"durationMs".*1\.5/],
    [{ ...base, durationMs: 600001 }, RangeError, /"durationMs".*600001/],
    [{ ...base, expect: 'lower' }, TypeError, /"expect" .*'echo', 'upper', 'any'.*'lower'/],
    [{ ...base, conections: 2 }, TypeError, /Unknown option "conections"/],
    [null, TypeError, /"options".*null/],
  ])('%p', (options, type, message) => {
    const before = taskCount();
    expect(() => runLoad(options as never)).toThrow(type);
    expect(() => runLoad(options as never)).toThrow(message);
    expect(taskCount()).toBe(before);
  });
});

test("runLoad is the package's public API: its CommonJS and ES module entries export the same function", () => {
  expect(pkg.runLoad).toBe(runLoad);
  const esm = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { runLoad } from ${JSON.stringify(join(__dirname, '..', 'dist', 'index.mjs'))}; import { createRequire } from 'node:module';
       const cjs = createRequire(import.meta.url)(${JSON.stringify(join(__dirname, '..', 'dist', 'index.js'))});
       console.log(typeof runLoad, runLoad === cjs.runLoad);`,
    ],
    { encoding: 'utf8' },
  );
  expect(esm.stdout.trim()).toBe('function true');
});
