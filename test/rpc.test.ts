// The rpc handler, UNP ch. 30's web_child, in every model and variant: per connection, a line
// naming a size (a '\r' tolerated before its '\n'), that many bytes of chargen's stream back, the
// next line, until the client closes; then the server closes. Pipelined lines, lines in pieces, a
// last line ended by the client's EOF; refused lines (closed without their reply, reason 'error');
// the bound (rpcMaxBytes, UNP's MAXN by default); UNP's client (the load generator's rpc mode),
// whose close comes first, so that the TIME_WAIT sockets are the client's. Real sockets; the books
// and the disconnect events checked.
import { DisconnectEvent, MODELS, PosixServer, RPC_DEFAULT_MAX_BYTES, RPC_MAX_LINE, startServer } from '../lib';
import { chargenPrefix, Client, optionsFor, port, sleep, timeWaitsAfterLoad, Variant, waitFor, withVariants } from './helpers';

function expectBooks(server: PosixServer): void {
  const s = server.stats();
  expect(s.accepted).toBe(s.closed + s.rejected + s.active);
}

/**
 * Sends `request` (in the pieces given, 20 ms apart), half-closes (the client is done asking), and
 * reads until the server closes; returns what came.
 */
async function ask(p: number, ...pieces: string[]): Promise<{ reply: Buffer; reset: boolean }> {
  const c = await Client.open(p);
  try {
    for (const [i, piece] of pieces.entries()) {
      if (i > 0) await sleep(20);
      c.sock.write(piece);
    }
    c.end();
    await c.closedByPeer(10000);
    const code = (c.error as NodeJS.ErrnoException | null)?.code;
    return { reply: c.take(), reset: code === 'ECONNRESET' };
  } finally {
    c.destroy();
  }
}

/** The replies to requests of these sizes, one after the other on one connection. */
const replies = (...sizes: number[]) => Buffer.concat(sizes.map((n) => chargenPrefix(n)));

/** The main suite's bound: large enough for a reply that fills the socket buffers. */
const BIG = 1024 * 1024;

const CASES: Variant[] = [...withVariants(MODELS), ['prefork (acceptLock pass)', 'prefork', { acceptLock: 'pass' }]];

