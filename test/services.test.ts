// The internal services of inetd, each against its RFC, in every model; the door's rules
// (allow/deny, maxPerSource, maxConnectionsPerSecond) in every model, with clients from two
// loopback addresses. The exec handler has its own file (exec.test.ts).
import { DisconnectEvent, MODELS, NATIVE_MODELS, PosixServer, RejectEvent, TraceEvent, startServer } from '../lib';
import { runLoad } from '../lib/bench/loadgen';
import { Client, exchange, optionsFor, port, random, sleep, type Variant, waitFor, withVariants } from './helpers';

const SECONDS_1900_TO_1970 = 2_208_988_800;

/** RFC 864: line n holds the 72 printable characters from character n (of ' '..'~') on, then CR LF. */
function chargenLine(n: number): string {
  let line = '';
  for (let col = 0; col < 72; col++) line += String.fromCharCode(0x20 + ((n + col) % 95));
  return `${line}\r\n`;
}

/** The books: every accepted connection is closed, refused or still served. */
function expectBooks(server: PosixServer): void {
  const s = server.stats();
  expect(s.accepted).toBe(s.closed + s.rejected + s.active);
}

describe.each(MODELS)('%s model: internal services against their RFCs', (model) => {
  let server: PosixServer | undefined;
  afterEach(async () => {
    await server?.close({ timeoutMs: 0 });
    server = undefined;
  });

  test('chargen (RFC 864): 72-character lines rotating through the 95 printable characters, CR LF, until the client closes', async () => {
    server = await startServer(optionsFor(model, { handler: 'chargen' }));
    const disconnects: DisconnectEvent[] = [];
    server.on('disconnect', (d) => disconnects.push(d));
    const c = await Client.open(port(server));
    // Two whole cycles of 95 lines and a bit: the rotation wraps around back to line 0.
    const lines = 95 * 2 + 7;
    const got = (await c.read(lines * 74, 10000)).toString('latin1');
    const expected = Array.from({ length: lines }, (_, n) => chargenLine(n)).join('');
    expect(got.length).toBe(expected.length);
    const firstWrong = [...got].findIndex((ch, i) => ch !== expected[i]);
    expect(firstWrong).toBe(-1);
    expect(got.slice(0, 74)).toBe(` !"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_${'`'}abcdefg\r\n`);
    expect(got.slice(95 * 74, 96 * 74)).toBe(got.slice(0, 74)); // line 95 is line 0 again
    // Bytes the client sends are thrown away; its EOF ends the stream.
    c.sock.write('ignored');
    c.end();
    await c.closedByPeer(5000);
    await waitFor(() => disconnects.length === 1, 5000, 'the disconnect');
    expect(disconnects[0].reason).toBe('end');
    expect(disconnects[0].bytesIn).toBe(7);
    expect(disconnects[0].bytesOut).toBeGreaterThanOrEqual(lines * 74);
    expectBooks(server);
  });

  test('discard (RFC 863): everything read is thrown away, nothing is sent', async () => {
    server = await startServer(optionsFor(model, { handler: 'discard' }));
    const disconnects: DisconnectEvent[] = [];
    server.on('disconnect', (d) => disconnects.push(d));
    const back = await exchange(port(server), random(300_000));
    expect(back.length).toBe(0);
    await waitFor(() => disconnects.length === 1, 5000, 'the disconnect');
    expect(disconnects[0]).toMatchObject({ reason: 'end', bytesIn: 300_000, bytesOut: 0 });
    expect(server.stats()).toMatchObject({ bytesIn: 300_000, bytesOut: 0 });
  });

  test('daytime (RFC 867): one human-readable line with the date and time, then the server closes', async () => {
    server = await startServer(optionsFor(model, { handler: 'daytime' }));
    const c = await Client.open(port(server));
    await c.closedByPeer(5000); // the client sends nothing: the server closes on its own
    const line = c.take().toString('latin1');
    const m = /^(\w+), (\w+) (\d{1,2}), (\d{4}) (\d\d):(\d\d):(\d\d)-UTC\r\n$/.exec(line);
    expect(m).not.toBeNull();
    const when = Date.parse(`${m![2]} ${m![3]}, ${m![4]} ${m![5]}:${m![6]}:${m![7]} UTC`);
    expect(Math.abs(when - Date.now())).toBeLessThan(3000);
    expect(m![1]).toBe(new Date(when).toLocaleString('en-US', { weekday: 'long', timeZone: 'UTC' }));
    c.destroy();
  });

  test('time (RFC 868): 32-bit seconds since 1900-01-01 UTC, big-endian, then the server closes', async () => {
    server = await startServer(optionsFor(model, { handler: 'time' }));
    const disconnects: DisconnectEvent[] = [];
    server.on('disconnect', (d) => disconnects.push(d));
    const c = await Client.open(port(server));
    await c.closedByPeer(5000);
    const now = Date.now() / 1000;
    const bytes = c.take();
    expect(bytes.length).toBe(4);
    const since1900 = bytes.readUInt32BE(0);
    // The 1900 epoch: 2,208,988,800 s before Unix's (RFC 868 counts from 1900-01-01 00:00 UTC).
    expect(Math.abs(since1900 - SECONDS_1900_TO_1970 - now)).toBeLessThanOrEqual(1.5);
    c.destroy();
    await waitFor(() => disconnects.length === 1, 5000, 'the disconnect');
    expect(disconnects[0]).toMatchObject({ reason: 'end', bytesIn: 0, bytesOut: 4 });
  });
});

/** A server whose events are recorded. */
function watch(server: PosixServer) {
  const log = { rejects: [] as RejectEvent[], disconnects: [] as DisconnectEvent[], traces: [] as TraceEvent[] };
  server.on('reject', (r) => log.rejects.push(r));
  server.on('disconnect', (d) => log.disconnects.push(d));
  server.on('trace', (t) => log.traces.push(t));
  return log;
}

/** True when the server closes a fresh connection at once without answering it (refused). */
async function refused(p: number, from = '127.0.0.1'): Promise<boolean> {
  const c = await Client.open(p, 2000, '127.0.0.1', from);
  try {
    const answered = await c.echoes('knock', 2000);
    if (answered) return false;
    await c.closedByPeer(2000);
    return c.received === 0;
  } finally {
    c.destroy();
  }
}

describe.each(MODELS)('%s model: the door', (model) => {
  let server: PosixServer | undefined;
  const held: Client[] = [];
  afterEach(async () => {
    for (const c of held.splice(0)) c.destroy();
    await server?.close({ timeoutMs: 0 });
    server = undefined;
  });

  // The iterative model serves one client at a time: no address can ever have two live
  // connections there, so maxPerSource has nothing to refuse.
  const perSource = model === 'iterative' ? test.skip : test;
  perSource('maxPerSource 2: the 3rd connection from 127.0.0.1 is refused while one from 127.0.0.2 is served', async () => {
    server = await startServer(optionsFor(model, { maxPerSource: 2 }));
    const log = watch(server);
    const p = port(server);
    for (let i = 0; i < 2; i++) {
      const c = await Client.open(p, 2000, '127.0.0.1', '127.0.0.1');
      expect(await c.echoes(`mine ${i}`)).toBe(true);
      held.push(c);
    }
    const third = await Client.open(p, 2000, '127.0.0.1', '127.0.0.1');
    await third.closedByPeer(); // accepted, and closed at once
    const other = await Client.open(p, 2000, '127.0.0.1', '127.0.0.2');
    expect(await other.echoes('another address')).toBe(true);
    held.push(other);
    await waitFor(() => log.rejects.length === 1, 5000, 'the reject');
    expect(log.rejects[0]).toMatchObject({ id: 3, reason: 'per-source', peer: { address: '127.0.0.1', port: third.localPort } });
    expect(server.stats()).toMatchObject({ accepted: 4, rejected: 1, active: 3 });
    third.destroy();
    // A place freed is a place for the same address again: the count follows the connections.
    held[0].end();
    await held[0].closedByPeer();
    await waitFor(() => server!.stats().active === 2, 5000, 'the first connection to end');
    const again = await Client.open(p, 2000, '127.0.0.1', '127.0.0.1');
    expect(await again.echoes('my turn')).toBe(true);
    held.push(again);
    expect(server.stats().rejected).toBe(1);
    expectBooks(server);
  });

  test("deny ['127.0.0.0/8'] refuses every loopback client; allow ['127.0.0.2'] admits only that address", async () => {
    server = await startServer(optionsFor(model, { deny: ['127.0.0.0/8'] }));
    const log = watch(server);
    expect(await refused(port(server), '127.0.0.1')).toBe(true);
    expect(await refused(port(server), '127.0.0.2')).toBe(true);
    await waitFor(() => log.rejects.length === 2, 5000, 'two rejects');
    expect(log.rejects.map((r) => [r.reason, r.peer.address])).toEqual([
      ['denied', '127.0.0.1'],
      ['denied', '127.0.0.2'],
    ]);
    expect(server.stats()).toMatchObject({ accepted: 2, rejected: 2, active: 0, closed: 0 });
    await server.close({ timeoutMs: 0 });

    // Deny wins over allow.
    server = await startServer(optionsFor(model, { allow: ['127.0.0.2', '127.0.0.3/32'], deny: ['127.0.0.3'] }));
    const log2 = watch(server);
    expect(await refused(port(server), '127.0.0.1')).toBe(true);
    expect(await refused(port(server), '127.0.0.3')).toBe(true);
    const c = await Client.open(port(server), 2000, '127.0.0.1', '127.0.0.2');
    expect(await c.echoes('allowed')).toBe(true);
    c.destroy();
    await waitFor(() => log2.rejects.length === 2, 5000, 'two rejects');
    expect(log2.rejects.every((r) => r.reason === 'denied')).toBe(true);
    expectBooks(server);
  });

  test('maxConnectionsPerSecond 5: a burst beyond the rate is refused, and the server serves again after it', async () => {
    server = await startServer(optionsFor(model, { maxConnectionsPerSecond: 5 }));
    const log = watch(server);
    const p = port(server);
    const started = performance.now();
    const served: boolean[] = [];
    for (let i = 0; i < 15; i++) served.push(!(await refused(p)));
    const elapsedS = (performance.now() - started) / 1000;
    const admitted = served.filter(Boolean).length;
    // The bucket holds 5 tokens and refills at 5 a second: the burst gets 5, plus what refilled.
    expect(admitted).toBeGreaterThanOrEqual(5);
    expect(admitted).toBeLessThanOrEqual(5 + Math.ceil(elapsedS * 5));
    expect(served.slice(0, 5)).toEqual([true, true, true, true, true]);
    await waitFor(() => log.rejects.length === 15 - admitted, 5000, 'the rejects');
    expect(log.rejects.every((r) => r.reason === 'rate')).toBe(true);
    await sleep(1100); // the bucket refills
    expect((await exchange(p, 'after the burst')).toString()).toBe('after the burst');
    await waitFor(() => server!.stats().active === 0, 5000, 'the connections to end');
    expect(server.stats()).toMatchObject({ accepted: 16, rejected: 15 - admitted, closed: admitted + 1 });
  });

  test('an IPv4-mapped client of a dual-stack listener meets the IPv4 rules', async () => {
    try {
      server = await startServer(optionsFor(model, { host: '::', deny: ['127.0.0.2/32'] }));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAFNOSUPPORT' || (e as NodeJS.ErrnoException).code === 'EADDRNOTAVAIL') return;
      throw e;
    }
    const log = watch(server);
    expect(await refused(port(server), '127.0.0.2')).toBe(true);
    expect(await refused(port(server), '127.0.0.1')).toBe(false);
    await waitFor(() => log.rejects.length === 1, 5000, 'the reject');
    expect(log.rejects[0]).toMatchObject({ reason: 'denied', peer: { address: '::ffff:127.0.0.2' } });
  });
});

describe.each(NATIVE_MODELS)('%s model: the door in the trace', (model) => {
  test('door-pass and door-refuse are traced where the accept happens, with the address and the reason', async () => {
    const server = await startServer(optionsFor(model, { trace: true, deny: ['127.0.0.2'] }));
    const log = watch(server);
    try {
      expect(await refused(port(server), '127.0.0.2')).toBe(true);
      expect((await exchange(port(server), 'in')).toString()).toBe('in');
      await waitFor(() => log.traces.filter((t) => t.call.startsWith('door-')).length === 2, 5000, 'two door traces');
      const door = log.traces.filter((t) => t.call.startsWith('door-'));
      expect(door.map((t) => [t.call, t.id, t.address?.address, t.reason])).toEqual([
        ['door-refuse', 1, '127.0.0.2', 'denied'],
        ['door-pass', 2, '127.0.0.1', undefined],
      ]);
      // Right after accept(), in the accepting process, before any fork or thread.
      const accept = log.traces.find((t) => (t.call === 'accept' || t.call === 'worker-accept') && t.id === 2)!;
      expect(door[1].pid).toBe(accept.pid);
      expect(door[1].fd).toBe(accept.result);
      const spent = log.traces.filter((t) => (t.call === 'fork' || t.call === 'pthread_create') && t.id === 1);
      expect(spent).toEqual([]);
    } finally {
      await server.close({ timeoutMs: 0 });
    }
  });
});

describe("cluster model, schedulingPolicy 'none': the workers accept, the primary's door decides", () => {
  test('deny and maxPerSource hold across workers that accept on their own', async () => {
    const server = await startServer({
      model: 'cluster',
      workers: 2,
      schedulingPolicy: 'none',
      maxPerSource: 1,
      deny: ['127.0.0.3'],
    });
    const log = watch(server);
    const held: Client[] = [];
    try {
      const p = port(server);
      const first = await Client.open(p, 2000, '127.0.0.1', '127.0.0.1');
      expect(await first.echoes('one')).toBe(true);
      held.push(first);
      expect(await refused(p, '127.0.0.1')).toBe(true); // the second from 127.0.0.1, whichever worker took it
      expect(await refused(p, '127.0.0.3')).toBe(true);
      const other = await Client.open(p, 2000, '127.0.0.1', '127.0.0.2');
      expect(await other.echoes('two')).toBe(true);
      held.push(other);
      await waitFor(() => log.rejects.length === 2, 5000, 'two rejects');
      expect(log.rejects.map((r) => [r.reason, r.peer.address])).toEqual([
        ['per-source', '127.0.0.1'],
        ['denied', '127.0.0.3'],
      ]);
      expectBooks(server);
    } finally {
      for (const c of held) c.destroy();
      await server.close({ timeoutMs: 0 });
    }
  });
});

// A refused client sees its connection closed only once its reject is published: a client that
// reconnects as soon as it is refused is refused again after, and heard after. (A pool's member
// used to close first: the next refusal, by another member, could be published before.)
describe.each([
  ...withVariants(MODELS),
  ['prefork (acceptLock pass)', 'prefork', { acceptLock: 'pass' }],
  ['prefork (acceptLock mutex)', 'prefork', { acceptLock: 'mutex' }],
] as Variant[])('%s: rejects under a burst', (_label, model, extra) => {
  test('a client refused and refused again, as fast as it can: the rejects are heard in the order they happened', async () => {
    const server = await startServer(optionsFor(model, { ...extra, deny: ['127.0.0.0/8'] }));
    const log = watch(server);
    try {
      // One client at a time: it connects, reads its EOF, and connects again (bounded: 1.5 s).
      const r = await runLoad({ mode: 'eof', port: port(server), connections: 1, durationMs: 1500 });
      expect(r.connects).toBeGreaterThan(100);
      await waitFor(() => log.rejects.length === r.connects, 5000, `${r.connects} rejects`);
      const ids = log.rejects.map((x) => x.id);
      const outOfOrder = ids.filter((id, i) => i > 0 && id < ids[i - 1]);
      expect(outOfOrder).toEqual([]);
      expect(server.stats()).toMatchObject({ accepted: r.connects, rejected: r.connects, eventsDropped: 0 });
    } finally {
      await server.close({ timeoutMs: 0 });
    }
  });
});
