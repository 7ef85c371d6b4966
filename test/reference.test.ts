// The reference C servers (ref/*.c): real processes, real sockets, and /proc to see what is left.
import { readFileSync } from 'node:fs';
import { connect, createServer, Server as NetServer } from 'node:net';
import {
  REFERENCE_LOCKS,
  REFERENCE_MODELS,
  REFERENCE_POOLS,
  ReferenceModel,
  ReferenceOptions,
  ReferenceServer,
  startReference,
} from '../lib/bench/reference';
import { readStat } from '../lib/util/proc';
import { chargenPrefix, Client, childrenOf, exchange, random, timeWaitsAfterLoad, waitFor, zombiesOf } from './helpers';

const CONCURRENT: ReferenceModel[] = ['fork', 'thread', 'epoll', 'uring', 'prefork', 'reuseport', 'prethread'];
/** Pools whose every member serves one client at a time (prefork's children, prethread's threads). */
const ONE_AT_A_TIME_POOLS: readonly ReferenceModel[] = ['prefork', 'prethread'];
/** Pools of processes (prethread's pool is of threads). */
const PROCESS_POOLS: readonly ReferenceModel[] = ['prefork', 'reuseport'];

/** Threads of a process, from /proc/<pid>/status. */
const threadsOf = (pid: number) => Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

/** Pool references get `workers` children (a prefork child serves one client at a time). */
const optsFor = (model: ReferenceModel, workers: number, extra: ReferenceOptions = {}): ReferenceOptions =>
  REFERENCE_POOLS.includes(model) ? { workers, ...extra } : extra;

function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

describe.each(REFERENCE_MODELS)('ref-%s', (model) => {
  let server: ReferenceServer | undefined;

  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  test('echoes a 100 KB random payload byte for byte', async () => {
    server = await startReference(model, optsFor(model, 2));
    expect(server.port).toBeGreaterThan(0);
    const payload = random(100 * 1024);
    const reply = await exchange(server.port, payload);
    expect(reply.length).toBe(payload.length);
    expect(reply.equals(payload)).toBe(true);
  });

  test('handler upper turns a–z into A–Z and leaves every other byte alone', async () => {
    server = await startReference(model, optsFor(model, 2, { handler: 'upper' }));
    const payload = Buffer.concat([Buffer.from('hello, World! {a-z}\n'), random(4096)]);
    const expected = Buffer.from(payload.map((b) => (b >= 0x61 && b <= 0x7a ? b - 0x20 : b)));
    expect((await exchange(server.port, payload)).equals(expected)).toBe(true);
  });

  test("handler rpc (UNP's web_child): each line's size from chargen's stream, pipelined lines and CR LF too, until the client closes; a refused line ends it", async () => {
    server = await startReference(model, optsFor(model, 2, { handler: 'rpc' }));
    for (const n of [1, 4000, 16384]) expect((await exchange(server.port, `${n}\n`)).equals(chargenPrefix(n))).toBe(true);
    const both = Buffer.concat([chargenPrefix(10), chargenPrefix(20)]);
    expect((await exchange(server.port, '10\n20\n')).equals(both)).toBe(true);
    expect((await exchange(server.port, '4000\r\n')).equals(chargenPrefix(4000))).toBe(true);
    expect((await exchange(server.port, '12')).equals(chargenPrefix(12))).toBe(true); // the EOF ends the line
    for (const bad of ['abc\n', '0\n', '00\n', '16385\n', '\n', '\r\n', '5\r5\n'])
      expect((await exchange(server.port, bad)).length).toBe(0);
    expect((await exchange(server.port, '3\n0\n7\n')).equals(chargenPrefix(3))).toBe(true);
    // The connection stays open between requests: the client closes first.
    const c = await Client.open(server.port);
    c.sock.write('74\n');
    expect((await c.read(74)).equals(chargenPrefix(74))).toBe(true);
    expect(await c.silentFor(100)).toBe(true);
    c.end();
    await c.closedByPeer(2000);
    c.destroy();
  });

  test("handler rpc: --rpc-max-bytes moves the bound; UNP's client (the load generator's rpc mode) leaves the TIME_WAIT sockets on its own side", async () => {
    server = await startReference(model, optsFor(model, 4, { handler: 'rpc', rpcMaxBytes: 1024 * 1024 }));
    expect((await exchange(server.port, `${1024 * 1024}\n`)).equals(chargenPrefix(1024 * 1024))).toBe(true);
    expect((await exchange(server.port, `${1024 * 1024 + 1}\n`)).length).toBe(0);
    // The load in a network namespace of its own, whose TIME_WAIT table nothing else fills
    // (helpers: inOwnNetwork); every child (fork) or connection (the others) has read the client's
    // EOF and closed before the table is read.
    const left = await timeWaitsAfterLoad(
      { reference: model, options: optsFor(model, 4, { handler: 'rpc', rpcMaxBytes: 1024 * 1024 }) },
      { mode: 'rpc', connections: 2, size: 4000, durationMs: 300 },
    );
    expect(left.load.messages).toBeGreaterThan(0);
    expect(left.load).toMatchObject({ errors: 0, resets: 0, verifyFailures: 0 });
    expect(left.server).toEqual([]);
    expect(left.client.length).toBeGreaterThan(0);
  }, 120000);

  test('close() ends the process, its children and the port; no zombie is left', async () => {
    server = await startReference(model, optsFor(model, 4));
    const { pid, port } = server;
    // Short connections first: a fork server's finished children must be reaped as they end.
    await Promise.all(Array.from({ length: 10 }, (_, i) => exchange(port, Buffer.from(`short ${i}`))));
    // Then connections still open at close().
    const held = model === 'iterative' ? [await Client.open(port)] : await Promise.all([1, 2, 3].map(() => Client.open(port)));
    for (const c of held) expect((await c.echo('ping')).toString()).toBe('ping');
    if (model === 'fork') {
      await waitFor(() => zombiesOf(pid).length === 0, 2000, 'the SIGCHLD handler to reap the short children');
      expect(childrenOf(pid).filter((c) => c.state !== 'Z')).toHaveLength(3);
    } else if (PROCESS_POOLS.includes(model)) {
      expect(childrenOf(pid).filter((c) => c.state !== 'Z')).toHaveLength(4); // the pool, forked once
    } else if (model === 'prethread') {
      expect(childrenOf(pid)).toEqual([]);
      expect(threadsOf(pid)).toBe(1 + 4); // main + the pool, made once
    } else {
      expect(childrenOf(pid)).toEqual([]);
    }
    const kids = childrenOf(pid).map((c) => c.pid);

    await server.close();
    server = undefined;

    expect(readStat(pid)).toBeNull(); // exited and reaped by Node
    for (const k of kids) expect(readStat(k)).toBeNull(); // killed and reaped, not orphaned
    expect(zombiesOf(process.pid)).toEqual([]);
    expect(await refuses(port)).toBe(true);
    for (const c of held) {
      await c.closedByPeer(2000);
      c.destroy();
    }
  });
});