describe.each(CASES)('%s: the rpc handler', (_label, model, extra) => {
  let server: PosixServer | undefined;
  let disconnects: DisconnectEvent[] = [];
  beforeEach(async () => {
    server = await startServer(optionsFor(model, { ...extra, handler: 'rpc', rpcMaxBytes: BIG }));
    disconnects = [];
    server.on('disconnect', (d) => disconnects.push(d));
  });
  afterEach(async () => {
    await server?.close({ timeoutMs: 0 });
    server = undefined;
  });

  test.each([1, 4000, BIG])('asked for %i bytes: exactly that much of chargen; the server closes after the client', async (n) => {
    const c = await Client.open(port(server!));
    try {
      c.sock.write(`${n}\n`);
      expect((await c.read(n, 10000)).equals(chargenPrefix(n))).toBe(true);
      // The reply is complete and the server waits for the next line: it does not close first.
      expect(await c.silentFor(100)).toBe(true);
      c.end();
      await c.closedByPeer(5000);
      expect(c.received).toBe(0);
    } finally {
      c.destroy();
    }
    await waitFor(() => disconnects.length === 1, 5000, 'the disconnect');
    expect(disconnects[0]).toMatchObject({ reason: 'end', bytesIn: `${n}\n`.length, bytesOut: n });
    expectBooks(server!);
  });

  test('two requests pipelined in one write get both replies, and a third later on the same connection its own', async () => {
    const c = await Client.open(port(server!));
    try {
      c.sock.write('10\n20\n');
      expect((await c.read(30)).equals(replies(10, 20))).toBe(true);
      c.sock.write('5\n');
      expect((await c.read(5)).equals(chargenPrefix(5))).toBe(true);
      c.end();
      await c.closedByPeer(5000);
    } finally {
      c.destroy();
    }
    await waitFor(() => disconnects.length === 1, 5000, 'the disconnect');
    expect(disconnects[0]).toMatchObject({ reason: 'end', bytesIn: 8, bytesOut: 35 });
  });

  test('CR LF ends a line as LF does; lines in pieces and with leading zeros are answered once whole', async () => {
    expect((await ask(port(server!), '4000\r\n')).reply.equals(chargenPrefix(4000))).toBe(true);
    expect((await ask(port(server!), '00', '40', '0', '0\r', '\n7\r\n')).reply.equals(replies(4000, 7))).toBe(true);
    await waitFor(() => disconnects.length === 2, 5000, 'the disconnects');
    expect(disconnects.map((d) => d.reason)).toEqual(['end', 'end']);
  });

  test('a client that shuts down its write side after the request gets its reply, then EOF; a last line without its newline is answered', async () => {
    const done = await ask(port(server!), '4000\n');
    expect(done.reply.equals(chargenPrefix(4000))).toBe(true);
    expect(done.reset).toBe(false);
    // UNP's readline() returns a line the EOF ends, and web_child() answers it.
    expect((await ask(port(server!), '12\n', '40')).reply.equals(replies(12, 40))).toBe(true);
    const silent = await ask(port(server!));
    expect(silent.reply.length).toBe(0);
    await waitFor(() => disconnects.length === 3, 5000, 'the disconnects');
    expect(disconnects.map((d) => d.reason)).toEqual(['end', 'end', 'end']);
    // (cluster's workers report on their own: in any order)
    expect(disconnects.map((d) => d.bytesOut).sort((a, b) => a - b)).toEqual([0, 52, 4000]);
    expectBooks(server!);
  });

  test.each([
    ['zero', '0\n'],
    ['a size over rpcMaxBytes', `${BIG + 1}\n`],
    ['not a number', 'abc\n'],
    ['an empty line', '\n'],
    ['CR LF alone', '\r\n'],
    ['a sign', '-1\n'],
    ['a space', ' 5\n'],
    ['a digit after CR', '5\r5\n'],
    ['a line longer than RPC_MAX_LINE', `${'0'.repeat(RPC_MAX_LINE)}5\n`],
  ])('refused (%s): closed without a reply, reason error; the lines before it were answered', async (_what, request) => {
    const { reply } = await ask(port(server!), request);
    expect(reply.length).toBe(0);
    expect((await ask(port(server!), `3\n${request}`)).reply.equals(chargenPrefix(3))).toBe(true);
    await waitFor(() => disconnects.length === 2, 5000, 'the disconnects');
    expect(disconnects.map((d) => d.reason)).toEqual(['error', 'error']);
    expect(disconnects.map((d) => d.bytesOut).sort((a, b) => a - b)).toEqual([0, 3]);
    expect(Math.min(...disconnects.map((d) => d.bytesIn))).toBeGreaterThan(0);
    expectBooks(server!);
    // The server goes on serving.
    expect((await ask(port(server!), '10\n')).reply.equals(chargenPrefix(10))).toBe(true);
  });

  // The load generator's rpc mode is UNP's client.c: it sends the request, reads exactly the
  // reply, and closes first ("TIME_WAIT on client, not server", UNP's comment). Run in a network
  // namespace of its own, whose TIME_WAIT table nothing else fills (helpers: inOwnNetwork).
  test("UNP's client: every reply verified, and after the run the TIME_WAIT sockets are the client's", async () => {
    const left = await timeWaitsAfterLoad(optionsFor(model, { ...extra, handler: 'rpc', rpcMaxBytes: BIG }), {
      mode: 'rpc',
      connections: 2,
      size: 4000,
      durationMs: 300,
    });
    const r = left.load;
    expect(r.messages).toBeGreaterThan(0);
    expect(r).toMatchObject({ errors: 0, resets: 0, verifyFailures: 0 });
    expect(r.messages).toBe(r.connects);
    // The server closes once it has read the client's EOF: every connection's close is done by then.
    expect(left.stats).toMatchObject({ active: 0, accepted: r.connects, closed: r.connects });
    expect(left.server).toEqual([]);
    expect(left.client.length).toBeGreaterThan(0);
  }, 120000);

  // Loopback's socket buffers (the sender's grows to tcp_wmem's 4 MiB) may take the whole reply
  // before the reset arrives: then the server has sent everything and reads the reset. Either way
  // it says how far it got, and its byte count agrees.
  test('a client that stops reading and resets mid-reply: one disconnect that tells how far it got; the next client is served', async () => {
    const c = await Client.open(port(server!));
    c.sock.write(`${BIG}\n`);
    await c.read(1000, 5000); // the reply has begun
    c.sock.pause(); // read no more: the server's send blocks (or would block) with most of it unsent
    await sleep(100);
    c.sock.resetAndDestroy();
    await waitFor(() => disconnects.length === 1, 10000, 'the disconnect');
    const d = disconnects[0];
    expect(d.reason).toBe('error');
    expect(d.bytesOut).toBeLessThanOrEqual(BIG);
    expect(d.bytesOut).toBeGreaterThanOrEqual(1000);
    expect((await ask(port(server!), '4000\n')).reply.equals(chargenPrefix(4000))).toBe(true);
    await waitFor(() => disconnects.length === 2, 5000, 'the second disconnect');
    expectBooks(server!);
  });
});

