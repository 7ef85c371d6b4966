// The pool models (prefork with each acceptLock, reuseport): what only a pool does — processes
// forked once and never per connection, accepts spread over the workers and counted per worker,
// a client beyond a prefork pool waiting in the backlog, a worker killed from outside reported
// and replaced, close() ending every worker. The behaviour every model shares is in the
// parameterised suites (behaviour, lifecycle, hardening, soak, options, trace-format).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AcceptLock, ConnectionEvent, DisconnectEvent, PosixServer, ReapEvent, ServerOptions, startServer } from '../lib';
import { Client, childrenOf, exchange, isAlive, port, random, sleep, waitFor, zombiesOf } from './helpers';

const execFileP = promisify(execFile);

const LOCKS: AcceptLock[] = ['none', 'flock', 'mutex', 'pass'];
/** Every pool variant: prefork with each acceptLock, and reuseport. */
const POOLS: Array<[string, ServerOptions]> = [
  ...LOCKS.map((acceptLock): [string, ServerOptions] => [`prefork ${acceptLock}`, { model: 'prefork', acceptLock }]),
  ['reuseport', { model: 'reuseport' }],
];

let server: PosixServer | undefined;
afterEach(async () => {
  await server?.close({ timeoutMs: 0 });
  server = undefined;
});

interface Recorded {
  connections: ConnectionEvent[];
  disconnects: DisconnectEvent[];
  reaps: ReapEvent[];
}

function record(s: PosixServer): Recorded {
  const r: Recorded = { connections: [], disconnects: [], reaps: [] };
  s.on('connection', (c) => r.connections.push(c));
  s.on('disconnect', (d) => r.disconnects.push(d));
  s.on('reap', (x) => r.reaps.push(x));
  return r;
}

/** The master's live children: the pool. */
const members = (s: PosixServer) =>
  childrenOf(s.pid)
    .filter((c) => c.state !== 'Z')
    .map((c) => c.pid)
    .sort((a, b) => a - b);

function booksBalance(s: PosixServer): void {
  const st = s.stats();
  expect(st.accepted).toBe(st.closed + st.rejected + st.active);
  expect(st.perWorker.reduce((a, b) => a + b, 0)).toBe(st.accepted);
}

