// What each design beyond the lecture must show (UNP ch. 30 and 6.8): the thread pool creates no
// thread per connection and counts per thread; a client beyond the pool waits; the event loop
// serves hundreds of clients on one thread, never waits for a slow one and times out the idle
// ones; cluster's 'none' policy lets every worker accept while the books stay exact.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { ConnectionEvent, DisconnectEvent, PosixServer, RejectEvent, startServer } from '../lib';
import { Client, childrenOf, exchange, port, random, readBytes, sleep, snapshot, waitFor } from './helpers';

let server: PosixServer | undefined;
afterEach(async () => {
  await server?.close({ timeoutMs: 0 });
  server = undefined;
});

const tids = () => readdirSync('/proc/self/task');

/** This process's threads with this name (comm); one that ends meanwhile is not counted. */
function threadsNamed(name: string): string[] {
  return tids().filter((t) => {
    try {
      return readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim() === name;
    } catch {
      return false;
    }
  });
}

/** Samples /proc/self/task every millisecond; stop() returns every thread seen that was not there at the start. */
function watchThreads(): { stop(): string[] } {
  const baseline = new Set(tids());
  const extra = new Set<string>();
  const sample = () => {
    for (const t of tids()) if (!baseline.has(t)) extra.add(t);
  };
  const timer = setInterval(sample, 1);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return [...extra];
    },
  };
}

function record(s: PosixServer) {
  const out = { connections: [] as ConnectionEvent[], disconnects: [] as DisconnectEvent[], rejects: [] as RejectEvent[] };
  s.on('connection', (c) => out.connections.push(c));
  s.on('disconnect', (d) => out.disconnects.push(d));
  s.on('reject', (r) => out.rejects.push(r));
  return out;
}

describe.each(['mutex', 'main'] as const)("prethread, acceptLock '%s'", (acceptLock) => {
  test('the pool serves 300 connections with the threads it had: no thread appears, counts per thread add up', async () => {
    const workers = 4;
    server = await startServer({ model: 'prethread', workers, acceptLock });
    const events = record(server);
    const p = port(server);
    // The pool is there before any client: `workers` threads named ps-pool (top -H shows them).
    expect(threadsNamed('ps-pool')).toHaveLength(workers);
    const watch = watchThreads();
    // Four clients held at once need four pool threads: each thread serves one at a time.
    const held = await Promise.all(Array.from({ length: workers }, () => Client.open(p)));
    for (const c of held) expect((await c.echo('held')).toString()).toBe('held');
    for (const c of held) c.end();
    let done = 0;
    const client = async () => {
      while (done < 300 - workers) {
        const msg = `short ${++done}`;
        expect((await exchange(p, msg)).toString()).toBe(msg);
      }
    };
    await Promise.all(Array.from({ length: 8 }, client));
    await waitFor(() => server!.stats().closed === 300, 5000, 'every connection closed');
    expect(watch.stop()).toEqual([]);
    const s = server.stats();
    expect(s).toMatchObject({ accepted: 300, closed: 300, active: 0, rejected: 0 });
    await waitFor(() => events.disconnects.length === 300, 5000, 'every disconnect');
    // Each connection names the pool thread that served it; the shared page counts the same.
    const perWorker = new Array<number>(workers).fill(0);
    for (const c of events.connections) perWorker[c.worker!]++;
    expect(s.perWorker).toEqual(perWorker);
    expect(s.perWorker.reduce((a, b) => a + b, 0)).toBe(300);
    const heldBy = events.connections.slice(0, workers).map((c) => c.worker);
    expect(new Set(heldBy).size).toBe(workers); // the four held ones: four different threads
    const byId = new Map(events.connections.map((c) => [c.id, c.worker]));
    for (const d of events.disconnects) expect(d.worker).toBe(byId.get(d.id));
  });

  test(`a client beyond the pool waits ${acceptLock === 'mutex' ? 'in the listen backlog' : 'in the hand-off queue'} until a thread is free`, async () => {
    server = await startServer({ model: 'prethread', workers: 2, acceptLock });
    const events = record(server);
    const p = port(server);
    const a = await Client.open(p);
    const b = await Client.open(p);
    expect((await a.echo('a')).toString()).toBe('a');
    expect((await b.echo('b')).toString()).toBe('b');
    const third = await Client.open(p); // the kernel completed the handshake
    third.sock.write('third');
    expect(await third.silentFor(300)).toBe(true); // nobody serves it while both threads are busy
    if (acceptLock === 'mutex') {
      // Nobody is in accept(): it sits in the backlog, not even accepted.
      expect(server.stats()).toMatchObject({ accepted: 2, active: 2 });
    } else {
      // The server thread accepted it and queued it: live (it holds a slot), not yet served.
      expect(server.stats()).toMatchObject({ accepted: 3, active: 3 });
    }
    // Two threads publish their records independently: the order of the two events is not the order of the ids.
    expect(events.connections.map((c) => c.id).sort()).toEqual([1, 2]);
    const freed = events.connections.find((c) => c.id === 1)!.worker;
    a.end();
    expect((await third.read(5)).toString()).toBe('third');
    await waitFor(() => events.connections.length === 3, 5000, 'the third connection');
    expect(events.connections[2]).toMatchObject({ id: 3, worker: freed }); // the thread a freed
    for (const c of [b, third]) c.end();
    await waitFor(() => server!.stats().closed === 3, 5000, 'all closed');
    expect(server.stats()).toMatchObject({ accepted: 3, closed: 3, active: 0, rejected: 0 });
  });
});