describe.each(CONCURRENT)('ref-%s serves clients concurrently', (model) => {
  test('20 clients, all connected at once, each echoed', async () => {
    const server = await startReference(model, optsFor(model, ONE_AT_A_TIME_POOLS.includes(model) ? 20 : 2));
    try {
      const pool = childrenOf(server.pid).map((c) => c.pid);
      const clients = await Promise.all(Array.from({ length: 20 }, () => Client.open(server.port)));
      // Every client is open before any is served: an iterative server would answer only the first.
      const replies = await Promise.all(clients.map((c, i) => c.echo(`client ${i} `.repeat(50))));
      replies.forEach((r, i) => expect(r.toString()).toBe(`client ${i} `.repeat(50)));
      if (model === 'fork') expect(childrenOf(server.pid).filter((c) => c.state !== 'Z')).toHaveLength(20);
      // A pool serves them all with the processes it forked at start: none per connection.
      if (REFERENCE_POOLS.includes(model)) expect(childrenOf(server.pid).map((c) => c.pid)).toEqual(pool);
      for (const c of clients) c.end();
      for (const c of clients) await c.closedByPeer(2000);
    } finally {
      await server.close();
    }
    expect(zombiesOf(process.pid)).toEqual([]);
  });
});

describe.each(['mutex', 'main'] as const)('ref-prethread --lock %s', (lock) => {
  test('a pool of 2: a third client waits (mutex: in the backlog; main: in the queue) until a thread is free; no thread is created for it', async () => {
    const server = await startReference('prethread', { workers: 2, lock });
    try {
      expect(threadsOf(server.pid)).toBe(3); // main + the pool
      const [a, b] = [await Client.open(server.port), await Client.open(server.port)];
      for (const c of [a, b]) expect((await c.echo('busy')).toString()).toBe('busy');
      const third = await Client.open(server.port);
      third.sock.write('wait');
      expect(await third.silentFor(300)).toBe(true);
      a.end();
      expect((await third.read(4)).toString()).toBe('wait');
      expect(threadsOf(server.pid)).toBe(3);
      for (const c of [b, third]) c.end();
    } finally {
      await server.close();
    }
  });
});