// The bound's default is UNP's MAXN: a process model (its master learns it from its command line),
// a blocking thread, the event loops (readiness, completions), and Node's own.
describe.each(['fork', 'thread', 'epoll', 'uring', 'node'] as const)('%s model: the rpc bound', (model) => {
  test(`by default ${RPC_DEFAULT_MAX_BYTES} (UNP's MAXN): a request for it is answered, one for a byte more refused; rpcMaxBytes moves it`, async () => {
    const server = await startServer({ model, handler: 'rpc' });
    try {
      const p = port(server);
      expect((await ask(p, `${RPC_DEFAULT_MAX_BYTES}\n`)).reply.length).toBe(RPC_DEFAULT_MAX_BYTES);
      expect((await ask(p, `${RPC_DEFAULT_MAX_BYTES + 1}\n`)).reply.length).toBe(0);
    } finally {
      await server.close({ timeoutMs: 0 });
    }
    const small = await startServer({ model, handler: 'rpc', rpcMaxBytes: 100 });
    try {
      const p = port(small);
      expect((await ask(p, '100\n')).reply.equals(chargenPrefix(100))).toBe(true);
      expect((await ask(p, '101\n')).reply.length).toBe(0);
    } finally {
      await small.close({ timeoutMs: 0 });
    }
  });
});

describe.each(['fork', 'thread', 'prefork', 'reuseport', 'prethread'] as const)(
  '%s model: labCrash with the rpc handler',
  (model) => {
    test('the request CRASH\\n crashes the serving child/worker (reported), and the next request is answered', async () => {
      const server = await startServer(optionsFor(model, { handler: 'rpc', labCrash: true, maxClients: 1 }));
      try {
        const gone: DisconnectEvent[] = [];
        server.on('disconnect', (d) => gone.push(d));
        const c = await Client.open(port(server));
        c.sock.write('CRASH\n');
        await c.closedByPeer(5000);
        expect(c.received).toBe(0);
        c.destroy();
        await waitFor(() => gone.length === 1, 5000, 'the disconnect');
        expect(gone[0].reason).toBe('crash');
        // maxClients is 1: the crashed connection's place was freed.
        expect((await ask(port(server), '100\n')).reply.equals(chargenPrefix(100))).toBe(true);
        await waitFor(() => gone.length === 2, 5000, 'the second disconnect');
        expect(gone[1].reason).toBe('end');
        expectBooks(server);
      } finally {
        await server.close({ timeoutMs: 0 });
      }
    });
  },
);