describe.each(POOLS)('%s', (_name, base) => {
  test('the pool is forked once: many connections, no new process, accepts counted per worker', async () => {
    server = await startServer({ ...base, workers: 3 });
    const r = record(server);
    const pool = members(server);
    expect(pool).toHaveLength(3);
    const p = port(server);
    // In waves of 3 concurrent clients, 60 connections in all.
    for (let wave = 0; wave < 20; wave++) {
      const replies = await Promise.all([0, 1, 2].map((i) => exchange(p, Buffer.from(`wave ${wave} client ${i}`))));
      replies.forEach((reply, i) => expect(reply.toString()).toBe(`wave ${wave} client ${i}`));
    }
    // Held at once: a prefork worker serves one client at a time, so 3 held clients take all 3.
    const held = await Promise.all([0, 1, 2].map(() => Client.open(p)));
    for (const c of held) await c.echo('held');
    await waitFor(() => r.connections.length === 63, 5000, '63 connection events');
    expect(members(server)).toEqual(pool); // the same processes, none added or lost
    expect(zombiesOf(server.pid)).toEqual([]);
    for (const c of r.connections) expect(pool).toContain(c.pid);
    const s = server.stats();
    expect(s.perWorker).toHaveLength(3);
    for (const [w, n] of s.perWorker.entries()) expect(n).toBe(r.connections.filter((c) => c.worker === w).length);
    // More than one worker served: the held clients alone are on distinct prefork workers.
    expect(s.perWorker.filter((n) => n > 0).length).toBeGreaterThan(1);
    if (base.model === 'prefork') {
      const heldWorkers = r.connections.slice(60).map((c) => c.worker);
      expect(new Set(heldWorkers).size).toBe(3);
    }
    for (const c of held) c.end();
    await waitFor(() => server!.stats().closed === 63, 5000, 'all closed');
    expect(server.stats()).toMatchObject({ accepted: 63, closed: 63, active: 0, rejected: 0, reaped: 0 });
    booksBalance(server);
  });

  test('a worker killed with SIGKILL: its connection ends as crash, it is reaped and replaced at its index', async () => {
    server = await startServer({ ...base, workers: 2 });
    const r = record(server);
    const pool = members(server);
    const victim = await Client.open(port(server));
    await victim.echo('before the kill');
    await waitFor(() => r.connections.length === 1, 5000, 'the connection event');
    // The worker counts its bytes right after send() returns: the client may have the echo a few
    // instructions earlier. Kill it once its books show the echo.
    await waitFor(() => server!.stats().bytesOut === 15, 5000, 'the echo counted');
    const { pid, worker } = r.connections[0];
    process.kill(pid!, 'SIGKILL');
    await victim.closedByPeer(3000);
    await waitFor(() => r.reaps.length === 1 && r.disconnects.length === 1, 5000, 'reap and disconnect');
    expect(r.disconnects[0]).toEqual({ id: 1, reason: 'crash', pid, worker, bytesIn: 15, bytesOut: 15 });
    expect(r.reaps[0]).toEqual({ pid, worker, id: 1, exitCode: null, signal: 'SIGKILL' }); // the one connection it held
    // The pool is back to its size: the dead one replaced by a new process, the other untouched.
    await waitFor(() => members(server!).length === 2 && !members(server!).includes(pid!), 5000, 'a replacement');
    const now = members(server);
    const replacement = now.find((x) => !pool.includes(x))!;
    expect(now).toContain(pool.find((x) => x !== pid));
    expect(zombiesOf(server.pid)).toEqual([]);
    // Both serve, the replacement under the dead one's index: hold one client per worker (prefork);
    // reuseport's kernel hash picks the worker, so try until the replacement was picked.
    const after: Client[] = [];
    for (let i = 0; i < 40 && !r.connections.some((c) => c.pid === replacement); i++) {
      const c = await Client.open(port(server));
      expect((await c.echo(`after ${i}`)).toString()).toBe(`after ${i}`);
      after.push(c);
      // Its event reaches Node up to 10 ms after the echo: wait for it before deciding whether
      // another client is needed (with both prefork workers held, one more would wait for ever).
      await waitFor(() => r.connections.some((x) => x.peer.port === c.localPort), 2000, `the connection event of after ${i}`);
    }
    expect(r.connections.find((c) => c.pid === replacement)!.worker).toBe(worker);
    for (const c of after) c.end();
    await waitFor(() => server!.stats().active === 0, 5000, 'every client gone');
    expect(server.stats()).toMatchObject({ reaped: 1, rejected: 0 });
    booksBalance(server);
  });

  test("close()'s abort while a worker writes a connection's end: reported once, the books balance", async () => {
    // A test switch pauses the worker halfway through the end (its entry freed, not yet counted
    // nor reported) for 400 ms, the moment a SIGKILL used to lose the connection from both books:
    // the master, before it SIGKILLs a worker, waits for that end to be written.
    const script = join(__dirname, 'fixtures', 'abort-while-finishing.js');
    const { stdout } = await execFileP(process.execPath, [script, JSON.stringify({ ...base, workers: 2 })], {
      env: { ...process.env, POSIX_SERVERS_TEST_FINISH_DELAY_MS: '400' },
      timeout: 20000,
    });
    const out = JSON.parse(stdout) as { closeMs: number; stats: Record<string, number>; disconnects: unknown[] };
    expect(out.stats).toMatchObject({ accepted: 1, closed: 1, active: 0 });
    expect(out.disconnects).toEqual([[1, 'end', 3]]);
    expect(out.closeMs).toBeGreaterThanOrEqual(300); // the abort did wait out the pause
  });

  test('close() stops accepting at once, lets a live client finish, ends the one that outlives the timeout', async () => {
    server = await startServer({ ...base, workers: 3 });
    const r = record(server);
    const p = port(server);
    const pool = members(server);
    const finishing = await Client.open(p);
    const staying = await Client.open(p);
    await finishing.echo('a');
    await staying.echo('bb');
    const master = server.pid;
    const started = Date.now();
    const closing = server.close({ timeoutMs: 400 });
    await sleep(50);
    await expect(Client.open(p)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect((await finishing.echo('still served')).toString()).toBe('still served');
    finishing.end();
    await finishing.closedByPeer();
    await closing;
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    expect(staying.closed).toBe(true);
    // (By the clients' ports: both were open at once, so which got id 1 is the workers' race.)
    const idOf = (c: Client) => r.connections.find((x) => x.peer.port === c.localPort)!.id;
    const reported = (c: Client) => r.disconnects.filter((d) => d.id === idOf(c)).map((d) => [d.reason, d.bytesIn]);
    expect(reported(finishing)).toEqual([['end', 13]]);
    expect(reported(staying)).toEqual([['aborted', 2]]);
    expect(server.stats()).toMatchObject({ accepted: 2, closed: 2, active: 0, reaped: 3 });
    // Every worker and the master are gone, and were waited for.
    expect(r.reaps.map((x) => x.pid).sort((a, b) => a - b)).toEqual(pool);
    for (const pid of [master, ...pool]) expect(isAlive(pid)).toBe(false);
    expect(zombiesOf(process.pid)).toEqual([]);
    server = undefined;
  });
});

describe.each(LOCKS)('prefork %s: a pool of 2', (acceptLock) => {
  test('a third client waits in the backlog, and is served as soon as a worker is free', async () => {
    server = await startServer({ model: 'prefork', workers: 2, acceptLock });
    const r = record(server);
    const p = port(server);
    const first = await Client.open(p);
    const second = await Client.open(p);
    expect((await first.echo('one')).toString()).toBe('one');
    expect((await second.echo('two')).toString()).toBe('two');
    const third = await Client.open(p); // connect() succeeds: the kernel queued it in the backlog
    third.sock.write('three');
    expect(await third.silentFor(300)).toBe(true); // nobody reads it: both workers are busy
    expect(server.stats()).toMatchObject({ accepted: 2, active: 2, rejected: 0 });
    first.end();
    expect((await third.read(5)).toString()).toBe('three');
    // The third was taken by the worker the first one freed. (Clients by their port: the first
    // two were open at once, so which of them got id 1 is the workers' race.)
    await waitFor(() => r.connections.length === 3, 5000, 'the third connection event');
    const workerOf = (c: Client) => r.connections.find((x) => x.peer.port === c.localPort)!.worker;
    expect(workerOf(third)).toBe(workerOf(first));
    expect(workerOf(second)).not.toBe(workerOf(first));
    for (const c of [second, third]) c.end();
    await waitFor(() => server!.stats().closed === 3, 5000, 'all closed');
    booksBalance(server);
  });
});

describe('prefork: faults of the accept locks', () => {
  test('mutex: the worker SIGKILLed while it holds the mutex does not wedge the pool (EOWNERDEAD)', async () => {
    server = await startServer({ model: 'prefork', workers: 3, acceptLock: 'mutex', trace: true });
    const traces = [...server.startupTrace];
    server.on('trace', (t) => traces.push(t));
    const p = port(server);
    await exchange(p, Buffer.from('warm'));
    // Trace events reach Node up to 10 ms late: first the warm connection's close-conn (its
    // worker traced its unlock before it), so that the holder below is the current one.
    await waitFor(() => traces.some((t) => t.call === 'close-conn'), 5000, 'the warm connection over');
    // The holder: the worker whose last mutex call was a lock — it sleeps in accept() with it.
    const holder = () => {
      const last = new Map<number, string>();
      for (const t of traces) if (t.call === 'mutex-lock' || t.call === 'mutex-unlock') last.set(t.pid, t.call);
      return [...last].filter(([, call]) => call === 'mutex-lock').map(([pid]) => pid);
    };
    await waitFor(() => holder().length === 1, 5000, 'a worker holding the mutex');
    const victim = holder()[0];
    process.kill(victim, 'SIGKILL');
    await waitFor(() => traces.some((t) => t.call === 'mutex-lock' && t.errno === 'EOWNERDEAD'), 5000, 'EOWNERDEAD');
    const recovered = traces.find((t) => t.errno === 'EOWNERDEAD')!;
    expect(recovered.pid).not.toBe(victim);
    expect(recovered.result).toBe(0); // it holds the mutex now
    for (let i = 0; i < 6; i++) expect((await exchange(p, Buffer.from(`after ${i}`))).toString()).toBe(`after ${i}`);
    await waitFor(() => members(server!).length === 3 && !members(server!).includes(victim), 5000, 'a replacement');
    booksBalance(server);
  });

  test('flock: the worker SIGKILLed while it holds the file lock releases it with its death', async () => {
    server = await startServer({ model: 'prefork', workers: 3, acceptLock: 'flock', trace: true });
    const traces = [...server.startupTrace];
    server.on('trace', (t) => traces.push(t));
    const p = port(server);
    await exchange(p, Buffer.from('warm'));
    await waitFor(() => traces.some((t) => t.call === 'close-conn'), 5000, 'the warm connection over'); // (as above)
    const holder = () => {
      const last = new Map<number, string>();
      for (const t of traces) if (t.call === 'fcntl-lock' || t.call === 'fcntl-unlock') last.set(t.pid, t.call);
      return [...last].filter(([, call]) => call === 'fcntl-lock').map(([pid]) => pid);
    };
    await waitFor(() => holder().length === 1, 5000, 'a worker holding the lock');
    const victim = holder()[0];
    process.kill(victim, 'SIGKILL');
    // Another worker takes the lock the kernel released.
    await waitFor(() => holder().some((pid) => pid !== victim && isAlive(pid)), 5000, 'the lock taken over');
    for (let i = 0; i < 6; i++) expect((await exchange(p, Buffer.from(`after ${i}`))).toString()).toBe(`after ${i}`);
    booksBalance(server);
  });

  test('pass: past maxClients the master accepts, closes and reports the client itself', async () => {
    server = await startServer({ model: 'prefork', workers: 3, acceptLock: 'pass', maxClients: 2 });
    const rejects: string[] = [];
    server.on('reject', (x) => rejects.push(x.reason));
    const p = port(server);
    const held = await Promise.all([1, 2].map(() => Client.open(p)));
    for (const c of held) await c.echo(random(100));
    const third = await Client.open(p);
    await third.closedByPeer(3000);
    await waitFor(() => rejects.length === 1, 5000, 'the reject');
    expect(rejects).toEqual(['max-clients']);
    expect(server.stats()).toMatchObject({ accepted: 3, rejected: 1, active: 2 });
    booksBalance(server);
    for (const c of held) c.end();
  });

  test("pass: close() while a member's 'idle' is still unread by the master is no error", async () => {
    // The master closes the control sockets at close(); a member whose 'I' it had not read yet
    // reads ECONNRESET instead of EOF (SOCK_SEQPACKET): the same news, not a failure.
    const errors: Error[] = [];
    for (let round = 0; round < 30; round++) {
      const s = await startServer({ model: 'prefork', workers: 3, acceptLock: 'pass' });
      s.on('error', (e) => errors.push(e));
      const clients = await Promise.all([1, 2, 3].map(() => Client.open(port(s))));
      for (const c of clients) await c.echo('x');
      for (const c of clients) c.destroy(); // each member says 'I' as its client goes…
      await s.close({ timeoutMs: 0 }); // …while the master closes the control sockets
      expect(s.stats()).toMatchObject({ accepted: 3, closed: 3, active: 0 });
    }
    expect(errors.map((e) => e.message)).toEqual([]);
  });
});