// strace -f sees every clone() of the process: between two marker calls, a fixture serves 40
// connections. The thread model, one thread per connection, is the control that shows the count
// is real.
const straceAvailable = spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;
(straceAvailable ? describe : describe.skip)('under strace -f', () => {
  const clonesDuring = (model: string, options: object): number => {
    const out = join(tmpdir(), `posix-servers-strace-${process.pid}-${model}.txt`);
    const script = join(__dirname, 'fixtures', 'clone-count.js');
    const r = spawnSync(
      'strace',
      [
        '-f',
        '-qq',
        '--seccomp-bpf',
        '-e',
        'trace=clone,clone3,statx',
        '-o',
        out,
        process.execPath,
        script,
        model,
        JSON.stringify(options),
        '40',
      ],
      { encoding: 'utf8', timeout: 30000 },
    );
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toMatchObject({ accepted: 41, closed: 41 });
    const lines = readFileSync(out, 'utf8').split('\n');
    rmSync(out, { force: true });
    const start = lines.findIndex((l) => l.includes('posix-servers-marker-start'));
    const end = lines.findIndex((l) => l.includes('posix-servers-marker-end'));
    expect(start).toBeGreaterThan(0);
    expect(end).toBeGreaterThan(start);
    return lines.slice(start, end).filter((l) => /\bclone3?\(/.test(l)).length;
  };

  test('thread: one clone() per connection; prethread (both locks), epoll and uring: none', () => {
    expect(clonesDuring('thread', {})).toBe(40);
    expect(clonesDuring('prethread', { workers: 2 })).toBe(0);
    expect(clonesDuring('prethread', { workers: 2, acceptLock: 'main' })).toBe(0);
    expect(clonesDuring('epoll', {})).toBe(0);
    expect(clonesDuring('uring', {})).toBe(0);
  });
});

// The two designs that serve every client on one thread: epoll's readiness loop and uring's
// completion loop (both of its receive kinds).
describe.each([
  ['epoll', 'epoll', {}],
  ['uring', 'uring', {}],
  ['uring (uringReceive single)', 'uring', { uringReceive: 'single' }],
] as Array<[string, 'epoll' | 'uring', object]>)('%s', (_label, model, extra) => {
  test('600 concurrent connections on one thread: all served at once, no thread appears', async () => {
    const before = snapshot();
    server = await startServer({ model, ...extra, maxClients: 1000 });
    const p = port(server);
    expect(snapshot().tasks).toBe(before.tasks + 2); // the one server thread (and the one that drains its events)
    const watch = watchThreads();
    const clients: Client[] = [];
    for (let i = 0; i < 6; i++) clients.push(...(await Promise.all(Array.from({ length: 100 }, () => Client.open(p)))));
    const payloads = clients.map(() => random(512));
    const echoes = await Promise.all(clients.map((c, i) => c.echo(payloads[i])));
    echoes.forEach((e, i) => expect(e.equals(payloads[i])).toBe(true));
    expect(server.stats().active).toBe(600);
    clients.forEach((c) => c.end());
    await Promise.all(clients.map((c) => c.closedByPeer()));
    await waitFor(() => server!.stats().closed === 600, 5000, 'all closed');
    expect(watch.stop()).toEqual([]);
    expect(server.stats()).toMatchObject({
      accepted: 600,
      closed: 600,
      active: 0,
      rejected: 0,
      bytesIn: 600 * 512,
      bytesOut: 600 * 512,
    });
  });

  test('a client that stops reading: the others are served, its reading stops at one buffer, its echo resumes intact', async () => {
    server = await startServer({ model, ...extra });
    const p = port(server);
    // A plain socket: chunks are kept in a list (16 MiB through Client's buffer would be slow).
    const stuck = connect(p, '127.0.0.1');
    await new Promise((resolve) => stuck.once('connect', resolve));
    stuck.pause();
    const payload = random(16 << 20);
    stuck.write(payload);
    // The socket buffers fill; then the server keeps what the client did not take and stops
    // reading it: bytesIn stops growing, well short of the payload.
    // Stopped: the count has not moved for 200 ms (a loaded machine may pause a loop for a few ms
    // while it still fills the socket buffers).
    let last = -1;
    let since = performance.now();
    await waitFor(
      () => {
        const now = server!.stats().bytesIn;
        if (now !== last) {
          last = now;
          since = performance.now();
        }
        return now > 0 && performance.now() - since >= 200;
      },
      10000,
      'the server to stop reading the stuck client',
    );
    await sleep(100);
    const s = server.stats();
    expect(s.bytesIn).toBe(last);
    expect(s.bytesIn).toBeLessThan(payload.length);
    // What it read but could not send is at most one read (64 KiB): backpressure, not buffering.
    expect(s.bytesIn - s.bytesOut).toBeGreaterThan(0);
    expect(s.bytesIn - s.bytesOut).toBeLessThanOrEqual(64 * 1024);
    // Nor does anything below the handler keep taking the client's bytes (uring: its receive is
    // cancelled): the kernel's buffers fill up and the client's own writes stall, Node still holding
    // what it could not write.
    expect(stuck.writableLength).toBeGreaterThan(0);
    // Everyone else is served meanwhile.
    for (let i = 0; i < 3; i++) expect((await exchange(p, `other ${i}`)).toString()).toBe(`other ${i}`);
    // The client reads again: the partial writes resume and every byte arrives, in order.
    expect((await readBytes(stuck, payload.length)).equals(payload)).toBe(true);
    const closed = new Promise((resolve) => stuck.once('close', resolve));
    stuck.end();
    await closed;
    await waitFor(() => server!.stats().closed === 4, 5000, 'all closed');
    expect(server.stats()).toMatchObject({ bytesIn: payload.length + 21, bytesOut: payload.length + 21 });
  });

  test('idle timeout: each connection is dropped idleTimeoutMs after its own last activity; an active one stays', async () => {
    const idle = 400;
    server = await startServer({ model, ...extra, idleTimeoutMs: idle });
    const events = record(server);
    const p = port(server);
    const a = await Client.open(p);
    const b = await Client.open(p);
    const c = await Client.open(p);
    // Taken before the echo: the server's last activity on each is after these.
    const aSent = performance.now();
    await a.echo('a');
    await sleep(200);
    const bSent = performance.now();
    await b.echo('b');
    // c talks every 100 ms for a second: its deadline keeps moving.
    for (let i = 0; i < 10; i++) {
      expect((await c.echo(`c${i}`)).toString()).toBe(`c${i}`);
      await sleep(100);
    }
    expect(a.closed && b.closed).toBe(true);
    expect(c.closed).toBe(false);
    const gone = events.disconnects.map((d) => [d.id, d.reason]);
    expect(gone).toEqual([
      [1, 'idle'],
      [2, 'idle'],
    ]);
    // Never early: each was dropped no sooner than the timeout after its last activity (the loop
    // keeps time in whole milliseconds: 1 ms of truncation).
    expect(a.closedAt! - aSent).toBeGreaterThanOrEqual(idle - 1);
    expect(b.closedAt! - bSent).toBeGreaterThanOrEqual(idle - 1);
    expect(b.closedAt!).toBeGreaterThan(a.closedAt!);
    c.end();
    await c.closedByPeer();
    await waitFor(() => events.disconnects.length === 3, 5000, 'c closed');
    expect(events.disconnects[2]).toMatchObject({ id: 3, reason: 'end', bytesIn: 20, bytesOut: 20 });
  });
});

describe("cluster, schedulingPolicy 'none'", () => {
  test('both workers accept on the shared socket and serve; counters and per-worker counts are exact', async () => {
    server = await startServer({ model: 'cluster', workers: 2, schedulingPolicy: 'none' });
    const events = record(server);
    const p = port(server);
    const workers = childrenOf(process.pid).map((k) => k.pid);
    expect(workers).toHaveLength(2);
    // Which worker accepts is the kernel's choice: bursts of concurrent clients reach both.
    let total = 0;
    for (let round = 0; round < 10 && new Set(events.connections.map((c) => c.pid)).size < 2; round++) {
      const clients = await Promise.all(Array.from({ length: 20 }, () => Client.open(p)));
      await Promise.all(clients.map((c, i) => c.echo(`round ${round} client ${i}`)));
      for (const c of clients) c.end();
      await Promise.all(clients.map((c) => c.closedByPeer()));
      total += clients.length;
    }
    await waitFor(() => events.disconnects.length === total, 5000, 'every disconnect');
    const pids = new Set(events.connections.map((c) => c.pid));
    expect(pids).toEqual(new Set(workers));
    const s = server.stats();
    expect(s).toMatchObject({ accepted: total, closed: total, active: 0, rejected: 0 });
    expect(s.accepted).toBe(s.closed + s.rejected + s.active);
    const perWorker = [0, 0];
    for (const c of events.connections) perWorker[c.worker!]++;
    expect(s.perWorker).toEqual(perWorker);
    expect(events.connections.map((c) => c.id).sort((x, y) => x - y)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  });

  test('past maxClients a worker accepts and the primary refuses: closed at once, reported, counted', async () => {
    server = await startServer({ model: 'cluster', workers: 2, schedulingPolicy: 'none', maxClients: 2 });
    const events = record(server);
    const p = port(server);
    const held = [await Client.open(p), await Client.open(p)];
    for (const c of held) expect((await c.echo('in')).toString()).toBe('in');
    const refused = await Client.open(p);
    refused.sock.write('me too?');
    await refused.closedByPeer();
    await waitFor(() => events.rejects.length === 1, 5000, 'the reject');
    expect(events.rejects[0]).toMatchObject({ id: 3, reason: 'max-clients', peer: { port: refused.localPort } });
    expect(server.stats()).toMatchObject({ accepted: 3, rejected: 1, active: 2 });
    // The refused one was accepted by a worker, so it counts for that worker too.
    expect(server.stats().perWorker.reduce((a, b) => a + b, 0)).toBe(3);
    for (const c of held) c.end();
    await waitFor(() => server!.stats().closed === 2, 5000, 'held closed');
    expect(server.stats()).toMatchObject({ accepted: 3, rejected: 1, closed: 2, active: 0 });
  });

  test('a killed worker: its connection ends as crash, a new worker gets the listening socket and accepts', async () => {
    server = await startServer({ model: 'cluster', workers: 2, schedulingPolicy: 'none' });
    const events = record(server);
    const p = port(server);
    const victim = await Client.open(p);
    await victim.echo('x');
    const before = childrenOf(process.pid).map((k) => k.pid);
    const dead = events.connections[0];
    process.kill(dead.pid!, 'SIGKILL');
    await victim.closedByPeer(3000);
    await waitFor(() => events.disconnects.length === 1, 5000, 'the crash');
    expect(events.disconnects[0]).toMatchObject({ id: 1, reason: 'crash', pid: dead.pid, worker: dead.worker });
    await waitFor(() => childrenOf(process.pid).filter((k) => k.state !== 'Z').length === 2, 5000, 'a new worker');
    const replacement = childrenOf(process.pid).find((k) => !before.includes(k.pid))!.pid;
    // Bursts until the replacement has accepted (it listens once it has started: up to 5 s).
    for (let round = 0; round < 50 && !events.connections.some((c) => c.pid === replacement); round++) {
      const clients = await Promise.all(Array.from({ length: 10 }, () => Client.open(p)));
      await Promise.all(clients.map((c) => c.echo('again')));
      for (const c of clients) c.end();
      await Promise.all(clients.map((c) => c.closedByPeer()));
      await sleep(50);
    }
    const served = events.connections.find((c) => c.pid === replacement)!;
    expect(served.worker).toBe(dead.worker); // it took the dead worker's place in the pool
    const total = events.connections.length;
    await waitFor(() => server!.stats().closed === total, 5000, 'every connection closed');
    expect(server.stats()).toMatchObject({ accepted: total, rejected: 0, active: 0, reaped: 1 });
  });

  test('a port in use: the primary cannot bind, EADDRINUSE from bind (as node:cluster reports it), nothing forked', async () => {
    const taken = await startServer({ model: 'epoll' });
    try {
      const before = snapshot();
      const err = await startServer({ model: 'cluster', workers: 2, schedulingPolicy: 'none', port: port(taken) }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind', port: port(taken) });
      expect(snapshot()).toEqual(before);
    } finally {
      await taken.close();
    }
  });
});
