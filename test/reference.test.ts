// The reference C servers (ref/*.c): real processes, real sockets, and /proc to see what is left.
import { readFileSync } from 'node:fs';
import { connect, createServer, Server as NetServer } from 'node:net';
import { REFERENCE_MODELS, ReferenceModel, ReferenceOptions, ReferenceServer, startReference } from '../lib/bench/reference';
import { readStat } from '../lib/util/proc';
import { Client, childrenOf, exchange, random, waitFor, zombiesOf } from './helpers';

// The pools get a thread per client of the test: a client beyond the pool would wait in the backlog.
const CONCURRENT: Array<[string, ReferenceModel, ReferenceOptions]> = [
  ['fork', 'fork', {}],
  ['thread', 'thread', {}],
  ['epoll', 'epoll', {}],
  ['prethread --lock mutex', 'prethread', { workers: 20, lock: 'mutex' }],
  ['prethread --lock main', 'prethread', { workers: 20, lock: 'main' }],
];

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
    server = await startReference(model);
    expect(server.port).toBeGreaterThan(0);
    const payload = random(100 * 1024);
    const reply = await exchange(server.port, payload);
    expect(reply.length).toBe(payload.length);
    expect(reply.equals(payload)).toBe(true);
  });

  test('handler upper turns a–z into A–Z and leaves every other byte alone', async () => {
    server = await startReference(model, { handler: 'upper' });
    const payload = Buffer.concat([Buffer.from('hello, World! {a-z}\n'), random(4096)]);
    const expected = Buffer.from(payload.map((b) => (b >= 0x61 && b <= 0x7a ? b - 0x20 : b)));
    expect((await exchange(server.port, payload)).equals(expected)).toBe(true);
  });

  test('close() ends the process, its children and the port; no zombie is left', async () => {
    server = await startReference(model);
    const { pid, port } = server;
    // Short connections first: a fork server's finished children must be reaped as they end.
    await Promise.all(Array.from({ length: 10 }, (_, i) => exchange(port, Buffer.from(`short ${i}`))));
    // Then connections still open at close().
    const held = model === 'iterative' ? [await Client.open(port)] : await Promise.all([1, 2, 3].map(() => Client.open(port)));
    for (const c of held) expect((await c.echo('ping')).toString()).toBe('ping');
    if (model === 'fork') {
      await waitFor(() => zombiesOf(pid).length === 0, 2000, 'the SIGCHLD handler to reap the short children');
      expect(childrenOf(pid).filter((c) => c.state !== 'Z')).toHaveLength(3);
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

describe.each(CONCURRENT)('ref-%s serves clients concurrently', (_label, model, options) => {
  test('20 clients, all connected at once, each echoed', async () => {
    const server = await startReference(model, options);
    try {
      const clients = await Promise.all(Array.from({ length: 20 }, () => Client.open(server.port)));
      // Every client is open before any is served: an iterative server would answer only the first.
      const replies = await Promise.all(clients.map((c, i) => c.echo(`client ${i} `.repeat(50))));
      replies.forEach((r, i) => expect(r.toString()).toBe(`client ${i} `.repeat(50)));
      if (model === 'fork') expect(childrenOf(server.pid).filter((c) => c.state !== 'Z')).toHaveLength(20);
      for (const c of clients) c.end();
      for (const c of clients) await c.closedByPeer(2000);
    } finally {
      await server.close();
    }
    expect(zombiesOf(process.pid)).toEqual([]);
  });
});

describe.each(['mutex', 'main'])('ref-prethread --lock %s', (lock) => {
  test('a pool of 2: a third client waits (mutex: in the backlog; main: in the queue) until a thread is free; no thread is created for it', async () => {
    const server = await startReference('prethread', { workers: 2, lock });
    try {
      const threads = () => Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))![1]);
      expect(threads()).toBe(3); // main + the pool
      const [a, b] = [await Client.open(server.port), await Client.open(server.port)];
      for (const c of [a, b]) expect((await c.echo('busy')).toString()).toBe('busy');
      const third = await Client.open(server.port);
      third.sock.write('wait');
      expect(await third.silentFor(300)).toBe(true);
      a.end();
      expect((await third.read(4)).toString()).toBe('wait');
      expect(threads()).toBe(3);
      for (const c of [b, third]) c.end();
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
    await expect(startReference('epoll', { workers: 2 })).rejects.toThrow(
      /"workers" option applies only to the pool reference servers\. Received it for model 'epoll'/,
    );
    await expect(startReference('thread', { lock: 'mutex' })).rejects.toThrow(TypeError);
    await expect(startReference('prethread', { lock: 'flock' })).rejects.toThrow(/"lock" option must be one of 'mutex', 'main'/);
    await expect(startReference('prethread', { workers: 65 })).rejects.toThrow(RangeError);
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
