// The trace and the lab switches: the lecture's points, observed on real calls.
import { PosixServer, startServer, TraceEvent } from '../lib';
import { Client, exchange, port, sleep, waitFor, zombiesOf } from './helpers';

let server: PosixServer | undefined;
afterEach(async () => {
  await server?.close({ timeoutMs: 0 });
  server = undefined;
});

function collect(s: PosixServer): TraceEvent[] {
  const out: TraceEvent[] = [];
  s.on('trace', (t) => out.push(t));
  return out;
}

describe('trace', () => {
  test('a fork server with two clients: socket, bind, listen, accept×2, fork×2, reap×2, causally ordered', async () => {
    server = await startServer({ model: 'fork', trace: true });
    const trace = collect(server);
    const reaps: number[] = [];
    server.on('reap', (r) => reaps.push(r.pid));
    for (const text of ['one', 'two']) expect((await exchange(port(server), Buffer.from(text))).toString()).toBe(text);
    await waitFor(() => reaps.length === 2, 5000, 'two reaps');
    await waitFor(() => trace.filter((t) => t.call === 'waitpid').length === 2, 5000, 'two waitpid traces');

    // socket → bind → listen happened in Node's process; the exec'd master has the same socket at
    // fd 3 (execve keeps descriptors), and accepts on that.
    const startup = server.startupTrace;
    const master = server.pid;
    expect(startup.map((t) => t.call)).toEqual(['socket', 'bind', 'listen', 'exec']);
    const nodeLfd = startup[0].result;
    expect(startup.slice(0, 3).every((t) => t.pid === process.pid)).toBe(true);
    expect(startup[1]).toMatchObject({ fd: nodeLfd, address: { address: '127.0.0.1', port: port(server) } });
    expect(startup[2]).toMatchObject({ fd: nodeLfd, result: 511 });
    expect(startup[3]).toMatchObject({ pid: master, fd: nodeLfd, result: 3 });
    const lfd = startup[3].result;

    const accepts = trace.filter((t) => t.call === 'accept');
    const forks = trace.filter((t) => t.call === 'fork');
    const waits = trace.filter((t) => t.call === 'waitpid');
    expect(accepts.map((a) => [a.pid, a.fd])).toEqual([
      [master, lfd],
      [master, lfd],
    ]);
    expect(forks.map((f) => f.pid)).toEqual([master, master]);
    for (let i = 0; i < 2; i++) {
      const a = accepts[i];
      const f = forks.find((x) => x.id === a.id)!;
      expect(f.fd).toBe(a.result); // fork() for the cfd that accept returned
      const w = waits.find((x) => x.result === f.result)!;
      expect(w).toBeDefined(); // waitpid reaped exactly the pid fork returned
      expect(reaps).toContain(f.result);
      // The parent closes cfd, the child (pid = fork's result) closes lfd.
      expect(trace).toContainEqual(expect.objectContaining({ call: 'close-cfd', pid: master, fd: a.result }));
      expect(trace).toContainEqual(expect.objectContaining({ call: 'close-lfd', pid: f.result, fd: lfd }));
      const childExit = trace.find((t) => t.call === 'child-exit' && t.pid === f.result)!;
      expect(childExit.result).toBe(0);
      // Causal order on one clock (CLOCK_MONOTONIC): accept ≤ fork ≤ child exit ≤ waitpid.
      expect(a.timeMs).toBeLessThanOrEqual(f.timeMs);
      expect(f.timeMs).toBeLessThanOrEqual(childExit.timeMs);
      expect(childExit.timeMs).toBeLessThanOrEqual(w.timeMs);
    }
  });

  test('thread server: the worker reads the cfd that accept returned, from its slot', async () => {
    server = await startServer({ model: 'thread', trace: true });
    const trace = collect(server);
    await exchange(port(server), Buffer.from('x'));
    await waitFor(() => trace.some((t) => t.call === 'close-conn'), 5000, 'close-conn');
    const accept = trace.find((t) => t.call === 'accept')!;
    const create = trace.find((t) => t.call === 'pthread_create')!;
    const start = trace.find((t) => t.call === 'worker-start')!;
    expect(create).toMatchObject({ result: 0, slot: 0, id: accept.id });
    expect(start).toMatchObject({ fd: accept.result, slot: 0, pid: process.pid });
    expect(start.result).not.toBe(process.pid); // the worker's own thread id
    expect(trace.find((t) => t.call === 'close-conn')).toMatchObject({ fd: accept.result, slot: 0 });
  });

  test('without the trace option nothing is traced', async () => {
    server = await startServer({ model: 'fork' });
    const trace = collect(server);
    await exchange(port(server), Buffer.from('x'));
    await waitFor(() => server!.stats().reaped === 1, 5000, 'reap');
    expect(server.startupTrace).toEqual([]);
    expect(trace).toEqual([]);
  });
});

