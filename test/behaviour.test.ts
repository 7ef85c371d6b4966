// What every model must do, the native ones and Node's own alike, asserted on bytes, events and
// counters: one suite, parameterised by model.
import { DisconnectEvent, ConnectionEvent, MODELS, PosixServer, startServer } from '../lib';
import {
  Client,
  childrenOf,
  exchange,
  hasPool,
  isOneClientPerMember,
  isPoolModel,
  optionsFor,
  port,
  random,
  sleep,
  SUITE_WORKERS,
  waitFor,
  withVariants,
} from './helpers';

describe.each(withVariants(MODELS))('%s model', (_label, model, variant) => {
  let server: PosixServer;
  afterEach(async () => {
    await server?.close({ timeoutMs: 0 });
  });
  const options = (extra = {}) => optionsFor(model, { ...variant, ...extra });

  test('echoes a 1 MiB random binary payload byte for byte', async () => {
    server = await startServer(options());
    const payload = random(1 << 20);
    const echoed = await exchange(port(server), payload);
    expect(echoed.length).toBe(payload.length);
    expect(echoed.equals(payload)).toBe(true);
  });

  test('half-close: after the client ends its side it still receives everything, then EOF', async () => {
    server = await startServer(options());
    const c = await Client.open(port(server));
    const payload = random(200_000);
    c.sock.end(payload); // FIN right behind the data
    const got = await c.read(payload.length);
    expect(got.equals(payload)).toBe(true);
    await c.closedByPeer();
    expect(c.error).toBeNull();
  });

  test("handler 'upper' turns ASCII letters into capitals and leaves other bytes alone", async () => {
    server = await startServer(options({ handler: 'upper' }));
    const input = Buffer.concat([Buffer.from('hello, World! 123 zz'), Buffer.from([0x00, 0xff, 0xe9])]);
    const out = await exchange(port(server), input);
    expect(out.equals(Buffer.concat([Buffer.from('HELLO, WORLD! 123 ZZ'), Buffer.from([0x00, 0xff, 0xe9])]))).toBe(true);
  });

  test('a listener added late, or by another listener, hears every event after it in full', async () => {
    server = await startServer(options());
    // The events held at start are out, and Node has stopped polling (five empty 10 ms polls):
    // a record written now would ring the doorbell.
    await sleep(150);
    const wakeups = server.stats().eventWakeups;
    // Nobody listens: the server serves and counts all the same.
    for (let i = 0; i < 3; i++) expect((await exchange(port(server), Buffer.from('ab'))).toString()).toBe('ab');
    await waitFor(() => server.stats().closed === 3, 5000, 'closed counter');
    // …and a native server writes no record for them, so nothing wakes Node (fork still reports
    // each child's reap; Node's own models have no ring).
    if (model !== 'fork') expect(server.stats().eventWakeups).toBe(wakeups);
    const connections: ConnectionEvent[] = [];
    const disconnects: DisconnectEvent[] = [];
    server.on('connection', (c) => {
      connections.push(c);
      // Added while the events of this connection may already be in the batch being delivered.
      server.once('disconnect', (d) => disconnects.push(d));
    });
    const c = await Client.open(port(server));
    expect((await c.echo(Buffer.from('xyz'))).toString()).toBe('xyz');
    c.end();
    await c.closedByPeer();
    // Events arrive up to 10 ms late: the third connection's may still have been on their way
    // when the listener came, and be heard too. Every one heard is whole.
    await waitFor(() => connections.some((x) => x.peer.port === c.localPort), 5000, 'the connection event');
    const mine = connections.find((x) => x.peer.port === c.localPort)!;
    expect(mine).toMatchObject({ id: 4, peer: { address: '127.0.0.1', family: 'IPv4' } });
    await waitFor(() => disconnects.some((d) => d.id === 4), 5000, 'the disconnect event');
    expect(disconnects.find((d) => d.id === 4)).toMatchObject({ bytesIn: 3, bytesOut: 3, reason: 'end' });
    for (const x of connections) expect(x.peer.address).toBe('127.0.0.1');
    for (const d of disconnects) expect(d).toMatchObject({ bytesIn: d.id === 4 ? 3 : 2, reason: 'end' });
    expect(server.stats()).toMatchObject({ accepted: 4, closed: 4, active: 0, eventsDropped: 0 });
  });

  test('after removeAllListeners(), a listener added is heard as any other', async () => {
    server = await startServer(options());
    await sleep(150); // past the events held at start, and Node's reader parked
    let removed = 0;
    server.on('connection', () => removed++);
    server.removeAllListeners(); // EventEmitter's own 'newListener' listeners included
    const connections: ConnectionEvent[] = [];
    server.on('connection', (c) => connections.push(c));
    const c = await Client.open(port(server));
    await waitFor(() => connections.length === 1, 5000, 'the connection event');
    expect(connections[0].peer).toEqual({ address: '127.0.0.1', family: 'IPv4', port: c.localPort });
    expect(removed).toBe(0);
    c.end();
    await c.closedByPeer();
  });

  test('stats and events agree with what the clients did', async () => {
    server = await startServer(options());
    const connections: ConnectionEvent[] = [];
    const disconnects: DisconnectEvent[] = [];
    const order: string[] = [];
    server.on('connection', (c) => {
      connections.push(c);
      order.push(`connect ${c.id}`);
    });
    server.on('disconnect', (d) => {
      disconnects.push(d);
      order.push(`disconnect ${d.id}`);
    });
    const sizes = [1, 10, 1000, 65536, 3];
    const localPorts: number[] = [];
    for (const n of sizes) {
      const c = await Client.open(port(server));
      localPorts.push(c.localPort);
      const payload = random(n);
      expect((await c.echo(payload)).equals(payload)).toBe(true);
      c.end();
      await c.closedByPeer();
    }
    const total = sizes.reduce((a, b) => a + b, 0);
    await waitFor(() => disconnects.length === sizes.length, 5000, 'disconnect events');
    await waitFor(() => server.stats().closed === sizes.length, 5000, 'closed counter');
    const s = server.stats();
    expect(s).toMatchObject({ accepted: 5, active: 0, rejected: 0, closed: 5, bytesIn: total, bytesOut: total });
    expect(s.eventsDropped).toBe(0);
    expect(connections.map((c) => c.id)).toEqual([1, 2, 3, 4, 5]);
    expect(connections.map((c) => c.peer)).toEqual(localPorts.map((p) => ({ address: '127.0.0.1', family: 'IPv4', port: p })));
    // Each connection is reported before its own disconnect. Across connections the order of
    // disconnects is not promised: with two cluster workers, the next client's worker may report
    // before the previous one's (each client waits only for its FIN).
    for (const c of connections) expect(order.indexOf(`connect ${c.id}`)).toBeLessThan(order.indexOf(`disconnect ${c.id}`));
    const byId = [...disconnects].sort((a, b) => a.id - b.id);
    expect(byId.map((d) => [d.id, d.bytesIn, d.bytesOut, d.reason])).toEqual(sizes.map((n, i) => [i + 1, n, n, 'end']));
    if (model === 'fork') {
      expect(s.reaped).toBe(5);
      for (const c of connections) expect(c.pid).toBeGreaterThan(0);
      expect(new Set(connections.map((c) => c.pid)).size).toBe(5);
    } else if (isPoolModel(model)) {
      // The pool, forked once at start, serves every connection: no process per connection. Each
      // connection names its worker by index and by pid, and one index is always one pid.
      expect(s.reaped).toBe(0);
      const pool = childrenOf(server.pid).map((k) => k.pid);
      expect(pool).toHaveLength(SUITE_WORKERS[model]!);
      const pidOf = new Map<number, number>();
      for (const c of connections) {
        expect(pool).toContain(c.pid);
        expect(c.worker).toBeGreaterThanOrEqual(0);
        expect(c.worker).toBeLessThan(pool.length);
        expect(pidOf.get(c.worker!) ?? c.pid).toBe(c.pid);
        pidOf.set(c.worker!, c.pid!);
      }
      expect(byId.map((d) => [d.pid, d.worker])).toEqual(connections.map((c) => [c.pid, c.worker]));
    } else if (model === 'cluster') {
      // Two workers, forked once by Node at start; none exited. rr: the primary hands the
      // connections out in turn. none: the kernel decides which worker accepts.
      expect(s.reaped).toBe(0);
      const workers = childrenOf(process.pid).map((k) => k.pid);
      const pids = connections.map((c) => c.pid!);
      for (const pid of pids) expect(workers).toContain(pid);
      if (variant.schedulingPolicy !== 'none') {
        expect(new Set(pids).size).toBe(2);
        expect(pids).toEqual([pids[0], pids[1], pids[0], pids[1], pids[0]]);
      }
      expect(byId.map((d) => d.pid)).toEqual(pids);
      // A worker's index is its place in the pool: one index per pid.
      const indexOf = new Map(connections.map((c) => [c.pid!, c.worker!]));
      expect(indexOf.size).toBe(new Set(pids).size);
      for (const c of connections) expect(c.worker).toBe(indexOf.get(c.pid!));
    } else if (model === 'prethread') {
      // The pool threads, created once at start, serve every connection: each names its thread.
      expect(s.reaped).toBe(0);
      for (const c of connections) {
        expect(c.pid).toBeUndefined();
        expect(c.worker).toBeGreaterThanOrEqual(0);
        expect(c.worker).toBeLessThan(SUITE_WORKERS.prethread!);
      }
      expect(byId.map((d) => d.worker)).toEqual(connections.map((c) => c.worker));
    } else {
      expect(s.reaped).toBe(0);
      for (const c of connections) expect(c.pid).toBeUndefined();
    }
    if (model === 'thread')
      for (const c of connections) expect(c.slot).toBe(0); // one at a time: first free slot
    else for (const c of connections) expect(c.slot).toBeUndefined();
    const counted = hasPool(model) || model === 'cluster';
    if (!counted) for (const c of connections) expect(c.worker).toBeUndefined();
    // Accepts per pool worker add up to accepted; no pool, no entries.
    expect(s.perWorker).toHaveLength(counted ? SUITE_WORKERS[model]! : 0);
    expect(s.perWorker.reduce((a, b) => a + b, 0)).toBe(counted ? 5 : 0);
    for (const [w, n] of s.perWorker.entries()) expect(n).toBe(connections.filter((c) => c.worker === w).length);
  });

  test('close() ends a connection that outlives its timeout and reports it as aborted', async () => {
    server = await startServer(options());
    const disconnects: DisconnectEvent[] = [];
    server.on('disconnect', (d) => disconnects.push(d));
    const c = await Client.open(port(server));
    expect((await c.echo('still here')).toString()).toBe('still here');
    const started = Date.now();
    await server.close({ timeoutMs: 300 });
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(250);
    expect(c.closed).toBe(true);
    expect(disconnects).toEqual([expect.objectContaining({ id: 1, reason: 'aborted', bytesIn: 10, bytesOut: 10 })]);
    expect(server.stats()).toMatchObject({ accepted: 1, active: 0, closed: 1 });
    expect(server.address()).toBeNull();
    expect(server.listening).toBe(false);
  });

  test('close() lets a live connection finish within the timeout', async () => {
    server = await startServer(options());
    const c = await Client.open(port(server));
    await c.echo('x');
    const closing = server.close({ timeoutMs: 5000 });
    await sleep(100);
    expect((await c.echo('still served while closing')).toString()).toBe('still served while closing');
    c.end();
    await closing;
    expect(server.stats()).toMatchObject({ accepted: 1, closed: 1 });
  });

  test('close() stops accepting at once: new connections are refused', async () => {
    server = await startServer(options());
    const p = port(server);
    const holder = await Client.open(p);
    await holder.echo('a');
    const closing = server.close({ timeoutMs: 2000 });
    await sleep(50);
    await expect(Client.open(p)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    holder.end();
    await closing;
  });
});

describe.each(withVariants(['fork', 'thread', 'node', 'cluster', 'prefork', 'reuseport', 'prethread', 'epoll', 'uring']))(
  '%s model: concurrency',
  (_label, model, variant) => {
    let server: PosixServer;
    afterEach(async () => {
      await server?.close({ timeoutMs: 0 });
    });
    const options = (extra = {}) => optionsFor(model, { ...variant, ...extra });

    test('serves 50 concurrent clients', async () => {
      // A prefork worker or prethread thread serves one client at a time: 50 at once take 50.
      server = await startServer(options(isOneClientPerMember(model) ? { workers: 50 } : {}));
      const clients = await Promise.all(Array.from({ length: 50 }, () => Client.open(port(server))));
      // All 50 are served at the same time: each gets its echo while all stay connected.
      const payloads = clients.map(() => random(4096));
      const echoes = await Promise.all(clients.map((c, i) => c.echo(payloads[i])));
      echoes.forEach((e, i) => expect(e.equals(payloads[i])).toBe(true));
      expect(server.stats().active).toBe(50);
      clients.forEach((c) => c.end());
      await Promise.all(clients.map((c) => c.closedByPeer()));
      await waitFor(() => server.stats().closed === 50, 5000, 'all closed');
      expect(server.stats()).toMatchObject({ accepted: 50, closed: 50, rejected: 0, active: 0 });
    });

    test('maxClients=3 refuses the 4th client, counts it and reports it', async () => {
      server = await startServer(options({ maxClients: 3 }));
      const rejects: Array<{ id: number; port: number; reason: string }> = [];
      server.on('reject', (r) => rejects.push({ id: r.id, port: r.peer.port, reason: r.reason }));
      const held = [];
      for (let i = 0; i < 3; i++) {
        const c = await Client.open(port(server));
        expect((await c.echo(`client ${i}`)).toString()).toBe(`client ${i}`);
        held.push(c);
      }
      const fourth = await Client.open(port(server)); // the kernel completes the handshake…
      fourth.sock.write('anyone?');
      await fourth.closedByPeer(); // …the server accepts and closes it at once
      await expect(fourth.read(1, 100)).rejects.toThrow();
      await waitFor(() => rejects.length === 1, 5000, 'reject event');
      expect(rejects).toEqual([{ id: 4, port: fourth.localPort, reason: 'max-clients' }]);
      expect(server.stats()).toMatchObject({ accepted: 4, rejected: 1, active: 3 });
      // The three held clients are unaffected, and a slot freed is a slot reusable.
      expect((await held[1].echo('still fine')).toString()).toBe('still fine');
      held[0].end();
      await held[0].closedByPeer();
      await waitFor(() => server.stats().active === 2, 5000, 'a freed place');
      const fifth = await Client.open(port(server));
      expect((await fifth.echo('my turn')).toString()).toBe('my turn');
      expect(server.stats().rejected).toBe(1);
      for (const c of [...held, fifth]) c.end();
    });
  },
);

describe('iterative model: one client at a time', () => {
  let server: PosixServer;
  afterEach(async () => {
    await server?.close({ timeoutMs: 0 });
  });

  test('a second client waits in the backlog until the first leaves', async () => {
    server = await startServer({ model: 'iterative', maxClients: 1 });
    const order: string[] = [];
    server.on('connection', (c) => order.push(`connect ${c.id}`));
    server.on('disconnect', (d) => order.push(`disconnect ${d.id}`));
    const first = await Client.open(port(server));
    expect((await first.echo('one')).toString()).toBe('one');
    const second = await Client.open(port(server)); // connect() succeeds: the kernel queued it
    second.sock.write('two');
    expect(await second.silentFor(300)).toBe(true); // nobody reads it while the first is served
    expect(server.stats()).toMatchObject({ accepted: 1, active: 1, rejected: 0 });
    first.end();
    expect((await second.read(3)).toString()).toBe('two');
    second.end();
    await second.closedByPeer();
    await waitFor(() => order.length === 4, 5000, 'events');
    expect(order).toEqual(['connect 1', 'disconnect 1', 'connect 2', 'disconnect 2']);
    // maxClients does not apply to the iterative model: nothing was refused.
    expect(server.stats().rejected).toBe(0);
  });
});