describe.each(REFERENCE_LOCKS)('ref-prefork --lock %s', (lock) => {
  test('3 children serve 6 clients, 3 at a time; the 4th waits in the backlog until one is free', async () => {
    const server = await startReference('prefork', { workers: 3, lock });
    try {
      const held = await Promise.all([1, 2, 3].map(() => Client.open(server.port)));
      for (const [i, c] of held.entries()) expect((await c.echo(`held ${i}`)).toString()).toBe(`held ${i}`);
      const waiting = await Client.open(server.port); // the kernel completed its handshake…
      waiting.sock.write('waiting');
      expect(await waiting.silentFor(300)).toBe(true); // …and nobody serves it while all 3 are busy
      held[0].end();
      expect((await waiting.read(7)).toString()).toBe('waiting');
      waiting.end();
      // Two more through the one child that is free again, in turn.
      const payloads = [1, 2].map(() => random(50 * 1024));
      const replies = await Promise.all(payloads.map((p) => exchange(server.port, p)));
      replies.forEach((r, i) => expect(r.equals(payloads[i])).toBe(true));
      for (const c of held) c.end();
    } finally {
      await server.close();
    }
    expect(zombiesOf(process.pid)).toEqual([]);
  });
});

describe.each([
  ...REFERENCE_LOCKS.map((lock) => ['prefork', lock] as const),
  ...(['mutex', 'main'] as const).map((lock) => ['prethread', lock] as const),
])('ref-%s --lock %s --handler rpc', (model, lock) => {
  test('3 clients at once each get their whole reply', async () => {
    const server = await startReference(model, { workers: 2, lock, handler: 'rpc' });
    try {
      const replies = await Promise.all([1, 2, 3].map(() => exchange(server.port, '4000\n')));
      for (const reply of replies) expect(reply.equals(chargenPrefix(4000))).toBe(true);
    } finally {
      await server.close();
    }
  });
});

describe('startReference() failures', () => {
  test('bad arguments are a TypeError or RangeError naming them', async () => {
    await expect(startReference('select' as ReferenceModel)).rejects.toThrow(TypeError);
    await expect(startReference('select' as ReferenceModel)).rejects.toThrow(/"model"/);
    await expect(startReference('epoll', { port: 70000 })).rejects.toThrow(RangeError);
    await expect(startReference('epoll', { host: 'localhost' })).rejects.toThrow(/"host"/);
    await expect(startReference('epoll', { handler: 'lower' as 'echo' })).rejects.toThrow(/"handler"/);
    await expect(startReference('epoll', { workers: 2 })).rejects.toThrow(/"workers" option applies only to the prefork/);
    await expect(startReference('reuseport', { lock: 'mutex' })).rejects.toThrow(/"lock" option applies only to the prefork/);
    await expect(startReference('prefork', { workers: 65 })).rejects.toThrow(RangeError);
    await expect(startReference('prefork', { lock: 'sem' as 'none' })).rejects.toThrow(/"lock" option must be one of/);
    await expect(startReference('prethread', { lock: 'flock' })).rejects.toThrow(/"lock" option must be one of 'mutex', 'main'/);
    await expect(startReference('prethread', { workers: 65 })).rejects.toThrow(RangeError);
    await expect(startReference('epoll', { rpcMaxBytes: 10 })).rejects.toThrow(
      /"rpcMaxBytes" option applies only with handler 'rpc'/,
    );
    await expect(startReference('epoll', { handler: 'rpc', rpcMaxBytes: 0 })).rejects.toThrow(RangeError);
  });

  test('a server that exits before listening rejects with its stderr', async () => {
    const taken: NetServer = await new Promise((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const port = (taken.address() as { port: number }).port;
      await expect(startReference('thread', { port })).rejects.toThrow(/exited before listening.*bind: Address already in use/);
    } finally {
      await new Promise<void>((r) => taken.close(() => r()));
    }
    expect(zombiesOf(process.pid)).toEqual([]);
  });
});