describe('lab switches', () => {
  test("fork reap: 'none' leaves every finished child a zombie; close() reaps them", async () => {
    server = await startServer({ model: 'fork', reap: 'none' });
    for (let i = 0; i < 3; i++) await exchange(port(server), Buffer.from(`z${i}`));
    await waitFor(() => server!.stats().zombies === 3, 5000, 'three zombies');
    expect(zombiesOf(server.pid).length).toBe(3);
    expect(server.stats().reaped).toBe(0);
    const master = server.pid;
    await server.close();
    expect(zombiesOf(master)).toEqual([]);
    expect(server.stats().reaped).toBe(3); // collected while closing
  });

  test("fork reap: 'sigchld' (default) leaves none", async () => {
    server = await startServer({ model: 'fork' });
    for (let i = 0; i < 3; i++) await exchange(port(server), Buffer.from(`z${i}`));
    await waitFor(() => server!.stats().reaped === 3, 5000, 'three reaps');
    expect(server.stats().zombies).toBe(0);
  });

  test('fork restart: with SA_RESTART the kernel restarts accept, so no EINTR is ever seen', async () => {
    server = await startServer({ model: 'fork', restart: true });
    for (let i = 0; i < 30; i++) await exchange(port(server), Buffer.from(`r${i}`));
    await waitFor(() => server!.stats().reaped === 30, 5000, '30 reaps');
    expect(server.stats().eintrRetries).toBe(0);
  });

  test("thread threadArg: 'shared-cfd' puts two workers on one client and leaves the other unserved", async () => {
    server = await startServer({ model: 'thread', threadArg: 'shared-cfd', labHoldMs: 300, trace: true });
    const trace = collect(server);
    const first = await Client.open(port(server));
    const second = await Client.open(port(server)); // accepted within the first worker's hold
    await waitFor(() => trace.filter((t) => t.call === 'worker-start').length === 2, 5000, 'both workers');
    const starts = trace.filter((t) => t.call === 'worker-start');
    const accepts = trace.filter((t) => t.call === 'accept');
    // Both workers read the same descriptor: the second accept's cfd.
    expect(starts.map((s) => s.fd)).toEqual([accepts[1].result, accepts[1].result]);
    first.sock.write('first');
    expect(await first.silentFor(300)).toBe(true); // nobody reads the first client
    expect((await second.echo('second')).toString()).toBe('second');
    first.destroy();
    second.end();
  });

  test("thread threadArg: 'slot' (default) serves both clients in the same situation", async () => {
    server = await startServer({ model: 'thread', trace: true });
    const trace = collect(server);
    const first = await Client.open(port(server));
    const second = await Client.open(port(server));
    expect((await first.echo('first')).toString()).toBe('first');
    expect((await second.echo('second')).toString()).toBe('second');
    // Events reach listeners a few ms after the fact (native-backend.ts drains them on a timer).
    await waitFor(() => trace.filter((t) => t.call === 'worker-start').length === 2, 5000, 'both worker-start records');
    const starts = trace.filter((t) => t.call === 'worker-start');
    expect(new Set(starts.map((s) => s.fd)).size).toBe(2);
    first.end();
    second.end();
    await sleep(10);
  });

  test('lab switches are refused for models they do not apply to', () => {
    expect(() => startServer({ model: 'thread', reap: 'none' })).toThrow(/"reap" option applies only to the fork model/);
    expect(() => startServer({ model: 'fork', threadArg: 'shared-cfd' })).toThrow(TypeError);
    expect(() => startServer({ model: 'thread', labHoldMs: -1 })).toThrow(RangeError);
    expect(() => startServer({ model: 'fork', trace: 'yes' as never })).toThrow(/"trace" option must be a boolean/);
  });
});
